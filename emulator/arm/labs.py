"""DevTest Labs state as the emulator holds it (labs, their VMs and custom images) and the lookups handlers share."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from starlette.responses import Response

from emulator.arm.core import Call, Services
from emulator.arm.errors import ArmError, not_found, parent_not_found, resource_group_not_found
from emulator.arm.lro import Work
from emulator.world import (
    DISK_ACCOUNT,
    DISK_CONTAINER,
    LabSpec,
    VmSpec,
    compute_resource_group,
    disk_blob_name,
    disk_seed,
)

API_VERSIONS = ("2018-09-15",)
NAMESPACE = "Microsoft.DevTestLab"
#: The container of a lab's storage account that generateUploadUri grants and custom images are created from.
UPLOAD_CONTAINER = "uploads"
#: Lab resources under a resource group (the lab's own path adds ``/{lab}``).
LABS_PATH = "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.DevTestLab/labs"


def dtl_time(moment: datetime) -> str:
    """Write a time as the emulator's DevTest Labs bodies do (UTC, ``Z``)."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _now() -> str:
    return dtl_time(datetime.now(UTC))


def lab_id(lab: LabSpec) -> str:
    """Return a lab's resource id (DevTest Labs answers ids in lower case)."""
    return (
        f"/subscriptions/{lab.subscription_id}/resourcegroups/{lab.resource_group}"
        f"/providers/microsoft.devtestlab/labs/{lab.name}"
    ).lower()


def disk_name(lab: LabSpec, vm: VmSpec) -> str:
    """Return the name of the managed OS disk a lab VM of the world starts with."""
    return f"{vm.name}_OsDisk_1_{hashlib.sha256(f'{lab.name}/{vm.name}'.encode()).hexdigest()[:32]}"


@dataclass
class DiskState:
    """A VM's managed OS disk: its ARM identity, its page blob in ``diskstore/disks``, its content and times."""

    subscription_id: str
    resource_group: str
    name: str
    blob: str
    #: The VHD's data part; the page blob adds the 512-byte footer.
    size_bytes: int
    #: Seed of ``emulator.vhd.make_disk`` for the blob's current content.
    content_seed: int
    unique_id: str
    time_created: datetime
    #: When the disk was last attached or detached, or its VM last started or deallocated (Azure's meaning).
    last_ownership_update: datetime
    #: How often the VM started on this disk since it was created (each start writes to the disk).
    boots: int = 0

    @property
    def id(self) -> str:
        """Resource id of the disk."""
        return (
            f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
            f"/providers/Microsoft.Compute/disks/{self.name}"
        )

    def describe(self) -> dict[str, Any]:
        """Describe the disk for ``GET /_emulator/state`` and the control API's answers."""
        return {
            "id": self.id,
            "name": self.name,
            "unique_id": self.unique_id,
            "time_created": self.time_created.isoformat(),
            "last_ownership_update_time": self.last_ownership_update.isoformat(),
            "blob": f"{DISK_ACCOUNT}/{DISK_CONTAINER}/{self.blob}",
            "size_bytes": self.size_bytes,
            "boots": self.boots,
        }


def initial_disk(lab: LabSpec, vm: VmSpec) -> DiskState:
    """Return the OS disk a VM of the world file starts with (same name, uniqueId and content at every start)."""
    disk = DiskState(
        subscription_id=lab.subscription_id,
        resource_group=compute_resource_group(lab, vm),
        name=disk_name(lab, vm),
        blob=disk_blob_name(lab, vm),
        size_bytes=vm.disk_size_mib * 1024 * 1024,
        content_seed=disk_seed(lab, vm),
        unique_id="",
        time_created=vm.created,
        last_ownership_update=vm.created,
    )
    disk.unique_id = str(uuid.uuid5(uuid.NAMESPACE_URL, disk.id.lower()))
    return disk


