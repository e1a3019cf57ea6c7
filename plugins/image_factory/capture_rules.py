"""Which factory VMs a run captures, and why it leaves the others alone (the original's SnapImagesFromVMs rules).

Two steps around one ARM read: ``select_candidates`` picks the VMs in a state to be captured (one per ImagePath);
the run reads each candidate's OS disk (``FactoryComputeHook.disk_fingerprint``) and ``decide_captures`` captures
only what changed since the newest catalogued version of its ImagePath, under the next version of the run's day.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from image_factory import imagepaths, naming, versions
from image_factory.catalogue import Catalogue
from image_factory.models import (
    IMAGE_PATH_TAG,
    IMAGE_TYPE_TAG,
    CaptureSource,
    DiskFingerprint,
    FactoryVm,
    ImageVersion,
    OsType,
)
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
    #: What the disk looked like when the run chose it; the sidecar records it.
    source: CaptureSource | None = None
    #: The run capturing it (recorded in the sidecar: a retry of that run never recaptures the path).
    run_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "vm_name": self.vm_name,
            "image_path": self.image_path,
            "image_name": self.image_name,
            "version": self.version,
            "os_type": self.os_type,
            "sysprep": self.sysprep,
            "os_disk_id": self.os_disk_id,
            "source": self.source.to_document() if self.source is not None else None,
            "run_id": self.run_id,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CaptureJob:
        source = data.get("source")
        return cls(
            vm_name=data["vm_name"],
            image_path=data["image_path"],
            image_name=data["image_name"],
            version=data["version"],
            os_type=data["os_type"],
            sysprep=data["sysprep"],
            os_disk_id=data.get("os_disk_id"),
            source=CaptureSource.from_document(source) if source else None,
            run_id=data.get("run_id"),
        )


@dataclass(frozen=True)
class Candidate:
    """A factory VM in a state to be captured, the one chosen for its ImagePath, before its disk is compared."""

    vm: FactoryVm
    image_path: str
    os_type: OsType
    sysprep: bool


@dataclass(frozen=True)
class PathSummary:
    """What the run did about one ImagePath: captured a new version from a VM, or left it unchanged."""

    image_path: str
    version: str
    vm_name: str | None = None

    @property
    def text(self) -> str:
        if self.vm_name is None:
            return f"unchanged since {self.version}"
        return f"captured {self.version} from {self.vm_name}"


@dataclass(frozen=True)
class CaptureDecision:
    """The capture jobs of a run, the VMs left alone (with why), and one summary per ImagePath considered."""

    jobs: list[CaptureJob]
    skipped: list[SkippedVm]
    summaries: list[PathSummary]

    def summary(self) -> dict[str, str]:
        """Return ImagePath → ``captured <version> from <vm>`` / ``unchanged since <version>`` (for XCom)."""
        return {s.image_path: s.text for s in self.summaries}


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
    vms: Iterable[FactoryVm], golden_images: Iterable[str]
) -> tuple[list[Candidate], list[SkippedVm]]:
    """Return the VMs that may be captured (one per ImagePath) and the VMs skipped with their reasons.

    A VM qualifies when it has an ``ImagePath`` tag naming a golden image file, provisioned ``Succeeded`` and is
    deallocated. When several VMs qualify for one ImagePath, the first by name is the candidate and the others
    are skipped.
    """
    golden = {imagepaths.key(p): imagepaths.normalize(p) for p in golden_images}
    skipped: list[SkippedVm] = []
    chosen: dict[str, Candidate] = {}
    for vm in sorted(vms, key=lambda v: (v.name.casefold(), v.name)):
        reason = _state_reason(vm)
        found = _identity(vm, golden) if reason is None else reason
        if isinstance(found, str):
            skipped.append(SkippedVm(vm.name, found))
            continue
        image_path, os_type, sysprep = found
        first = chosen.get(imagepaths.key(image_path))
        if first is not None:
            skipped.append(
                SkippedVm(
                    vm.name,
                    f"{WARNING_PREFIX}{first.vm.name} has the same ImagePath {image_path} and is captured "
                    "instead; keep one VM per golden image",
                )
            )
            continue
        chosen[imagepaths.key(image_path)] = Candidate(vm, image_path, os_type, sysprep)
    return list(chosen.values()), skipped


def source_of(vm: FactoryVm, disk: DiskFingerprint | None) -> CaptureSource | None:
    """Return what capturing ``vm`` now would record as its source; None when ARM tells too little to compare."""
    if not vm.resource_id or not vm.os_disk_id or disk is None:
        return None
    return CaptureSource.of(vm.resource_id, vm.os_disk_id, disk)


def _stands(newest: ImageVersion | None, source: CaptureSource | None, *, forced: bool, run_id: str) -> bool:
    """Tell whether the newest catalogued version stands for the candidate's disk as it is (no capture needed)."""
    if newest is None:
        return False
    if forced:
        # recapture: once per run (a retry or a re-run of the night finds its own capture).
        return bool(run_id) and newest.run_id == run_id
    return source is not None and source.same_as(newest.source)


def decide_captures(
    candidates: Iterable[Candidate],
    sources: Mapping[str, CaptureSource | None],
    catalogue: Catalogue,
    day: str,
    *,
    recapture: Sequence[str] = (),
    run_id: str = "",
) -> CaptureDecision:
    """Return which candidates this run captures, on ``day``, and the summary of each ImagePath.

    A candidate is captured when the newest catalogued version of its ImagePath (by ``versions.sort_key``) was
    taken from another source than its disk is now (``sources``: VM name → source; a version without one, or a
    disk ARM tells too little about, counts as changed), or when ``recapture`` selects its ImagePath — unless this
    same run (a retry, a re-run of the night) already captured it. Its version is ``versions.next_version`` of
    ``day`` after every version the catalogue names for the path, so a same-day rebuild is ``<day>.2``.
    """
    decision = CaptureDecision([], [], [])
    for candidate in candidates:
        path, vm = candidate.image_path, candidate.vm
        newest, source = catalogue.newest(path), sources.get(vm.name)
        forced = bool(recapture) and bool(imagepaths.selected(recapture, [path]))
        if newest is not None and _stands(newest, source, forced=forced, run_id=run_id):
            if forced:
                decision.skipped.append(SkippedVm(vm.name, f"recaptured by this run as {newest.image_name}"))
                decision.summaries.append(PathSummary(path, newest.version, newest.source_vm or vm.name))
            else:
                decision.skipped.append(SkippedVm(vm.name, f"unchanged since {newest.version} ({newest.image_name})"))
                decision.summaries.append(PathSummary(path, newest.version))
            continue
        version = versions.next_version(day, catalogue.versions_of(path))
        job = CaptureJob(
            vm_name=vm.name,
            image_path=path,
            image_name=naming.image_name(path, version),
            version=version,
            os_type=candidate.os_type,
            sysprep=candidate.sysprep,
            os_disk_id=vm.os_disk_id,
            source=source,
            run_id=run_id or None,
        )
        decision.jobs.append(job)
        decision.summaries.append(PathSummary(path, version, vm.name))
    return decision
