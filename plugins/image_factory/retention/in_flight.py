"""What retention must not delete because a distribution uses it: this run's plan, and uploads still running."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from image_factory import imagepaths, naming
from image_factory.models import LabInventory, LabRef, Plan
from image_factory.retention.decisions import Decision


def planned_versions(plan: Plan) -> set[tuple[str, str]]:
    """Return the (ImagePath, version) this run distributes or expects to exist: retention never deletes them."""
    found = {(pair.image_path, pair.version) for pair in plan.pairs}
    found.update((path, version) for _lab, path, version in plan.expected)
    return found


@dataclass(frozen=True)
class UploadCheck:
    """One ``uploads/<blob>`` to look for in one lab, and the version it would protect."""

    subscription_id: str
    resource_group: str
    lab_name: str
    blob: str
    image_path: str
    version: str


def upload_checks(
    deletions: Iterable[Decision], labs: Sequence[LabRef], inventories: Mapping[str, LabInventory]
) -> list[UploadCheck]:
    """Return the uploads to look for before deleting: the image's own lab, and for a catalogue version every
    lab of labs.json that subscribes to its ImagePath (a copy of it can only be running into one of those)."""
    checks: dict[tuple[str, str, str], UploadCheck] = {}

    def add(sub: str, rg: str, lab: str, d: Decision) -> None:
        blob = naming.vhd_blob(d.name)
        checks.setdefault(
            (sub.lower(), lab.lower(), blob.lower()),
            UploadCheck(sub, rg, lab, blob, d.image_path or "", d.version or ""),
        )

    for d in deletions:
        if not d.image_path or not d.version:
            continue
        if d.kind == "custom_image" and d.subscription_id and d.resource_group:
            add(d.subscription_id, d.resource_group, d.where, d)
        elif d.kind == "catalogue_version":
            for lab in labs:
                inv = inventories.get(lab.key)
                if inv is None or inv.status != "ok" or not inv.resource_group:
                    continue
                if any(imagepaths.selects(s, d.image_path) for s in lab.image_paths):
                    add(lab.subscription_id, inv.resource_group, lab.lab_name, d)
    return list(checks.values())
