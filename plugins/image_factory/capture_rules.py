"""Which factory VMs a run captures, and why it leaves the others alone (the original's SnapImagesFromVMs rules)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from image_factory import imagepaths, naming
from image_factory.catalogue import Catalogue
from image_factory.models import IMAGE_PATH_TAG, IMAGE_TYPE_TAG, FactoryVm, OsType
from image_factory.states import ProvisioningState

#: Prefix of skip reasons that point at a configuration mistake (log them as warnings).
WARNING_PREFIX = "warning: "

_OS_TYPES: dict[str, OsType] = {"windows": "Windows", "linux": "Linux"}
_SYSPREP_BY_TYPE = {"generalized": True, "specialized": False}


@dataclass(frozen=True)
class CaptureJob:
    """One VM to capture into the catalogue as ``image_name`` (``<image_name>.vhd`` + ``.json``)."""

    vm_name: str
    image_path: str
    image_name: str
    version: str
    os_type: OsType
    sysprep: bool
    os_disk_id: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "vm_name": self.vm_name,
            "image_path": self.image_path,
            "image_name": self.image_name,
            "version": self.version,
            "os_type": self.os_type,
            "sysprep": self.sysprep,
            "os_disk_id": self.os_disk_id,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CaptureJob:
        return cls(
            vm_name=data["vm_name"],
            image_path=data["image_path"],
            image_name=data["image_name"],
            version=data["version"],
            os_type=data["os_type"],
            sysprep=data["sysprep"],
            os_disk_id=data.get("os_disk_id"),
        )


class SkippedVm(NamedTuple):
    """A factory VM the run does not capture, with a sentence saying why."""

    vm_name: str
    reason: str

    @property
    def is_warning(self) -> bool:
        """Tell whether the reason is a configuration mistake someone should fix."""
        return self.reason.startswith(WARNING_PREFIX)


def _power(state: str) -> str:
    return state.rsplit("/", 1)[-1].strip().lower()


def _state_reason(vm: FactoryVm) -> str | None:
    """Return why ``vm`` is in no state to be captured, or None when it is a deallocated golden image VM."""
    if not imagepaths.segments(vm.tag(IMAGE_PATH_TAG) or ""):
        return "untagged: no ImagePath tag, so it is not a golden image VM"
    if not ProvisioningState.SUCCEEDED.matches(vm.provisioning_state):
        return f"provisioning {vm.provisioning_state or 'unknown'}: the VM was not created successfully"
    power = _power(vm.power_state)
    if power != "deallocated":
        return f"not deallocated ({power or 'unknown'}): not generalized or still running"
    return None


def _identity(vm: FactoryVm, golden: Mapping[str, str]) -> tuple[str, OsType, bool] | str:
    """Return (image_path, os_type, sysprep) of a capturable ``vm``, or the configuration mistake in its way."""
    tag = (vm.tag(IMAGE_PATH_TAG) or "").strip()
    image_path = golden.get(imagepaths.key(tag))
    if image_path is None:
        return (
            f"{WARNING_PREFIX}ImagePath tag {tag!r} names no golden image file under GoldenImages/; "
            "fix the tag or restore the file"
        )
    image_type = (vm.tag(IMAGE_TYPE_TAG) or "Generalized").strip()
    sysprep = _SYSPREP_BY_TYPE.get(image_type.lower())
    if sysprep is None:
        return f"{WARNING_PREFIX}ImageType tag {image_type!r} is neither Generalized nor Specialized; fix the tag"
    os_type = _OS_TYPES.get(vm.os_type.strip().lower())
    if os_type is None:
        return f"{WARNING_PREFIX}OS type {vm.os_type!r} is neither Windows nor Linux"
    return image_path, os_type, sysprep


def select_candidates(
    vms: Iterable[FactoryVm], catalogue: Catalogue, version: str, golden_images: Iterable[str]
) -> tuple[list[CaptureJob], list[SkippedVm]]:
    """Return the capture jobs of this run's ``version`` and the VMs skipped with their reasons.

    A VM is captured when it has an ``ImagePath`` tag naming a golden image file, provisioned ``Succeeded``
    and is deallocated, unless the catalogue already holds that ImagePath at ``version``. When several VMs
    qualify for one ImagePath, the first by name is captured and the others are skipped.
    """
    golden = {imagepaths.key(p): imagepaths.normalize(p) for p in golden_images}
    skipped: list[SkippedVm] = []
    chosen: dict[str, CaptureJob] = {}
    for vm in sorted(vms, key=lambda v: (v.name.casefold(), v.name)):
        reason = _state_reason(vm)
        found = _identity(vm, golden) if reason is None else reason
        if isinstance(found, str):
            skipped.append(SkippedVm(vm.name, found))
            continue
        image_path, os_type, sysprep = found
        existing = catalogue.find(image_path, version)
        if existing is not None:
            skipped.append(SkippedVm(vm.name, f"already captured for {version} as {existing.image_name}"))
            continue
        path_key = imagepaths.key(image_path)
        first = chosen.get(path_key)
        if first is not None:
            skipped.append(
                SkippedVm(
                    vm.name,
                    f"{WARNING_PREFIX}{first.vm_name} has the same ImagePath {image_path} and is captured "
                    "instead; keep one VM per golden image",
                )
            )
            continue
        chosen[path_key] = CaptureJob(
            vm_name=vm.name,
            image_path=image_path,
            image_name=naming.image_name(image_path, version),
            version=version,
            os_type=os_type,
            sysprep=sysprep,
            os_disk_id=vm.os_disk_id,
        )
    return list(chosen.values()), skipped
