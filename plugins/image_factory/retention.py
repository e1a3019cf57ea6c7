"""Retention and factory clean-up as pure decisions (the original's RetireImages and CleanUpFactory, made safe).

Given what exists (factory catalogue, each lab's custom images, factory VMs) and the configuration, decide what
to delete and why, and what to keep that a careless rule would have deleted. Executing the decisions is the
operators' job; nothing here talks to Azure.

Safety rules, whatever the other rules say:

- only what the factory made is ever touched: custom images with the ``ImageFactory.ManagedBy`` tag and blobs in
  the factory's own container; a user's image with a matching name or ImagePath tag survives;
- the newest good (``Succeeded``) version of an ImagePath that is still subscribed (its golden image exists and
  the place subscribes to it) is never deleted: keep-N counts healthy versions only and the other rules apply
  only to unsubscribed or removed paths;
- a version this run distributes, or whose VHD is still being uploaded into a lab (an ``uploads`` blob exists),
  is never deleted: retention cannot race distribution.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from image_factory import imagepaths
from image_factory.models import FACTORY_IGNORE_TAG, IMAGE_PATH_TAG, ImageVersion, LabImage, LabInventory, LabRef
from image_factory.states import ProvisioningState

Kind = Literal["custom_image", "catalogue_version", "factory_vm"]

FACTORY = "(factory storage)"

REASON_OLD = "older than the newest {n} versions of {path}"
REASON_GOLDEN_REMOVED = "golden image {path} no longer exists"
REASON_UNSUBSCRIBED = "{lab} no longer subscribes to {path}"
KEEP_IN_FLIGHT = "in use by a distribution (planned by this run or still uploading)"


@dataclass(frozen=True)
class Decision:
    """One row of the retention table: what, where, and why it goes (or stays)."""

    action: Literal["delete", "keep"]
    kind: Kind
    where: str
    name: str
    reason: str
    image_path: str | None = None
    version: str | None = None
    subscription_id: str | None = None
    resource_group: str | None = None
    error: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "kind": self.kind,
            "where": self.where,
            "name": self.name,
            "reason": self.reason,
            "image_path": self.image_path,
            "version": self.version,
            "subscription_id": self.subscription_id,
            "resource_group": self.resource_group,
            "error": self.error,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Decision:
        return cls(**dict(data))


@dataclass(frozen=True)
class RetentionPlan:
    deletions: tuple[Decision, ...] = ()
    kept: tuple[Decision, ...] = ()
    notes: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return {
            "deletions": [d.to_dict() for d in self.deletions],
            "kept": [k.to_dict() for k in self.kept],
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class _Version:
    """A version of one ImagePath in one place, with what deleting it means."""

    path: str
    version: str
    name: str
    healthy: bool = True


def _newest_first(items: Iterable[_Version]) -> list[_Version]:
    return sorted(items, key=lambda v: (v.version, v.name), reverse=True)


def _decide_place(
    *,
    where: str,
    kind: Kind,
    versions: Sequence[_Version],
    subscribed: Mapping[str, bool],
    golden_keys: set[str],
    images_to_save: int,
    protected: set[tuple[str, str]],
    label: str,
) -> tuple[list[tuple[_Version, str]], list[tuple[_Version, str]]]:
    """Split one place's versions into (to delete, kept against a rule) with reasons."""
    by_path: dict[str, list[_Version]] = defaultdict(list)
    for v in versions:
        by_path[imagepaths.key(v.path)].append(v)
    delete: list[tuple[_Version, str]] = []
    kept: list[tuple[_Version, str]] = []
    for path_key, items in sorted(by_path.items()):
        ordered = _newest_first(items)
        path = ordered[0].path
        candidates: list[tuple[_Version, str]] = []
        if path_key not in golden_keys:
            candidates = [(v, REASON_GOLDEN_REMOVED.format(path=path)) for v in ordered]
        elif not subscribed.get(path_key, False):
            candidates = [(v, REASON_UNSUBSCRIBED.format(lab=label, path=path)) for v in ordered]
        else:
            # Keep-N counts healthy versions only: a newer Failed image never pushes out the last good one (the
            # distributor replaces failed images), so a subscribed path always keeps its newest good version.
            healthy = [v for v in ordered if v.healthy]
            old = healthy[images_to_save:]
            candidates = [(v, REASON_OLD.format(n=images_to_save, path=path)) for v in old]
        for v, reason in candidates:
            if (path_key, v.version) in protected:
                kept.append((v, f"{KEEP_IN_FLIGHT} (would go: {reason})"))
                continue
            delete.append((v, reason))
    return delete, kept


