"""Which image versions retention deletes: keep-N, removed golden images, unsubscribed paths — made safe.

Given what exists (the factory catalogue, each lab's custom images, the factory lab's) and the configuration,
decide what to delete and why, and what to keep that a careless rule would have deleted.

Safety rules, whatever the other rules say:

- only what the factory made is ever touched: custom images with the ``ImageFactory.ManagedBy`` tag and blobs in
  the factory's own container; a user's image with a matching name or ImagePath tag survives; the PowerShell
  factory's images and catalogue versions (``powershell``) are listed as kept, and only with
  ``AdoptPowerShellImages`` on counted in keep-N and deleted beyond it (never for another rule, never when their
  ImagePath is no golden image the factory knows);
- the newest good (``Succeeded``) version of an ImagePath that is still subscribed (its golden image exists and
  the place subscribes to it) is never deleted: keep-N counts healthy versions only and the other rules apply
  only to unsubscribed or removed paths;
- a version this run distributes to a lab or expects there, or whose VHD is still being uploaded into a lab (an
  ``uploads`` blob exists), is never deleted from that lab nor from the catalogue its copy comes from: retention
  cannot race distribution. It does not protect other labs' copies of that version (a lab that no longer
  subscribes to a path loses it while others keep it).

Versions order by ``versions.sort_key`` (day, then same-day ordinal), never as text.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from image_factory import imagepaths, versions
from image_factory.models import ImageVersion, LabImage, LabInventory, LabRef
from image_factory.retention import powershell
from image_factory.retention.decisions import FACTORY, Action, Decision, Kind, RetentionPlan, merge
from image_factory.retention.powershell import MadeBy
from image_factory.states import ProvisioningState

REASON_OLD = "older than the newest {n} versions of {path}"
REASON_GOLDEN_REMOVED = "golden image {path} no longer exists"
REASON_UNSUBSCRIBED = "{lab} no longer subscribes to {path}"
KEEP_IN_FLIGHT = "in use by a distribution (planned by this run or still uploading)"
NOTE_CATALOGUE_FILTERED = "catalogue not retired: the run is limited to some labs"


@dataclass(frozen=True)
class _Version:
    """A version of one ImagePath in one place, with what deleting it means."""

    path: str
    version: str
    name: str
    healthy: bool = True
    made_by: MadeBy = "factory"


@dataclass(frozen=True)
class _Rules:
    """What every place is judged by: the golden images, ``ImagesToSave`` and the versions that must survive."""

    golden_keys: frozenset[str]
    images_to_save: int
    #: (lab name casefolded, ImagePath key, version) a distribution uses: that lab's copy survives.
    protected: frozenset[tuple[str, str, str]]
    #: factory.json's ``AdoptPowerShellImages``: the PowerShell factory's versions count in keep-N and may go.
    adopt: bool = False

    def protects(self, place: _Place, path_key: str, version: str) -> bool:
        """Tell whether a distribution uses this version here: in a lab its own, in the catalogue any lab's."""
        if place.kind == "catalogue_version":
            return any((p, v) == (path_key, version) for _lab, p, v in self.protected)
        return (place.where.casefold(), path_key, version) in self.protected


@dataclass(frozen=True)
class _Place:
    """Where the versions are, as the rows name it."""

    where: str
    kind: Kind
    label: str
    subscription_id: str | None = None
    resource_group: str | None = None


def _newest_first(items: Iterable[_Version]) -> list[_Version]:
    return sorted(items, key=lambda v: (versions.sort_key(v.version), v.name), reverse=True)


def _doomed(
    ordered: Sequence[_Version], *, path_key: str, subscribed: bool, rules: _Rules, label: str
) -> list[tuple[_Version, str]]:
    """Return the versions of one ImagePath (newest first) that a rule would delete, with the rule's reason."""
    path = ordered[0].path
    if path_key not in rules.golden_keys:
        return [(v, REASON_GOLDEN_REMOVED.format(path=path)) for v in ordered]
    if not subscribed:
        return [(v, REASON_UNSUBSCRIBED.format(lab=label, path=path)) for v in ordered]
    # Keep-N counts healthy versions only: a newer Failed image never pushes out the last good one (the
    # distributor replaces failed images), so a subscribed path always keeps its newest good version.
    healthy = [v for v in ordered if v.healthy]
    return [(v, REASON_OLD.format(n=rules.images_to_save, path=path)) for v in healthy[rules.images_to_save :]]


