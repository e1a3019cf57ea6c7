"""The distribution plan: a pure function of (labs.json, golden images, catalogue, lab inventories) — no Azure calls.

For every lab and every catalogued ImagePath its ImagePaths select (whole segments, case-insensitive), the lab
must end up with each *retained* version (the newest ``ImagesToSave`` of that path): the run's version when it
was captured, and any older retained version the lab lacks (a new lab catches up). A version the lab already has
(``Succeeded``) is skipped as ``already_present``; one it has in state Failed/Canceled is planned again (the
distributor replaces it). A catalogued ImagePath whose golden image file is gone is neither planned nor expected:
retention then retires its versions everywhere.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from image_factory import imagepaths
from image_factory.fanout import region_key
from image_factory.models import ImageVersion, LabImage, LabInventory, LabRef, Pair, Plan, SkippedPair, SkipReason
from image_factory.states import ProvisioningState
from image_factory.versions import sort_key

#: Why a subscribed ImagePath is skipped as ``no_version`` (and, when so, that it selects no golden image file).
NO_CATALOGUED = "no catalogued image matches this ImagePath"
_STATUS_REASON: dict[str, SkipReason] = {
    "not_found": "lab_not_found",
    "forbidden": "forbidden",
    "error": "lab_error",
}


@dataclass(frozen=True)
class _CataloguedPath:
    path: str
    segments: tuple[str, ...]
    retained: tuple[ImageVersion, ...]


def _index_catalogue(images: Iterable[ImageVersion], images_to_save: int) -> list[_CataloguedPath]:
    groups: dict[str, list[ImageVersion]] = {}
    for image in images:
        groups.setdefault(imagepaths.key(image.image_path), []).append(image)
    out = []
    for path_key, versions in sorted(groups.items()):
        newest: dict[str, ImageVersion] = {}
        for image in sorted(versions, key=lambda i: (sort_key(i.version), i.timestamp), reverse=True):
            newest.setdefault(image.version, image)
        retained = tuple(list(newest.values())[:images_to_save])
        out.append(_CataloguedPath(imagepaths.normalize(retained[0].image_path), tuple(path_key.split("/")), retained))
    return out


def _selects(selector: tuple[str, ...], path: tuple[str, ...]) -> bool:
    return bool(selector) and len(selector) <= len(path) and path[: len(selector)] == selector


def _casefolded(path: str) -> tuple[str, ...]:
    return tuple(s.casefold() for s in imagepaths.segments(path))


class _Builder:
    """Accumulates one plan, deduplicating repeated labs."""

    def __init__(self) -> None:
        self.pairs: dict[tuple[str, str], Pair] = {}
        self.skipped: dict[tuple[str, str, str | None], SkippedPair] = {}
        self.expected: set[tuple[str, str, str]] = set()

    def skip(self, lab: LabRef, path: str, reason: SkipReason, detail: str, version: str | None = None) -> None:
        ident = (lab.key, imagepaths.key(path), version)
        self.skipped.setdefault(ident, SkippedPair(lab.lab_name, path, reason, detail, version))

    def build(self) -> Plan:
        pairs = sorted(
            self.pairs.values(),
            key=lambda p: (sort_key(p.version), imagepaths.key(p.image_path), p.lab_name.casefold(), p.subscription_id),
        )
        skipped = sorted(
            self.skipped.values(),
            key=lambda s: (s.lab_name.casefold(), imagepaths.key(s.image_path), sort_key(s.version or ""), s.reason),
        )
        expected = sorted(self.expected, key=lambda e: (sort_key(e[2]), imagepaths.key(e[1]), e[0].casefold()))
        return Plan(pairs=tuple(pairs), skipped=tuple(skipped), expected=tuple(expected))


def plan(
    *,
    labs: Sequence[LabRef],
    catalogue_images: Iterable[ImageVersion],
    inventories: Mapping[str, LabInventory],
    factory_location: str,
    images_to_save: int,
    golden_images: Iterable[str],
    lab_filter: Iterable[str] | None = None,
    path_filter: Iterable[str] | None = None,
) -> Plan:
    """Return what to distribute to which lab, what to skip and why, and what must exist afterwards.

    ``inventories`` maps ``LabRef.key`` to the lab's inventory; ``golden_images`` are the configuration's golden
    image files (ImagePaths): only catalogued versions of those are planned and expected. ``lab_filter`` (lab
    names, case-insensitive) and ``path_filter`` (ImagePath selectors) narrow the run, None meaning no filter.
    Pairs come sorted by (version, ImagePath, lab) so the mapped ``distribute`` tasks are stable across runs.
    """
    if images_to_save < 1:
        raise ValueError(f"images_to_save must be at least 1, not {images_to_save}")
    golden_list = list(golden_images)
    golden = {imagepaths.key(p) for p in golden_list}
    scope = _Scope(
        catalogue=_index_catalogue(
            (i for i in catalogue_images if imagepaths.key(i.image_path) in golden), images_to_save
        ),
        lab_names={n.strip().casefold() for n in lab_filter} if lab_filter is not None else None,
        path_sels=[s for s in map(_casefolded, path_filter) if s] if path_filter is not None else None,
        factory_region=region_key(factory_location),
        golden=[_casefolded(p) for p in golden_list],
    )
    out = _Builder()
    for lab in labs:
        _plan_lab(out, scope, lab, inventories.get(lab.key))
    return out.build()


@dataclass(frozen=True)
class _Scope:
    """What every lab of one plan is planned against: the catalogue and the run's filters."""

    catalogue: list[_CataloguedPath]
    lab_names: set[str] | None
    path_sels: list[tuple[str, ...]] | None
    factory_region: str
    golden: list[tuple[str, ...]]

    def no_version_detail(self, segments: tuple[str, ...]) -> str:
        """Say why a subscribed ImagePath has no version: no golden image file, or none catalogued yet."""
        if not any(_selects(segments, g) for g in self.golden):
            return f"{NO_CATALOGUED}: it selects no golden image file under GoldenImages"
        return NO_CATALOGUED

    def filters_out(self, segments: tuple[str, ...], *, either_way: bool = False) -> bool:
        if self.path_sels is None:
            return False
        if either_way:
            return not any(_selects(f, segments) or _selects(segments, f) for f in self.path_sels)
        return not any(_selects(f, segments) for f in self.path_sels)


