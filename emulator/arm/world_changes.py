"""What an administrator changes in Azure between nights, on the control API: rebuild, cycle or power a lab VM,
delete a lab. Each change answers what it changed and is kept in ``GET /_emulator/state``'s ``world_changes``."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from emulator.arm.compute import Compute
from emulator.arm.control import read_json, refuse_non_loopback
from emulator.arm.core import StorageApi
from emulator.arm.devtestlabs import DevTestLabs
from emulator.arm.labs import DiskState, LabState, VmState, lab_key
from emulator.vhd import make_disk
from emulator.world import DISK_ACCOUNT, DISK_CONTAINER

log = logging.getLogger(__name__)

#: Power states a control request may set; ``stopped`` keeps the VM allocated (its disk stays ``Attached``).
POWER_STATES = ("running", "stopped", "deallocated")


class ChangeError(Exception):
    """A change the control API refuses (HTTP status and message)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def content_seed(text: str) -> int:
    """Derive a content seed for ``emulator.vhd.make_disk``."""
    return int(hashlib.sha256(text.encode()).hexdigest()[:12], 16)


def moved_on(previous: datetime) -> datetime:
    """Return now, strictly after ``previous`` (so a time always moves on, however fast changes follow)."""
    return max(datetime.now(UTC), previous + timedelta(microseconds=1))


