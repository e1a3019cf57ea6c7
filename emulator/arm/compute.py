"""Microsoft.Compute managed disks: get, beginGetAccess (read SAS of the disk's page blob), endGetAccess."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.responses import JSONResponse, Response

from emulator.arm.core import ArmRoute, Call, Services
from emulator.arm.devtestlabs import DevTestLabs
from emulator.arm.errors import ArmError, invalid_parameter, not_found, resource_group_not_found
from emulator.arm.labs import DiskState, LabState, VmState
from emulator.arm.lro import Work
from emulator.world import DISK_ACCOUNT, DISK_CONTAINER

log = logging.getLogger(__name__)

NAMESPACE = "Microsoft.Compute"
_DISK = "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Compute/disks/{disk}"
#: Longest access Azure grants on a disk (seconds).
MAX_ACCESS_SECONDS = 2**31 - 1


def compute_time(moment: datetime) -> str:
    """Write a time as Microsoft.Compute does: UTC, seven fractional digits, ``+00:00``."""
    utc = moment.astimezone(UTC)
    return f"{utc:%Y-%m-%dT%H:%M:%S}.{utc.microsecond:06d}0+00:00"


def disk_state(vm: VmState, *, access_granted: bool) -> str:
    """Return a VM's OS disk's ``diskState`` as Azure reports it."""
    if access_granted:
        return "ActiveSAS"
    return "Reserved" if vm.power_state == "deallocated" else "Attached"


@dataclass
class Grant:
    """A read SAS granted on a disk, until ``expiry``."""

    disk_id: str
    expiry: datetime


class Compute:
    """State and handlers of the managed disks of lab VMs."""

    def __init__(self, services: Services, dtl: DevTestLabs) -> None:
        self.services = services
        self.dtl = dtl
        self.grants: dict[str, Grant] = {}

    def access_granted(self, disk: DiskState) -> bool:
        """Tell whether the disk has an unexpired access grant (its diskState is ``ActiveSAS``)."""
        grant = self.grants.get(disk.id.lower())
        return grant is not None and grant.expiry > datetime.now(UTC)

    def forget_grant(self, disk: DiskState) -> None:
        """Drop the (expired) grant record of a disk that is gone."""
        self.grants.pop(disk.id.lower(), None)

    def granted_now(self) -> int:
        """Count disks with an unexpired access grant."""
        now = datetime.now(UTC)
        return sum(1 for grant in self.grants.values() if grant.expiry > now)

    def _disk(self, call: Call) -> tuple[LabState, VmState]:
        p = call.params
        rid = f"/subscriptions/{p['sub']}/resourceGroups/{p['rg']}/providers/{NAMESPACE}/disks/{p['disk']}"
        found = self.dtl.find_vm_by_disk(rid)
        if found is not None:
            return found
        groups = {
            vm.disk.resource_group.lower()
            for lab in self.dtl.labs.values()
            if lab.spec.subscription_id == p["sub"].lower()
            for vm in lab.vms.values()
        }
        if (
            p["rg"].lower() not in groups
            and (p["sub"].lower(), p["rg"].lower()) not in self.services.world.resource_groups
        ):
            raise resource_group_not_found(p["rg"])
        raise not_found(f"{NAMESPACE}/disks", p["disk"], p["rg"])

    def _scope(self, call: Call) -> str:
        p = call.params
        return f"/subscriptions/{p['sub']}/resourceGroups/{p['rg']}/providers/{NAMESPACE}/disks/{p['disk']}"

    def disk_body(self, lab: LabState, vm: VmState) -> dict[str, Any]:
        """Render a managed disk (the REST names of azure-mgmt-compute's ``Disk``)."""
        disk = vm.disk
        return {
            "id": disk.id,
            "name": disk.name,
            "type": f"{NAMESPACE}/disks",
            "location": lab.spec.location,
            "tags": {},
            "managedBy": f"/subscriptions/{disk.subscription_id}/resourceGroups/{disk.resource_group}"
            f"/providers/{NAMESPACE}/virtualMachines/{vm.spec.name}",
            "sku": {"name": "Premium_LRS", "tier": "Premium"},
            "properties": {
                "osType": vm.spec.os_type,
                "hyperVGeneration": "V1",
                "creationData": {"createOption": "FromImage"},
                "diskSizeGB": max(1, math.ceil(disk.size_bytes / 2**30)),
                "diskSizeBytes": disk.size_bytes,
                "uniqueId": disk.unique_id,
                "encryption": {"type": "EncryptionAtRestWithPlatformKey"},
                "networkAccessPolicy": "AllowAll",
                "publicNetworkAccess": "Enabled",
                "timeCreated": compute_time(disk.time_created),
                "provisioningState": "Succeeded",
                "diskState": disk_state(vm, access_granted=self.access_granted(disk)),
                # Azure spells this one property with a capital L (so does the SDK's REST name).
                "LastOwnershipUpdateTime": compute_time(disk.last_ownership_update),
            },
        }

    async def disks_get(self, call: Call) -> Response:
        """Get one managed disk."""
        self.services.authorizer.check(call.principal, self._scope(call), f"{NAMESPACE}/disks/read", write=False)
        lab, vm = self._disk(call)
        return JSONResponse(self.disk_body(lab, vm))

    async def disks_grant_access(self, call: Call) -> Response:
        """Grant read access: an LRO whose result is ``{"accessSAS"}`` for the disk's page blob."""
        self.services.authorizer.check(
            call.principal, self._scope(call), f"{NAMESPACE}/disks/beginGetAccess/action", write=True
        )
        lab, vm = self._disk(call)
        body = await call.json_body()
        if body.get("access") != "Read":
            raise invalid_parameter("access must be 'Read' for this disk.", target="grantAccessData.access")
        duration = body.get("durationInSeconds")
        if not isinstance(duration, int) or isinstance(duration, bool) or not 1 <= duration <= MAX_ACCESS_SECONDS:
            raise invalid_parameter(
                "durationInSeconds must be a positive integer.", target="grantAccessData.durationInSeconds"
            )
        if vm.power_state != "deallocated":
            raise ArmError(
                409,
                "OperationNotAllowed",
                f"Cannot grant access to disk '{call.params['disk']}': it is attached to VM '{vm.spec.name}', "
                "which is not deallocated.",
            )
        rid = vm.disk.id
        blob = vm.disk.blob

        async def work() -> dict[str, Any]:
            expiry = datetime.now(UTC) + timedelta(seconds=duration)
            url = self.services.storage.blob_sas_url(
                DISK_ACCOUNT, DISK_CONTAINER, blob, permission="r", expiry=expiry, purpose="disk-access"
            )
            self.grants[rid.lower()] = Grant(disk_id=rid, expiry=expiry)
            log.info("disk access granted on %s for %s s", rid, duration)
            return {"accessSAS": url}

        return self._accepted(call, lab, rid, work)

    async def disks_revoke_access(self, call: Call) -> Response:
        """Revoke access to a disk (LRO; its Location URL ends 200 without a body, as the specification says)."""
        self.services.authorizer.check(
            call.principal, self._scope(call), f"{NAMESPACE}/disks/endGetAccess/action", write=True
        )
        lab, vm = self._disk(call)
        rid = vm.disk.id

        async def work() -> None:
            self.grants.pop(rid.lower(), None)

        return self._accepted(call, lab, rid, work)

    def _accepted(self, call: Call, lab: LabState, rid: str, work: Work) -> Response:
        return self.services.accepted(call, lab.spec, namespace=NAMESPACE, resource_id=rid, work=work)

    def state(self) -> dict[str, Any]:
        """Describe granted disk access for ``GET /_emulator/state``."""
        now = datetime.now(UTC)
        return {
            "granted_now": self.granted_now(),
            "grants": [
                {"disk_id": g.disk_id, "expiry": g.expiry.isoformat()} for g in self.grants.values() if g.expiry > now
            ],
        }

    def routes(self) -> list[ArmRoute]:
        """Return the managed disk operations."""
        return [
            ArmRoute("GET", _DISK, "Disks_Get", f"{NAMESPACE}/disks/read", self.disks_get),
            ArmRoute(
                "POST",
                _DISK + "/beginGetAccess",
                "Disks_GrantAccess",
                f"{NAMESPACE}/disks/beginGetAccess/action",
                self.disks_grant_access,
            ),
            ArmRoute(
                "POST",
                _DISK + "/endGetAccess",
                "Disks_RevokeAccess",
                f"{NAMESPACE}/disks/endGetAccess/action",
                self.disks_revoke_access,
            ),
        ]