def _split_powershell(versions: Sequence[_Version], rules: _Rules) -> tuple[list[_Version], list[_Version], list[str]]:
    """Return the versions keep-N judges, the PowerShell factory's kept whatever the rules say (with why)."""
    judged: list[_Version] = []
    spared: list[_Version] = []
    reasons: list[str] = []
    for v in versions:
        if v.made_by == "factory":
            judged.append(v)
        elif not rules.adopt:
            spared.append(v)
            reasons.append(powershell.KEEP_NOT_ADOPTED)
        elif imagepaths.key(v.path) not in rules.golden_keys:
            spared.append(v)
            reasons.append(powershell.KEEP_UNKNOWN_PATH.format(path=imagepaths.normalize(v.path)))
        else:
            judged.append(v)
    return judged, spared, reasons


def _decide_place(
    place: _Place, versions: Sequence[_Version], subscribed: Mapping[str, bool], rules: _Rules
) -> RetentionPlan:
    """Split one place's versions into deletions and versions kept against a rule, with reasons."""
    judged, spared, spared_reasons = _split_powershell(versions, rules)
    kept: list[Decision] = [_row(place, "keep", v, r) for v, r in zip(spared, spared_reasons, strict=True)]
    by_path: dict[str, list[_Version]] = defaultdict(list)
    for v in judged:
        by_path[imagepaths.key(v.path)].append(v)
    deletions: list[Decision] = []
    for path_key, items in sorted(by_path.items()):
        ordered = _newest_first(items)
        doomed = _doomed(
            ordered, path_key=path_key, subscribed=subscribed.get(path_key, False), rules=rules, label=place.label
        )
        keep_n = REASON_OLD.format(n=rules.images_to_save, path=ordered[0].path)
        for v, reason in doomed:
            if rules.protects(place, path_key, v.version):
                kept.append(_row(place, "keep", v, f"{KEEP_IN_FLIGHT} (would go: {reason})"))
            elif v.made_by == "powershell" and reason != keep_n:
                kept.append(_row(place, "keep", v, powershell.KEEP_NOT_KEEP_N.format(reason=reason)))
            elif v.made_by == "powershell":
                deletions.append(_row(place, "delete", v, powershell.ADOPTED + reason))
            else:
                deletions.append(_row(place, "delete", v, reason))
    return RetentionPlan(deletions=tuple(deletions), kept=tuple(kept))


def _row(place: _Place, action: Action, v: _Version, reason: str) -> Decision:
    return Decision(
        action=action,
        kind=place.kind,
        where=place.where,
        name=v.name,
        reason=reason,
        image_path=imagepaths.normalize(v.path),
        version=v.version,
        subscription_id=place.subscription_id,
        resource_group=place.resource_group,
        adopted=action == "delete" and v.made_by == "powershell",
    )


def _lab_versions(images: Iterable[LabImage]) -> list[_Version]:
    """Return a lab's versions retention judges: the factory's own images (with the marker tag) and the PowerShell
    factory's (see ``powershell.made_by``); anyone else's image is never one."""
    found: list[_Version] = []
    for i in images:
        maker = powershell.made_by(i)
        version = i.version if maker == "factory" else powershell.version_of(i)
        if maker == "unknown" or not i.image_path or version is None:
            continue
        healthy = i.provisioning_state == ProvisioningState.SUCCEEDED
        found.append(_Version(path=i.image_path, version=version, name=i.name, healthy=healthy, made_by=maker))
    return found


