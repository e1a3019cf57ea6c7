"""Lab VMs made by template deployments: the VM with its compute VM and fresh OS disk, its artifacts one after
another, the sysprep/deprovision stop then deallocation; and ``VirtualMachines_Update`` (tags)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import re
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.responses import JSONResponse, Response

from emulator.arm.core import ArmRoute, Call, Services
from emulator.arm.devtestlabs import DevTestLabs
from emulator.arm.errors import ArmError, invalid_parameter
from emulator.arm.labs import (
    API_VERSIONS,
    LABS_PATH,
    NAMESPACE,
    ArtifactState,
    DiskState,
    LabState,
    VmState,
    dtl_time,
    lab_key,
)
from emulator.faults import ARTIFACT_KIND
from emulator.vhd import make_disk
from emulator.world import DISK_ACCOUNT, DISK_CONTAINER, VmSpec, compute_resource_group

log = logging.getLogger(__name__)

#: The resource type (lower case) a deployment can create.
VM_TYPE = "microsoft.devtestlab/labs/virtualmachines"
#: Artifacts that generalize the VM and shut it down when they succeed last.
GENERALIZING_ARTIFACTS = frozenset({"windows-sysprep", "linux-deprovision"})
#: Template properties a built VM keeps and returns (never ``password`` or ``sshKey``).
_KEPT_PROPERTIES = (
    "notes",
    "galleryImageReference",
    "labVirtualNetworkId",
    "labSubnetName",
    "size",
    "userName",
    "isAuthenticationWithSshKey",
    "disallowPublicIpAddress",
    "storageType",
    "allowClaim",
)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]*$")
_WINDOWS_NAME_LIMIT = 15
_LINUX_NAME_LIMIT = 62


class ResourceFailure(Exception):
    """A template resource that could not be deployed (a ``details`` entry of the deployment's error)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class VmRequest:
    """A lab VM a template asks for, checked."""

    lab: str
    name: str
    os_type: str
    size: str
    tags: dict[str, str]
    artifacts: tuple[ArtifactState, ...]
    properties: dict[str, Any]


def _seed(text: str) -> int:
    return int(hashlib.sha256(text.encode()).hexdigest()[:12], 16)


def _stamp(previous: datetime) -> datetime:
    return max(datetime.now(UTC), previous + timedelta(microseconds=1))


def _artifact(item: Any, index: int) -> ArtifactState:
    if not isinstance(item, dict) or not isinstance(item.get("artifactId"), str) or not item["artifactId"]:
        raise ResourceFailure("InvalidParameter", f"properties.artifacts[{index}] must have an 'artifactId'.")
    parameters = item.get("parameters") or []
    if not isinstance(parameters, list) or not all(isinstance(p, dict) for p in parameters):
        raise ResourceFailure("InvalidParameter", f"properties.artifacts[{index}].parameters must be a list.")
    artifact_id = item["artifactId"]
    name = artifact_id.rstrip("/").rsplit("/", 1)[-1]
    clean = [{"name": str(p.get("name", "")), "value": p.get("value")} for p in parameters]
    return ArtifactState(artifact_id=artifact_id, name=name, parameters=clean)


def parse_vm_resource(resource: dict[str, Any]) -> VmRequest:
    """Check an evaluated ``Microsoft.DevTestLab/labs/virtualmachines`` resource; raise ResourceFailure."""
    full_name = str(resource["name"])
    parts = full_name.split("/")
    if len(parts) != 2 or not all(parts):
        raise ResourceFailure(
            "InvalidParameter", f"The resource name '{full_name}' must be '<lab name>/<virtual machine name>'."
        )
    lab, name = parts
    props = resource.get("properties")
    if not isinstance(props, dict):
        raise ResourceFailure("InvalidParameter", f"The virtual machine '{name}' has no 'properties'.")
    gallery = props.get("galleryImageReference")
    os_type = gallery.get("osType") if isinstance(gallery, dict) else None
    if os_type not in {"Windows", "Linux"}:
        raise ResourceFailure(
            "InvalidParameter",
            f"The virtual machine '{name}' needs properties.galleryImageReference.osType 'Windows' or 'Linux' "
            "(the local Azure builds VMs from gallery images only).",
        )
    limit = _WINDOWS_NAME_LIMIT if os_type == "Windows" else _LINUX_NAME_LIMIT
    if not _NAME.match(name) or len(name) > limit:
        raise ResourceFailure(
            "InvalidParameter",
            f"The virtual machine name '{name}' is not valid: a {os_type} VM name has 1 to {limit} letters, digits "
            "or hyphens and starts with a letter or digit.",
        )
    artifacts = props.get("artifacts") or []
    if not isinstance(artifacts, list):
        raise ResourceFailure("InvalidParameter", "properties.artifacts must be a list.")
    tags = resource.get("tags") or {}
    if not isinstance(tags, dict):
        raise ResourceFailure("InvalidParameter", "tags must be an object.")
    return VmRequest(
        lab=lab,
        name=name,
        os_type=str(os_type),
        size=str(props.get("size") or "Standard_D2s_v3"),
        tags={str(k): str(v) for k, v in tags.items()},
        artifacts=tuple(_artifact(item, index) for index, item in enumerate(artifacts)),
        properties={key: props[key] for key in _KEPT_PROPERTIES if key in props},
    )


def _extension_status(stdout: str, stderr: str, *, failed: bool) -> str:
    """Render a custom script extension's sub-statuses as DevTest Labs passes them on."""
    state = "failed" if failed else "succeeded"
    return json.dumps(
        [
            {"code": f"ComponentStatus/StdOut/{state}", "level": "Info", "message": stdout},
            {"code": f"ComponentStatus/StdErr/{state}", "level": "Info", "message": stderr},
        ]
    )


class LabVmBuilds:
    """Create lab VMs from template resources and carry them through their artifacts."""

    def __init__(self, services: Services, dtl: DevTestLabs) -> None:
        self.services = services
        self.dtl = dtl
        self._tasks: set[asyncio.Task[None]] = set()

    # -- creation ----------------------------------------------------------------------------------

    def create(self, sub: str, rg: str, request: VmRequest) -> tuple[LabState, VmState]:
        """Add the VM to its lab (``Creating``, running, with a fresh OS disk); raise ResourceFailure."""
        lab = self.dtl.labs.get((sub.lower(), rg.lower(), request.lab.lower()))
        if lab is None:
            raise ResourceFailure(
                "ParentResourceNotFound",
                f"Can not perform requested operation on nested resource. Parent resource '{request.lab}' not found.",
            )
        existing = lab.vms.get(request.name.lower())
        if existing is not None:
            raise ResourceFailure(
                "Conflict",
                f"A virtual machine with the name '{existing.name}' already exists in lab '{lab.spec.name}'. "
                "Choose another name, or delete the existing virtual machine first.",
            )
        now = datetime.now(UTC)
        spec = VmSpec(
            name=request.name,
            os_type=request.os_type,
            tags=dict(request.tags),
            provisioning_state="Creating",
            power_state="running",
            disk_size_mib=self.services.world.settings.build_disk_mib,
            size=request.size,
            created=now,
        )
        unique = uuid.uuid4()
        disk_name = f"{spec.name}_OsDisk_1_{unique.hex}"
        disk = DiskState(
            subscription_id=lab.spec.subscription_id,
            resource_group=compute_resource_group(lab.spec, spec),
            name=disk_name,
            blob=f"{disk_name.lower()}.vhd",
            size_bytes=spec.disk_size_mib * 1024 * 1024,
            content_seed=_seed(f"{unique}/content"),
            unique_id=str(uuid.uuid4()),
            time_created=now,
            last_ownership_update=now,
            boots=1,
        )
        vm = VmState(
            spec=spec,
            provisioning_state="Creating",
            power_state="running",
            disk=disk,
            created=dtl_time(now),
            artifacts=[replace(a) for a in request.artifacts],
            properties=dict(request.properties),
        )
        lab.vms[spec.name.lower()] = vm
        log.info("lab VM %s/%s creating (%d artifacts)", lab.spec.name, spec.name, len(vm.artifacts))
        return lab, vm

    async def _write_disk(self, disk: DiskState) -> None:
        await self.services.storage.ensure_container(DISK_ACCOUNT, DISK_CONTAINER)
        await self.services.storage.put_page_blob(
            DISK_ACCOUNT, DISK_CONTAINER, disk.blob, make_disk(disk.size_bytes, disk.content_seed)
        )

    def _current(self, lab: LabState, vm: VmState) -> bool:
        """Tell whether the VM is still the one in its lab (not deleted, nor replaced)."""
        return lab.vms.get(vm.name.lower()) is vm and self.dtl.labs.get(lab_key(lab.spec)) is lab

    async def build(self, lab: LabState, vm: VmState) -> None:
        """Write the disk, apply the artifacts one after another, end the VM ``Succeeded``."""
        settings = self.services.world.settings
        await self._write_disk(vm.disk)
        await asyncio.sleep(settings.vm_create_seconds)
        failed = False
        for artifact in vm.artifacts:
            if not self._current(lab, vm):
                return
            if failed:
                artifact.status = "Skipped"
                continue
            failed = not await self._apply(lab, vm, artifact)
        if not self._current(lab, vm):
            return
        vm.provisioning_state = "Succeeded"
        vm.spec = replace(vm.spec, provisioning_state="Succeeded")
        last = vm.artifacts[-1] if vm.artifacts else None
        if last is not None and last.name.lower() in GENERALIZING_ARTIFACTS and last.status == "Succeeded":
            await self._generalized_stop(lab, vm)
        log.info("lab VM %s/%s built (%s)", lab.spec.name, vm.name, "artifact failed" if failed else "ok")

    async def _apply(self, lab: LabState, vm: VmState, artifact: ArtifactState) -> bool:
        """Install one artifact; tell whether it succeeded."""
        artifact.status = "Installing"
        artifact.install_time = dtl_time(datetime.now(UTC))
        await asyncio.sleep(self.services.world.settings.artifact_seconds)
        failure = self._injected_failure(lab, vm, artifact)
        extension = f"{artifact.name}-{_seed(vm.unique_id + artifact.artifact_id) % 10**9}"
        if failure is None:
            artifact.status = "Succeeded"
            artifact.deployment_status_message = json.dumps({"status": "Succeeded"})
            artifact.vm_extension_status_message = _extension_status(f"{artifact.name} finished.", "", failed=False)
            return True
        artifact.status = "Failed"
        error = {
            "status": "Failed",
            "error": {
                "code": "ResourceDeploymentFailure",
                "message": "The resource operation completed with terminal provisioning state 'Failed'.",
                "details": [
                    {
                        "code": "VMExtensionProvisioningError",
                        "message": f"VM has reported a failure when processing extension '{extension}'. "
                        f'Error message: "{failure}".',
                    }
                ],
            },
        }
        artifact.deployment_status_message = (
            f"{json.dumps(error)} The '{artifact.name}' artifact failed to install. See artifact result for details."
        )
        artifact.vm_extension_status_message = _extension_status("", failure, failed=True)
        log.info("artifact %s failed on %s/%s", artifact.name, lab.spec.name, vm.name)
        return False

    def _injected_failure(self, lab: LabState, vm: VmState, artifact: ArtifactState) -> str | None:
        faults = self.services.faults
        if faults is None:
            return None
        fault = faults.match(
            service="arm",
            operation="ApplyArtifact",
            method="ARTIFACT",
            path=f"{lab.id}/virtualmachines/{vm.name}".lower(),
            artifact=artifact.name,
            lab=lab.spec.name,
            vm=vm.name,
        )
        if fault is None or getattr(fault, "kind", "") != ARTIFACT_KIND:
            return None
        return str(getattr(fault, "message", "") or "Injected artifact failure.")

    async def _generalized_stop(self, lab: LabState, vm: VmState) -> None:
        """Sysprep/deprovision shut the OS down: the VM is stopped now, deallocated after ``deallocate_seconds``."""
        disk = vm.disk
        disk.content_seed = _seed(f"{disk.unique_id}/generalized")
        await self._write_disk(disk)
        vm.power_state = "stopped"
        task = asyncio.get_running_loop().create_task(self._deallocate_later(lab, vm))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deallocate_later(self, lab: LabState, vm: VmState) -> None:
        await asyncio.sleep(self.services.world.settings.deallocate_seconds)
        if self._current(lab, vm) and vm.power_state == "stopped":
            vm.power_state = "deallocated"
            vm.disk.last_ownership_update = _stamp(vm.disk.last_ownership_update)
            log.info("lab VM %s/%s deallocated", lab.spec.name, vm.name)

    async def stop(self) -> None:
        """Cancel pending deallocations."""
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # -- VirtualMachines_Update --------------------------------------------------------------------

    async def vms_update(self, call: Call) -> Response:
        """Update a lab VM's tags (``PATCH`` with ``{"tags": {...}}``); 200 with the VM."""
        name = call.params["name"]
        scope = f"{self.dtl.lab_scope(call)}/virtualmachines/{name}"
        self.dtl.authorize(call, scope, f"{NAMESPACE}/labs/virtualMachines/write", write=True)
        lab, vm = self.dtl.get_child(call, "virtualMachines", lambda lab: lab.vms)
        body = await call.json_body()
        tags = body.get("tags")
        if tags is not None and (not isinstance(tags, dict) or not all(isinstance(v, str) for v in tags.values())):
            raise invalid_parameter("tags must be an object of strings.", target="tags")
        if vm.provisioning_state in {"Creating", "Deleting"}:
            raise ArmError(
                409,
                "Conflict",
                f"The virtual machine '{vm.name}' is {vm.provisioning_state.lower()}; retry when it has finished.",
            )
        if tags is not None:
            vm.spec = replace(vm.spec, tags={str(k): v for k, v in tags.items()})
        return JSONResponse(self.dtl.vm_body(lab, vm, expand_compute=False))

    def routes(self) -> list[ArmRoute]:
        """Return the lab VM operations this module serves."""
        return [
            ArmRoute(
                "PATCH",
                LABS_PATH + "/{lab}/virtualmachines/{name}",
                "VirtualMachines_Update",
                f"{NAMESPACE}/labs/virtualMachines/write",
                self.vms_update,
                API_VERSIONS,
            )
        ]


def vm_resource_id(lab: LabState, vm: VmState) -> str:
    """Return a lab VM's resource id as DevTest Labs answers it (lower case)."""
    return f"{lab.id}/virtualmachines/{vm.name}".lower()


def is_vm_resource(resource: dict[str, Any]) -> bool:
    """Tell whether a template resource is a DevTest Labs VM."""
    return str(resource.get("type", "")).lower() == VM_TYPE
