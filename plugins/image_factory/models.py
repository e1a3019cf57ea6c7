"""Value objects shared by every concern of the factory: configuration, catalogue, inventory, factory VMs, plan.

They are plain frozen dataclasses; those that cross XCom (the plan and its pairs) have ``to_dict``/``from_dict``
to travel as small JSON documents. None of them ever holds a secret (keys, client secrets, SAS tokens).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

OsType = Literal["Windows", "Linux"]

#: Tag every custom image made by the factory carries; retention only ever touches images with it.
MANAGED_BY_TAG = "ImageFactory.ManagedBy"
MANAGED_BY_VALUE = "airflow-image-factory"
#: Tag with the image's ImagePath (the original factory's tag name, kept for compatibility).
IMAGE_PATH_TAG = "ImagePath"
#: Tag with the catalogue version (ISO date) of the image.
VERSION_TAG = "ImageFactory.Version"
#: VM tag that marks a factory VM as specialized (not sysprepped / deprovisioned). Absent = Generalized.
IMAGE_TYPE_TAG = "ImageType"
#: VM tag that makes factory clean-up leave a VM alone (the original's name).
FACTORY_IGNORE_TAG = "FactoryIgnore"


def _plain(obj: Any) -> dict[str, Any]:
    return {f.name: _to_json(getattr(obj, f.name)) for f in dataclasses.fields(obj)}


def _to_json(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _plain(value)
    if isinstance(value, tuple | list):
        return [_to_json(v) for v in value]
    return value


@dataclass(frozen=True)
class LabRef:
    """One entry of ``Labs.json``: a target lab and the ImagePaths it subscribes to."""

    subscription_id: str
    lab_name: str
    image_paths: tuple[str, ...]
    resource_group: str | None = None

    @property
    def key(self) -> str:
        """Identity of the lab: subscription + name, case-insensitive (as Azure compares them)."""
        return f"{self.subscription_id.lower()}/{self.lab_name.lower()}"


def _instant(text: str | None) -> str | None:
    """Return an ARM time as one spelling of its instant (``Z`` or ``+00:00``, any precision); text as it is."""
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return text.strip()
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC).isoformat()


@dataclass(frozen=True)
class DiskFingerprint:
    """What ``Disks_Get`` says about a managed disk's identity: a rebuilt VM has a new disk (new ``uniqueId``,
    creation time), and ``lastOwnershipUpdateTime`` moves whenever the VM is started or deallocated."""

    unique_id: str | None
    time_created: str | None
    last_ownership_update_time: str | None


#: The sidecar's ``source`` keys, in the order they are written.
SOURCE_KEYS = ("vmId", "osDiskId", "diskUniqueId", "diskTimeCreated", "diskLastOwnershipUpdateTime")


@dataclass(frozen=True)
class CaptureSource:
    """What a catalogued version was captured from: the lab VM, its OS disk and that disk's fingerprint."""

    vm_id: str
    os_disk_id: str
    disk_unique_id: str | None = None
    disk_time_created: str | None = None
    disk_last_ownership_update_time: str | None = None

    @classmethod
    def of(cls, vm_id: str, os_disk_id: str, disk: DiskFingerprint) -> CaptureSource:
        return cls(vm_id, os_disk_id, disk.unique_id, disk.time_created, disk.last_ownership_update_time)

    def _identity(self) -> tuple[str | None, ...]:
        # ARM ids and the unique id compare case-insensitively; times as instants.
        return (
            self.vm_id.casefold(),
            self.os_disk_id.casefold(),
            (self.disk_unique_id or "").casefold() or None,
            _instant(self.disk_time_created),
            _instant(self.disk_last_ownership_update_time),
        )

    def same_as(self, other: CaptureSource | None) -> bool:
        """Tell whether ``other`` is this same disk, untouched: a source without a disk unique id never is."""
        return other is not None and bool(self.disk_unique_id) and self._identity() == other._identity()

    def to_document(self) -> dict[str, str | None]:
        """Return the sidecar's ``source`` object."""
        return dict(zip(SOURCE_KEYS, dataclasses.astuple(self), strict=True))

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> CaptureSource:
        """Read a sidecar's ``source`` object; ValueError naming the key that is not a string."""
        values: list[str | None] = []
        for key in SOURCE_KEYS:
            value = doc.get(key)
            if value is not None and not isinstance(value, str):
                raise ValueError(f"source.{key} must be a string, not {type(value).__name__}")
            values.append(value)
        vm_id, os_disk_id, *disk = values
        if not vm_id or not os_disk_id:
            raise ValueError("source needs vmId and osDiskId")
        return cls(vm_id, os_disk_id, *disk)