def _catalogue_plan(catalogue: Sequence[ImageVersion], rules: _Rules) -> RetentionPlan:
    versions = [
        _Version(i.image_path, i.version, i.image_name, made_by="powershell" if i.by_powershell else "factory")
        for i in catalogue
    ]
    # The catalogue keeps the newest N of every image the factory makes, subscribed by a lab or not.
    subscribed = {imagepaths.key(v.path): True for v in versions}
    return _decide_place(_Place(FACTORY, "catalogue_version", "the factory"), versions, subscribed, rules)


def _factory_lab_plan(factory: LabInventory, rules: _Rules) -> RetentionPlan:
    # The factory lab "subscribes" to every golden image.
    name = factory.lab.lab_name
    versions = _lab_versions(factory.images)
    subscribed = {imagepaths.key(v.path): True for v in versions}
    place = _Place(name, "custom_image", name, factory.lab.subscription_id, factory.resource_group)
    plan = _decide_place(place, versions, subscribed, rules)
    return merge(plan, RetentionPlan(notes=tuple(powershell.untagged_notes(factory.images, name))))


def _lab_plan(lab: LabRef, inventory: LabInventory | None, rules: _Rules) -> RetentionPlan:
    if inventory is None or inventory.status != "ok":
        status, message = (inventory.status, inventory.message) if inventory else ("no inventory", "")
        return RetentionPlan(notes=(f"{lab.lab_name}: not retired ({status}: {message})",))
    versions = _lab_versions(inventory.images)
    subscribed = {imagepaths.key(v.path): any(imagepaths.selects(s, v.path) for s in lab.image_paths) for v in versions}
    place = _Place(lab.lab_name, "custom_image", lab.lab_name, lab.subscription_id, inventory.resource_group)
    plan = _decide_place(place, versions, subscribed, rules)
    return merge(plan, RetentionPlan(notes=tuple(powershell.untagged_notes(inventory.images, lab.lab_name))))


def retention_plan(
    *,
    labs: Sequence[LabRef],
    catalogue: Sequence[ImageVersion],
    inventories: Mapping[str, LabInventory],
    golden_images: Sequence[str],
    images_to_save: int,
    factory: LabInventory | None = None,
    in_flight: Iterable[tuple[str, str, str]] = (),
    lab_filter: Iterable[str] | None = None,
    adopt_powershell: bool = False,
) -> RetentionPlan:
    """Decide what retention deletes.

    :param labs: labs.json's labs; ``inventories`` maps ``LabRef.key`` to each lab's current custom images.
    :param catalogue: the factory catalogue (sidecars with their VHDs).
    :param factory: the factory lab's own inventory (its managed custom images are retired like any lab's).
    :param in_flight: (lab name, image_path, version) that must survive in that lab and in the catalogue: the
        versions this run distributes or expects there and those whose VHD is still in the lab's ``uploads``.
    :param lab_filter: lab names to retire in (case-insensitive); the catalogue is only retired without a filter.
    :param adopt_powershell: factory.json's ``AdoptPowerShellImages``: off, the PowerShell factory's versions are
        listed as kept; on, they count in keep-N with the factory's and go beyond it (never when their ImagePath
        is no golden image this factory knows, never for another rule).
    """
    if images_to_save < 1:
        raise ValueError("images_to_save must be at least 1")
    rules = _Rules(
        golden_keys=frozenset(imagepaths.key(p) for p in golden_images),
        images_to_save=images_to_save,
        protected=frozenset((lab.casefold(), imagepaths.key(p), v) for lab, p, v in in_flight),
        adopt=adopt_powershell,
    )
    wanted = {n.casefold() for n in lab_filter} if lab_filter else None

    def selected(name: str) -> bool:
        return wanted is None or name.casefold() in wanted

    parts = [_catalogue_plan(catalogue, rules) if wanted is None else RetentionPlan(notes=(NOTE_CATALOGUE_FILTERED,))]
    if factory is not None and factory.status == "ok" and selected(factory.lab.lab_name):
        parts.append(_factory_lab_plan(factory, rules))
    parts.extend(_lab_plan(lab, inventories.get(lab.key), rules) for lab in labs if selected(lab.lab_name))
    return merge(*parts)