def retention_plan(
    *,
    labs: Sequence[LabRef],
    catalogue: Sequence[ImageVersion],
    inventories: Mapping[str, LabInventory],
    golden_images: Sequence[str],
    images_to_save: int,
    factory: LabInventory | None = None,
    in_flight: Iterable[tuple[str, str]] = (),
    lab_filter: Iterable[str] | None = None,
) -> RetentionPlan:
    """Decide what retention deletes.

    :param labs: labs.json's labs; ``inventories`` maps ``LabRef.key`` to each lab's current custom images.
    :param catalogue: the factory catalogue (sidecars with their VHDs).
    :param factory: the factory lab's own inventory (its managed custom images are retired like any lab's).
    :param in_flight: (image_path, version) pairs that must survive: the versions this run distributes and those
        whose VHD is still in some lab's ``uploads`` container.
    :param lab_filter: lab names to retire in (case-insensitive); the catalogue is only retired without a filter.
    """
    if images_to_save < 1:
        raise ValueError("images_to_save must be at least 1")
    golden_keys = {imagepaths.key(p) for p in golden_images}
    protected = {(imagepaths.key(p), v) for p, v in in_flight}
    wanted = {n.casefold() for n in lab_filter} if lab_filter else None
    deletions: list[Decision] = []
    kept: list[Decision] = []
    notes: list[str] = []

    def lab_versions(images: Iterable[LabImage]) -> list[_Version]:
        return [
            _Version(
                path=i.image_path,
                version=i.version or "",
                name=i.name,
                healthy=i.provisioning_state == ProvisioningState.SUCCEEDED,
            )
            for i in images
            if i.managed and i.image_path
        ]

    def emit(
        where: str,
        kind: Kind,
        decided: tuple[list[tuple[_Version, str]], list[tuple[_Version, str]]],
        sub: str | None = None,
        rg: str | None = None,
    ) -> None:
        for action, rows in (("delete", decided[0]), ("keep", decided[1])):
            for v, reason in rows:
                d = Decision(
                    action=action,  # type: ignore[arg-type]
                    kind=kind,
                    where=where,
                    name=v.name,
                    reason=reason,
                    image_path=imagepaths.normalize(v.path),
                    version=v.version,
                    subscription_id=sub,
                    resource_group=rg,
                )
                (deletions if action == "delete" else kept).append(d)

    # The factory catalogue: subscribed = selected by any lab of labs.json.
    if wanted is None:
        cat_versions = [_Version(path=i.image_path, version=i.version, name=i.image_name) for i in catalogue]
        # The catalogue keeps the newest N of every image the factory makes, subscribed by a lab or not.
        subscribed = {imagepaths.key(v.path): True for v in cat_versions}
        emit(
            FACTORY,
            "catalogue_version",
            _decide_place(
                where=FACTORY,
                kind="catalogue_version",
                versions=cat_versions,
                subscribed=subscribed,
                golden_keys=golden_keys,
                images_to_save=images_to_save,
                protected=protected,
                label="the factory",
            ),
        )
    else:
        notes.append("catalogue not retired: the run is limited to some labs")

    # The factory lab: it "subscribes" to every golden image.
    if factory is not None and factory.status == "ok" and (wanted is None or factory.lab.lab_name.casefold() in wanted):
        versions = lab_versions(factory.images)
        emit(
            factory.lab.lab_name,
            "custom_image",
            _decide_place(
                where=factory.lab.lab_name,
                kind="custom_image",
                versions=versions,
                subscribed={imagepaths.key(v.path): True for v in versions},
                golden_keys=golden_keys,
                images_to_save=images_to_save,
                protected=protected,
                label=factory.lab.lab_name,
            ),
            factory.lab.subscription_id,
            factory.resource_group,
        )

    for lab in labs:
        if wanted is not None and lab.lab_name.casefold() not in wanted:
            continue
        inv = inventories.get(lab.key)
        if inv is None or inv.status != "ok":
            notes.append(
                f"{lab.lab_name}: not retired ({inv.status if inv else 'no inventory'}: {inv.message if inv else ''})"
            )
            continue
        versions = lab_versions(inv.images)
        subscribed = {
            imagepaths.key(v.path): any(imagepaths.selects(s, v.path) for s in lab.image_paths) for v in versions
        }
        emit(
            lab.lab_name,
            "custom_image",
            _decide_place(
                where=lab.lab_name,
                kind="custom_image",
                versions=versions,
                subscribed=subscribed,
                golden_keys=golden_keys,
                images_to_save=images_to_save,
                protected=protected,
                label=lab.lab_name,
            ),
            lab.subscription_id,
            inv.resource_group,
        )
    return RetentionPlan(deletions=tuple(deletions), kept=tuple(kept), notes=tuple(notes))