@dataclass(frozen=True)
class ImageVersion:
    """One catalogued image version: a VHD + its JSON sidecar in the factory's storage."""

    image_name: str
    image_path: str
    version: str
    vhd_blob: str
    os_type: OsType
    sysprep: bool
    description: str = ""
    timestamp: str = ""
    size_bytes: int | None = None
    source_vm: str | None = None
    footer_sha256: str | None = None
    #: What it was captured from (None: a sidecar older than fingerprints, or the PowerShell factory's).
    source: CaptureSource | None = None
    #: The run that captured it (a retry of that run never captures its ImagePath again).
    run_id: str | None = None
    #: Written by the PowerShell factory (a sidecar without ``schemaVersion``).
    by_powershell: bool = False


@dataclass(frozen=True)
class LabImage:
    """A custom image found in a lab."""

    name: str
    provisioning_state: str
    image_path: str | None = None
    version: str | None = None
    managed: bool = False
    os_type: str | None = None
    sysprep: bool | None = None
    vhd_name: str | None = None
    #: The ``ImageFactory.ManagedBy`` tag's value (None: no such tag; the PowerShell factory never set one).
    managed_by: str | None = None
    #: The image's ``creationDate`` (None when ARM gives none).
    created: datetime | None = None


LabStatus = Literal["ok", "not_found", "forbidden", "error"]


@dataclass(frozen=True)
class LabInventory:
    """What one target lab looks like in Azure right now (one ``labs.get`` + one custom image list)."""

    lab: LabRef
    status: LabStatus
    resource_group: str | None = None
    location: str | None = None
    images: tuple[LabImage, ...] = ()
    message: str = ""


@dataclass(frozen=True)
class FactoryVm:
    """A VM of the factory lab, as capture and factory clean-up see it (built by the DevTest Labs hook)."""

    name: str
    tags: Mapping[str, str] = field(default_factory=dict)
    provisioning_state: str = "Succeeded"
    #: The power state code without its ``PowerState/`` prefix: ``deallocated``, ``running``, ``stopped``…
    #: (a captured VM someone started again after its capture is left alone).
    power_state: str = "deallocated"
    os_type: str = "Windows"
    os_disk_id: str | None = None
    #: The lab VM's ``createdDate`` (None when ARM gives none): a sidecar older than the VM is not its capture.
    created: datetime | None = None
    #: The lab VM's ARM resource id (``…/providers/Microsoft.DevTestLab/labs/<lab>/virtualmachines/<vm>``).
    resource_id: str | None = None

    def tag(self, name: str) -> str | None:
        """Return the value of tag ``name`` (tag names compare case-insensitively, as in Azure)."""
        wanted = name.casefold()
        return next((value for key, value in self.tags.items() if key.casefold() == wanted), None)


@dataclass(frozen=True)
class Pair:
    """One (lab, image version) the run must distribute: the unit of a mapped ``distribute`` task."""

    lab_name: str
    subscription_id: str
    resource_group: str
    location: str
    image_name: str
    image_path: str
    version: str
    vhd_blob: str
    os_type: OsType
    sysprep: bool
    description: str = ""
    cross_region: bool = False
    #: The image's provisioning state when the plan found it in the lab (e.g. ``Failed``), None when absent.
    existing_state: str | None = None
    #: Region fan-out: a seed keeps its uploaded VHD for the other labs of its region (deleted by ``cleanup``).
    keep_upload: bool = False
    #: Region fan-out: copy from this same-region lab's upload of the image instead of from the factory.
    source_lab: str | None = None
    source_subscription_id: str | None = None
    source_resource_group: str | None = None

    @property
    def label(self) -> str:
        return f"{self.lab_name} / {self.image_name}"

    def to_dict(self) -> dict[str, Any]:
        return _plain(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Pair:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


SkipReason = Literal[
    "already_present", "lab_not_found", "forbidden", "lab_error", "not_subscribed", "filtered", "no_version"
]


@dataclass(frozen=True)
class SkippedPair:
    lab_name: str
    image_path: str
    reason: SkipReason
    detail: str = ""
    version: str | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SkippedPair:
        return cls(**data)


@dataclass(frozen=True)
class Plan:
    """The planner's output: what to distribute, what not and why."""

    pairs: tuple[Pair, ...] = ()
    skipped: tuple[SkippedPair, ...] = ()
    #: (lab_name, image_path, version) that must exist after the run; verify checks exactly these.
    expected: tuple[tuple[str, str, str], ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return _plain(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Plan:
        return cls(
            pairs=tuple(Pair.from_dict(p) for p in data.get("pairs", ())),
            skipped=tuple(SkippedPair.from_dict(s) for s in data.get("skipped", ())),
            expected=tuple((e[0], e[1], e[2]) for e in data.get("expected", ())),
        )