def _plan_lab(out: _Builder, scope: _Scope, lab: LabRef, inventory: LabInventory | None) -> None:
    selectors = [(sel, _casefolded(sel)) for sel in lab.image_paths]
    selected = [c for c in scope.catalogue if any(_selects(segs, c.segments) for _, segs in selectors)]
    unmatched = [sel for sel, segs in selectors if not any(_selects(segs, c.segments) for c in scope.catalogue)]
    subscribed = [c.path for c in selected] + unmatched

    if scope.lab_names is not None and lab.lab_name.casefold() not in scope.lab_names:
        for path in subscribed:
            out.skip(lab, path, "filtered", "lab not in this run's lab filter")
        return
    if inventory is None or inventory.status != "ok":
        reason: SkipReason = _STATUS_REASON.get(inventory.status, "lab_error") if inventory else "lab_error"
        detail = inventory.message if inventory else "no inventory was taken of this lab"
        for path in subscribed:
            out.skip(lab, path, reason, detail)
        return

    for sel in unmatched:
        if scope.filters_out(_casefolded(sel), either_way=True):
            out.skip(lab, sel, "filtered", "ImagePath not in this run's path filter")
        else:
            out.skip(lab, sel, "no_version", scope.no_version_detail(_casefolded(sel)))

    present = {image.name.casefold(): image for image in inventory.images}
    for entry in selected:
        if scope.filters_out(entry.segments):
            out.skip(lab, entry.path, "filtered", "ImagePath not in this run's path filter")
            continue
        for image in entry.retained:
            _plan_version(
                out, lab=lab, inventory=inventory, image=image, present=present, factory_region=scope.factory_region
            )


def _plan_version(
    out: _Builder,
    *,
    lab: LabRef,
    inventory: LabInventory,
    image: ImageVersion,
    present: Mapping[str, LabImage],
    factory_region: str,
) -> None:
    path = imagepaths.normalize(image.image_path)
    out.expected.add((lab.lab_name, path, image.version))
    existing = present.get(image.image_name.casefold())
    if existing is not None and ProvisioningState.SUCCEEDED.matches(existing.provisioning_state):
        out.skip(lab, path, "already_present", f"{image.image_name} is in the lab", image.version)
        return
    location = inventory.location or ""
    out.pairs.setdefault(
        (lab.key, image.image_name.casefold()),
        Pair(
            lab_name=lab.lab_name,
            subscription_id=lab.subscription_id,
            resource_group=inventory.resource_group or lab.resource_group or "",
            location=location,
            image_name=image.image_name,
            image_path=path,
            version=image.version,
            vhd_blob=image.vhd_blob,
            os_type=image.os_type,
            sysprep=image.sysprep,
            description=image.description,
            cross_region=region_key(location) != factory_region,
            existing_state=existing.provisioning_state if existing is not None else None,
        ),
    )