@dataclass(frozen=True)
class VmFacts:
    """What factory clean-up needs to know of a factory VM."""

    name: str
    tags: Mapping[str, str]
    provisioning_state: str
    #: Power state code without ``PowerState/`` (``deallocated``, ``running``…); a captured VM someone started
    #: again after its capture is left alone.
    power_state: str = "deallocated"


def _tag(tags: Mapping[str, str], name: str) -> str | None:
    wanted = name.casefold()
    return next((v for k, v in tags.items() if k.casefold() == wanted), None)


def cleanup_plan(
    *, vms: Iterable[VmFacts], captured_vms: Iterable[str], where: str, subscription_id: str, resource_group: str
) -> RetentionPlan:
    """Decide which factory VMs to delete (the original's CleanUpFactory).

    ``FactoryIgnore`` → left alone; provisioning failed → deleted, reported as an error; tagged ``ImagePath`` and
    captured by this factory → deleted, unless it is no longer deallocated (someone started it again); tagged but
    not captured yet → kept; untagged → reported, not deleted.
    """
    captured = {n.casefold() for n in captured_vms}
    deletions: list[Decision] = []
    kept: list[Decision] = []
    for vm in sorted(vms, key=lambda v: v.name.casefold()):
        common = {
            "kind": "factory_vm",
            "where": where,
            "name": vm.name,
            "subscription_id": subscription_id,
            "resource_group": resource_group,
            "image_path": _tag(vm.tags, IMAGE_PATH_TAG),
        }
        if _tag(vm.tags, FACTORY_IGNORE_TAG) is not None:
            kept.append(Decision(action="keep", reason=f"tagged {FACTORY_IGNORE_TAG}", **common))  # type: ignore[arg-type]
        elif ProvisioningState.FAILED.matches(vm.provisioning_state):
            deletions.append(
                Decision(action="delete", reason="failed to provision", error=True, **common)  # type: ignore[arg-type]
            )
        elif _tag(vm.tags, IMAGE_PATH_TAG) is None:
            kept.append(Decision(action="keep", reason="untagged: not a golden-image VM, reported only", **common))  # type: ignore[arg-type]
        elif vm.name.casefold() in captured and vm.power_state.casefold() != "deallocated":
            reason = f"captured, but {vm.power_state or 'not deallocated'} now: someone is using it"
            kept.append(Decision(action="keep", reason=reason, **common))  # type: ignore[arg-type]
        elif vm.name.casefold() in captured:
            deletions.append(Decision(action="delete", reason="captured into the catalogue", **common))  # type: ignore[arg-type]
        else:
            kept.append(Decision(action="keep", reason="not captured yet", **common))  # type: ignore[arg-type]
    return RetentionPlan(deletions=tuple(deletions), kept=tuple(kept))


def render_table(plan: RetentionPlan, *, dry_run: bool) -> str:
    """A readable table of the decisions (what was, or in a dry run would be, deleted where and why)."""
    rows = [("action", "kind", "where", "name", "version", "reason")]
    verb = "would delete" if dry_run else "delete"
    for d in plan.deletions:
        rows.append((verb + (" (error)" if d.error else ""), d.kind, d.where, d.name, d.version or "", d.reason))
    for d in plan.kept:
        rows.append(("keep", d.kind, d.where, d.name, d.version or "", d.reason))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(r)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines.extend(f"note: {n}" for n in plan.notes)
    if len(rows) == 1:
        lines.append("(nothing to retire)")
    return "\n".join(lines)