@dataclass
class ArtifactState:
    """An artifact applied to a lab VM, as DevTest Labs reports it (``properties.artifacts``)."""

    artifact_id: str
    name: str
    parameters: list[dict[str, Any]]
    #: ``Pending``, ``Installing``, ``Succeeded``, ``Failed`` or ``Skipped``.
    status: str = "Pending"
    install_time: str | None = None
    deployment_status_message: str | None = None
    vm_extension_status_message: str | None = None

    def body(self) -> dict[str, Any]:
        """Render the artifact as ``ArtifactInstallProperties``."""
        body: dict[str, Any] = {
            "artifactId": self.artifact_id,
            "artifactTitle": self.name,
            "parameters": [dict(p) for p in self.parameters],
            "status": self.status,
        }
        if self.deployment_status_message is not None:
            body["deploymentStatusMessage"] = self.deployment_status_message
        if self.vm_extension_status_message is not None:
            body["vmExtensionStatusMessage"] = self.vm_extension_status_message
        if self.install_time is not None:
            body["installTime"] = self.install_time
        return body


def artifact_deployment_status(artifacts: list[ArtifactState]) -> dict[str, Any]:
    """Summarize a VM's artifacts as ``artifactDeploymentStatus`` (no ``deploymentStatus`` without artifacts)."""
    counts = {
        "artifactsApplied": sum(1 for a in artifacts if a.status == "Succeeded"),
        "totalArtifacts": len(artifacts),
    }
    if not artifacts:
        return counts
    states = {a.status for a in artifacts}
    if "Failed" in states:
        status = "Failed"
    elif states == {"Succeeded"}:
        status = "Succeeded"
    elif states == {"Pending"}:
        status = "NotStarted"
    else:
        status = "Running"
    return {"deploymentStatus": status, **counts}


@dataclass
class VmState:
    """A lab VM as the emulator holds it."""

    spec: VmSpec
    provisioning_state: str
    power_state: str
    disk: DiskState
    created: str = field(default_factory=_now)
    unique_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    #: Artifacts applied by a template deployment (none for the world file's VMs).
    artifacts: list[ArtifactState] = field(default_factory=list)
    #: Properties a template deployment gave the VM (notes, galleryImageReference, userName, …; never a password).
    properties: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """The VM's name, as the world spells it."""
        return self.spec.name


@dataclass
class ImageState:
    """A custom image; once Succeeded it keeps its own record of the VHD (size, footer digest)."""

    name: str
    location: str
    tags: dict[str, str]
    vhd: dict[str, Any]
    description: str | None
    author: str | None
    provisioning_state: str = "Creating"
    creation_date: str = field(default_factory=_now)
    unique_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    size_bytes: int | None = None
    footer_sha256: str | None = None
    operation_id: str | None = None
    error: dict[str, str] | None = None


@dataclass
class LabState:
    """A lab with its VMs and custom images."""

    spec: LabSpec
    vms: dict[str, VmState]
    images: dict[str, ImageState] = field(default_factory=dict)
    created: str = field(default_factory=_now)
    unique_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    @property
    def id(self) -> str:
        """Resource id of the lab."""
        return lab_id(self.spec)


def lab_key(lab: LabSpec) -> tuple[str, str, str]:
    """Return the key of a lab in ``LabDirectory.labs``: (subscription, resource group, name), lower case."""
    return (lab.subscription_id.lower(), lab.resource_group.lower(), lab.name.lower())


class _LabChild(Protocol):
    """A VM or a custom image: what deleting one needs."""

    @property
    def name(self) -> str: ...

    provisioning_state: str


T = TypeVar("T")
C = TypeVar("C", bound=_LabChild)


