"""Value objects shared by every concern of the factory: configuration, catalogue, inventory, factory VMs, plan.

They are plain frozen dataclasses; those that cross XCom (the plan and its pairs) have ``to_dict``/``from_dict``
to travel as small JSON documents. None of them ever holds a secret (keys, client secrets, SAS tokens).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
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
