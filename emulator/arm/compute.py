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
from emulator.arm.labs import LabState, VmState, disk_id
from emulator.arm.lro import Work
from emulator.world import DISK_ACCOUNT, DISK_CONTAINER, compute_resource_group, disk_blob_name

log = logging.getLogger(__name__)

NAMESPACE = "Microsoft.Compute"
_DISK = "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Compute/disks/{disk}"
#: Longest access Azure grants on a disk (seconds).
MAX_ACCESS_SECONDS = 2**31 - 1


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
            compute_resource_group(lab.spec, vm.spec).lower()
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
        """Render a managed disk."""
        rid = disk_id(lab.spec, vm.spec)
        size = vm.spec.disk_size_mib * 1024 * 1024
        grant = self.grants.get(rid.lower())
        active = grant is not None and grant.expiry > datetime.now(UTC)
        compute_rg = compute_resource_group(lab.spec, vm.spec)
        return {
            "id": rid,
            "name": rid.rsplit("/", 1)[1],
            "type": f"{NAMESPACE}/disks",
            "location": lab.spec.location,
            "tags": {},
            "managedBy": f"/subscriptions/{lab.spec.subscription_id}/resourceGroups/{compute_rg}"
            f"/providers/{NAMESPACE}/virtualMachines/{vm.spec.name}",
            "sku": {"name": "Premium_LRS", "tier": "Premium"},
            "properties": {
                "osType": vm.spec.os_type,
                "hyperVGeneration": "V1",
                "creationData": {"createOption": "FromImage"},
                "diskSizeGB": max(1, math.ceil(size / 2**30)),
                "diskSizeBytes": size,
                "uniqueId": vm.unique_id,
                "provisioningState": "Succeeded",
                "diskState": "ActiveSAS" if active else ("Attached" if vm.power_state == "running" else "Reserved"),
                "timeCreated": vm.created,
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
        rid = disk_id(lab.spec, vm.spec)
        blob = disk_blob_name(lab.spec, vm.spec)

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
        """Revoke access to a disk (LRO)."""
        self.services.authorizer.check(
            call.principal, self._scope(call), f"{NAMESPACE}/disks/endGetAccess/action", write=True
        )
        lab, vm = self._disk(call)
        rid = disk_id(lab.spec, vm.spec)

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