class LabDirectory:
    """The labs of the world, by (subscription, resource group, name), with the lookups every handler starts with."""

    def __init__(self, services: Services) -> None:
        """Hold every lab of the world with its VMs as the world declares them."""
        self.services = services
        self.labs: dict[tuple[str, str, str], LabState] = {}
        for spec in services.world.labs:
            vms = {
                vm.name.lower(): VmState(
                    spec=vm,
                    provisioning_state=vm.provisioning_state,
                    power_state=vm.power_state,
                    disk=initial_disk(spec, vm),
                    created=dtl_time(vm.created),
                )
                for vm in spec.vms
            }
            self.labs[lab_key(spec)] = LabState(spec=spec, vms=vms, created=dtl_time(spec.created))

    def authorize(self, call: Call, scope: str, action: str, *, write: bool) -> None:
        """Raise unless the caller may perform ``action`` on ``scope``."""
        self.services.authorizer.check(call.principal, scope, action, write=write)

    def check_group(self, sub: str, rg: str) -> None:
        """Raise 404 unless the subscription and its resource group exist."""
        world = self.services.world
        if sub.lower() not in world.subscriptions:
            raise ArmError(404, "SubscriptionNotFound", f"The subscription '{sub}' could not be found.")
        if (sub.lower(), rg.lower()) not in world.resource_groups:
            raise resource_group_not_found(rg)

    def lab(self, call: Call, *, parent: bool) -> LabState:
        """Return the lab ``call`` names; 404 ``ParentResourceNotFound`` when ``parent`` (a child was asked for)."""
        sub, rg, name = call.params["sub"], call.params["rg"], call.params["lab"]
        self.check_group(sub, rg)
        lab = self.labs.get((sub.lower(), rg.lower(), name.lower()))
        if lab is None:
            if parent:
                raise parent_not_found(f"{NAMESPACE}/labs", name, rg)
            raise not_found(f"{NAMESPACE}/labs", name, rg)
        return lab

    def find_vm_by_disk(self, disk_resource_id: str) -> tuple[LabState, VmState] | None:
        """Find the lab VM whose OS disk has this resource id."""
        for lab in self.labs.values():
            for vm in lab.vms.values():
                if vm.disk.id.lower() == disk_resource_id.lower():
                    return lab, vm
        return None

    def page_size(self) -> int:
        """Return the list page size the world's settings give."""
        return self.services.world.settings.page_size

    def lab_scope(self, call: Call) -> str:
        """Return the RBAC scope (resource id) of the lab ``call`` names."""
        p = call.params
        return f"/subscriptions/{p['sub']}/resourceGroups/{p['rg']}/providers/{NAMESPACE}/labs/{p['lab']}"

    def accepted(self, call: Call, lab: LabState, resource_id: str, work: Work) -> Response:
        """Start a long-running ``work`` on a resource of ``lab`` and answer 202."""
        return self.services.accepted(call, lab.spec, namespace=NAMESPACE, resource_id=resource_id, work=work)

    def get_child(
        self, call: Call, resource_type: str, children: Callable[[LabState], dict[str, T]]
    ) -> tuple[LabState, T]:
        """Return the lab and the VM or custom image ``call`` names (``resource_type`` as in the RBAC action)."""
        name = call.params["name"]
        scope = f"{self.lab_scope(call)}/{resource_type.lower()}/{name}"
        self.authorize(call, scope, f"{NAMESPACE}/labs/{resource_type}/read", write=False)
        lab = self.lab(call, parent=True)
        child = children(lab).get(name.lower())
        if child is None:
            raise not_found(
                f"{NAMESPACE}/labs/{resource_type.lower()}", f"{lab.spec.name}/{name}", lab.spec.resource_group
            )
        return lab, child

    def delete_child(
        self, call: Call, resource_type: str, noun: str, children: Callable[[LabState], dict[str, C]]
    ) -> Response:
        """Delete the lab VM or custom image ``call`` names (LRO; 204 when it does not exist)."""
        name = call.params["name"]
        scope = f"{self.lab_scope(call)}/{resource_type.lower()}/{name}"
        self.authorize(call, scope, f"{NAMESPACE}/labs/{resource_type}/delete", write=True)
        lab = self.lab(call, parent=True)
        collection = children(lab)
        key = name.lower()
        child = collection.get(key)
        if child is None:
            return Response(status_code=204)
        if child.provisioning_state == "Deleting":
            raise ArmError(409, "Conflict", f"The {noun} '{child.name}' is already being deleted.")
        child.provisioning_state = "Deleting"

        async def work() -> None:
            if collection.get(key) is child:
                del collection[key]

        return self.accepted(call, lab, f"{lab.id}/{resource_type}/{child.name}".lower(), work)
