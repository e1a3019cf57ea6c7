"""Which factory VMs clean-up deletes (the original's CleanUpFactory, made safe) and which it leaves alone."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from image_factory import imagepaths
from image_factory.catalogue import parse_timestamp
from image_factory.models import FACTORY_IGNORE_TAG, IMAGE_PATH_TAG, FactoryVm, ImageVersion
from image_factory.retention.decisions import Action, Decision, RetentionPlan
from image_factory.states import ProvisioningState

KEEP_POWERSHELL_CAPTURE = (
    "captured by the PowerShell factory (its sidecar names no VM): kept, clean-up deletes only what this factory"
    " captured (a run captures it again when its disk is not catalogued by this factory)"
)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def captured_vms(vms: Iterable[FactoryVm], images: Iterable[ImageVersion]) -> set[str]:
    """Return the factory VMs whose capture succeeded: a sidecar names the VM as ``sourceVm``, for the VM's own
    ImagePath, written after the VM was created (a VM re-created under the same name is not captured yet)."""
    by_vm: dict[str, list[ImageVersion]] = {}
    for image in images:
        if image.source_vm:
            by_vm.setdefault(image.source_vm.casefold(), []).append(image)
    captured: set[str] = set()
    for vm in vms:
        tag = vm.tag(IMAGE_PATH_TAG)
        if not tag:
            continue
        for image in by_vm.get(vm.name.casefold(), []):
            if imagepaths.key(image.image_path) != imagepaths.key(tag):
                continue
            written = parse_timestamp(image.timestamp)
            if vm.created is None or (written is not None and written >= _aware(vm.created)):
                captured.add(vm.name)
                break
    return captured


def powershell_captured_vms(vms: Iterable[FactoryVm], images: Iterable[ImageVersion]) -> set[str]:
    """Return the factory VMs the PowerShell factory probably captured: its sidecars name no VM, so a VM counts
    when a sidecar it wrote for the VM's ImagePath is newer than the VM."""
    written: dict[str, list[datetime]] = {}
    for image in images:
        moment = parse_timestamp(image.timestamp) if image.by_powershell else None
        if moment is not None:
            written.setdefault(imagepaths.key(image.image_path), []).append(moment)
    found: set[str] = set()
    for vm in vms:
        tag = vm.tag(IMAGE_PATH_TAG)
        moments = written.get(imagepaths.key(tag), []) if tag else []
        if any(vm.created is None or moment >= _aware(vm.created) for moment in moments):
            found.add(vm.name)
    return found


def _verdict(vm: FactoryVm, captured: set[str], by_powershell: set[str]) -> tuple[Action, str, bool]:
    """Return (action, reason, is an error) for one factory VM."""
    if vm.tag(FACTORY_IGNORE_TAG) is not None:
        return "keep", f"tagged {FACTORY_IGNORE_TAG}", False
    if ProvisioningState.FAILED.matches(vm.provisioning_state):
        return "delete", "failed to provision", True
    if vm.tag(IMAGE_PATH_TAG) is None:
        return "keep", "untagged: not a golden-image VM, reported only", False
    if vm.name.casefold() not in captured:
        by_them = vm.name.casefold() in by_powershell
        return "keep", KEEP_POWERSHELL_CAPTURE if by_them else "not captured yet", False
    if vm.power_state.casefold() != "deallocated":
        return "keep", f"captured, but {vm.power_state or 'not deallocated'} now: someone is using it", False
    return "delete", "captured into the catalogue", False


def cleanup_plan(
    *,
    vms: Iterable[FactoryVm],
    captured_vms: Iterable[str],
    where: str,
    subscription_id: str,
    resource_group: str,
    powershell_captured: Iterable[str] = (),
) -> RetentionPlan:
    """Decide which factory VMs to delete (the original's CleanUpFactory).

    ``FactoryIgnore`` → left alone; provisioning failed → deleted, reported as an error; tagged ``ImagePath`` and
    captured by this factory → deleted, unless it is no longer deallocated (someone started it again); tagged but
    not captured yet → kept (listed as the PowerShell factory's capture when ``powershell_captured`` names it);
    untagged → reported, not deleted.
    """
    captured = {n.casefold() for n in captured_vms}
    by_powershell = {n.casefold() for n in powershell_captured}
    deletions: list[Decision] = []
    kept: list[Decision] = []
    for vm in sorted(vms, key=lambda v: v.name.casefold()):
        action, reason, error = _verdict(vm, captured, by_powershell)
        row = Decision(
            action=action,
            kind="factory_vm",
            where=where,
            name=vm.name,
            reason=reason,
            image_path=vm.tag(IMAGE_PATH_TAG),
            subscription_id=subscription_id,
            resource_group=resource_group,
            error=error,
        )
        (deletions if action == "delete" else kept).append(row)
    return RetentionPlan(deletions=tuple(deletions), kept=tuple(kept))