class WorldChanges:
    """Apply administrators' changes to the labs, VMs and disks the ARM side serves."""

    def __init__(self, dtl: DevTestLabs, compute: Compute, storage: StorageApi) -> None:
        self.dtl = dtl
        self.compute = compute
        self.storage = storage
        self.changes: list[dict[str, Any]] = []
        self._lock = asyncio.Lock()

    # -- lookups -----------------------------------------------------------------------------------

    def find_lab(self, body: dict[str, Any]) -> LabState:
        """Return the lab ``body`` names (``lab``; ``subscription`` and ``resource_group`` when ambiguous)."""
        name = body.get("lab")
        if not isinstance(name, str) or not name:
            raise ChangeError(400, "the body must name the lab ('lab')")
        matches = [
            lab
            for (sub, rg, lab_name), lab in self.dtl.labs.items()
            if lab_name == name.lower()
            and sub == str(body.get("subscription", sub)).lower()
            and rg == str(body.get("resource_group", rg)).lower()
        ]
        if not matches:
            raise ChangeError(404, f"no lab {name!r} in the local Azure (deleted, or not in the world file)")
        if len(matches) > 1:
            raise ChangeError(400, f"several labs are named {name!r}: give 'subscription' and 'resource_group'")
        return matches[0]

    def find_vm(self, body: dict[str, Any]) -> tuple[LabState, VmState]:
        """Return the lab and the VM ``body`` names (``vm``)."""
        lab = self.find_lab(body)
        name = body.get("vm")
        if not isinstance(name, str) or not name:
            raise ChangeError(400, "the body must name the VM ('vm')")
        vm = lab.vms.get(name.lower())
        if vm is None:
            raise ChangeError(404, f"lab {lab.spec.name} has no VM {name!r}")
        return lab, vm

    def _refuse_while_granted(self, vm: VmState, what: str) -> None:
        """Refuse to change a VM whose disk has an active read SAS (Azure refuses to start or swap it) or an access
        grant or revoke still running."""
        disk_id = vm.disk.id.lower()
        operations = self.compute.services.lro.operations.values()
        if any(op.resource_id.lower() == disk_id and not op.done for op in operations):
            raise ChangeError(409, f"cannot {what} VM {vm.name}: an operation on its OS disk is in progress")
        if self.compute.access_granted(vm.disk):
            raise ChangeError(
                409, f"cannot {what} VM {vm.name}: its OS disk {vm.disk.name} has an active SAS (revoke access first)"
            )

    # -- changes -----------------------------------------------------------------------------------

    async def _write_content(self, disk: DiskState) -> None:
        """Write the disk's page blob from its content seed (a valid fixed VHD).

        The blob is created anew rather than written in place: Azurite lets a copied page blob share pages with its
        source, so writing pages in place would change VHDs captured from this disk earlier.
        """
        data = make_disk(disk.size_bytes, disk.content_seed)
        await self.storage.put_page_blob(DISK_ACCOUNT, DISK_CONTAINER, disk.blob, data)

    async def _power(self, vm: VmState, state: str) -> bool:
        """Move a VM to ``state``; a start writes to its disk; tell whether anything changed."""
        old = vm.power_state
        if state == old:
            return False
        disk = vm.disk
        # Stopping a running VM keeps it allocated: only a start or a deallocation changes the disk's ownership.
        starts = state == "running" or old == "deallocated"
        if starts:
            self._refuse_while_granted(vm, "start")
            disk.boots += 1
            disk.content_seed = content_seed(f"{disk.unique_id}/boot/{disk.boots}")
            await self._write_content(disk)
        if starts or state == "deallocated":
            disk.last_ownership_update = moved_on(disk.last_ownership_update)
        vm.power_state = state
        return True

    def _answer(self, change: str, lab: LabState, vm: VmState, **details: Any) -> dict[str, Any]:
        return {
            "change": change,
            "at": datetime.now(UTC).isoformat(),
            "subscription": lab.spec.subscription_id,
            "resource_group": lab.spec.resource_group,
            "lab": lab.spec.name,
            "vm": vm.name,
            **details,
            "power_state": vm.power_state,
            "provisioning_state": vm.provisioning_state,
            "disk": vm.disk.describe(),
        }

    async def set_power(self, body: dict[str, Any]) -> dict[str, Any]:
        """Set a VM's power state (``state``: running, stopped or deallocated)."""
        state = body.get("state")
        if state not in POWER_STATES:
            raise ChangeError(400, f"'state' must be one of {', '.join(POWER_STATES)}")
        lab, vm = self.find_vm(body)
        previous = vm.power_state
        changed = await self._power(vm, str(state))
        return self._answer("power", lab, vm, previous_power_state=previous, changed=changed)

    async def cycle(self, body: dict[str, Any]) -> dict[str, Any]:
        """Start a VM and deallocate it again (a running VM is deallocated first, so it always boots once): same
        disk, new content, its ownership time moves on."""
        lab, vm = self.find_vm(body)
        self._refuse_while_granted(vm, "cycle")
        previous = vm.disk.describe()
        await self._power(vm, "deallocated")
        await self._power(vm, "running")
        await self._power(vm, "deallocated")
        return self._answer("cycle", lab, vm, previous_disk=previous)

    async def rebuild(self, body: dict[str, Any]) -> dict[str, Any]:
        """Give a VM a new OS disk (new name, id, uniqueId, times and content); delete the old one."""
        lab, vm = self.find_vm(body)
        self._refuse_while_granted(vm, "rebuild")
        old = vm.disk
        now = moved_on(old.last_ownership_update)
        unique = uuid.uuid4()
        name = f"{vm.name}_OsDisk_1_{unique.hex}"
        new = replace(
            old,
            name=name,
            blob=f"{name.lower()}.vhd",
            content_seed=content_seed(f"{unique}/content"),
            unique_id=str(uuid.uuid4()),
            time_created=now,
            last_ownership_update=now,
            boots=0,
        )
        await self._write_content(new)
        vm.disk, vm.power_state, vm.provisioning_state = new, "deallocated", "Succeeded"
        await self.storage.delete_blob(DISK_ACCOUNT, DISK_CONTAINER, old.blob)
        self.compute.forget_grant(old)
        return self._answer("rebuild", lab, vm, previous_disk=old.describe())

    async def delete_lab(self, body: dict[str, Any]) -> dict[str, Any]:
        """Delete a lab with its custom images and VMs (their OS disks go with them)."""
        lab = self.find_lab(body)
        del self.dtl.labs[lab_key(lab.spec)]
        for vm in lab.vms.values():
            await self.storage.delete_blob(DISK_ACCOUNT, DISK_CONTAINER, vm.disk.blob)
            self.compute.forget_grant(vm.disk)
        return {
            "change": "delete-lab",
            "at": datetime.now(UTC).isoformat(),
            "subscription": lab.spec.subscription_id,
            "resource_group": lab.spec.resource_group,
            "lab": lab.spec.name,
            "custom_images": sorted(image.name for image in lab.images.values()),
            "vms": sorted(vm.name for vm in lab.vms.values()),
            "disks": sorted(vm.disk.id for vm in lab.vms.values()),
        }

    # -- control API -------------------------------------------------------------------------------

    async def _handle(
        self, request: Request, change: Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]
    ) -> Response:
        if refused := refuse_non_loopback(request):
            return refused
        body = await read_json(request)
        if not isinstance(body, dict):
            return JSONResponse({"error": "the body must be a JSON object"}, status_code=400)
        try:
            async with self._lock:
                answer = await change(body)
        except ChangeError as exc:
            return JSONResponse({"error": exc.message}, status_code=exc.status)
        self.changes.append(answer)
        log.info("world change: %s", answer["change"])
        return JSONResponse(answer)

    async def rebuild_route(self, request: Request) -> Response:
        """``POST /vms/rebuild``."""
        return await self._handle(request, self.rebuild)

    async def cycle_route(self, request: Request) -> Response:
        """``POST /vms/cycle``."""
        return await self._handle(request, self.cycle)

    async def power_route(self, request: Request) -> Response:
        """``POST /vms/power``."""
        return await self._handle(request, self.set_power)

    async def delete_lab_route(self, request: Request) -> Response:
        """``POST /labs/delete``."""
        return await self._handle(request, self.delete_lab)

    def routes(self) -> list[BaseRoute]:
        """Return the world-change routes (mounted under ``/_emulator`` with the rest of the control API)."""
        return [
            Route("/vms/rebuild", self.rebuild_route, methods=["POST"]),
            Route("/vms/cycle", self.cycle_route, methods=["POST"]),
            Route("/vms/power", self.power_route, methods=["POST"]),
            Route("/labs/delete", self.delete_lab_route, methods=["POST"]),
        ]
