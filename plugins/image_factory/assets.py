"""Airflow Assets: one per ImagePath, with an event each time a run distributes a new version of it.

The DAG's ``announce`` task has the alias :data:`IMAGES` as its outlet and adds, through ``outlet_events``, one
event per (ImagePath, version) this run distributed to at least one lab. Airflow creates the ImagePath's asset on
its first event, so a new golden image needs no DAG change. A downstream DAG schedules on one image
(``schedule=image_asset("Win2016/Datacenter.json")``) or on any (``schedule=IMAGES``); each event's extra says
which version reached which labs, its size and its VHD footer's digest (see :class:`Release`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from airflow.sdk import Asset, AssetAlias

from image_factory import imagepaths
from image_factory.models import ImageVersion, Pair, SkippedPair

if TYPE_CHECKING:
    from image_factory.run_context import RunContext

log = logging.getLogger(__name__)

#: The alias every image's events are emitted through (a DAG may schedule on it: any new image).
IMAGES = AssetAlias("image_factory_images", group="image")
#: What a distribute task returns when its pair ended well (``created`` by this try, ``present`` already).
DONE_ACTIONS = frozenset({"created", "present"})


def image_asset(image_path: str) -> Asset:
    """Return the Asset of one ImagePath (any spelling of it: the canonical one names it)."""
    path = imagepaths.normalize(image_path)
    return Asset(name=f"image_factory/{path}", uri=f"imagefactory://catalogue/{quote(path)}", group="image")


@dataclass(frozen=True)
class Release:
    """One version of one ImagePath that this run distributed, and where it is now."""

    image_path: str
    version: str
    image_name: str
    #: Labs that hold the version after the run (distributed now, or already there), sorted.
    labs_done: tuple[str, ...]
    #: Labs the run distributed it to that do not hold it (their distribute task failed), sorted.
    labs_failed: tuple[str, ...] = ()
    size_bytes: int | None = None
    footer_sha256: str | None = None

    def event_extra(self, run_id: str) -> dict[str, Any]:
        """The asset event's extra (JSON)."""
        return {
            "image_path": self.image_path,
            "version": self.version,
            "image_name": self.image_name,
            "labs_done": list(self.labs_done),
            "labs_failed": list(self.labs_failed),
            "size_bytes": self.size_bytes,
            "footer_sha256": self.footer_sha256,
            "run_id": run_id,
        }


def _sorted(labs: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted(set(labs), key=str.casefold))


def _result(value: Any) -> Mapping[str, Any]:
    """A distribute task's result: a dict, or its JSON text (as the triggerer's TaskSuccessEvent stores it)."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return {}
    return value if isinstance(value, Mapping) else {}


def releases(
    pairs: Sequence[Pair],
    results: Iterable[Any],
    skipped: Sequence[SkippedPair],
    catalogue: Iterable[ImageVersion],
) -> list[Release]:
    """Return the versions this run distributed to at least one lab (pure).

    ``results`` are the distribute tasks' return values (``{"lab", "image_name", "action"}``; a failed task has
    none); ``skipped`` is the plan's skips, whose ``already_present`` labs hold the version too.
    """
    ended = {
        (str(r.get("lab", "")).casefold(), str(r.get("image_name", "")))
        for r in map(_result, results)
        if r.get("action") in DONE_ACTIONS
    }
    groups: dict[tuple[str, str], list[Pair]] = {}
    for pair in pairs:
        groups.setdefault((imagepaths.key(pair.image_path), pair.version), []).append(pair)
    versions = {(imagepaths.key(v.image_path), v.version): v for v in catalogue}
    out: list[Release] = []
    for (path_key, version), group in sorted(groups.items()):
        done = [p.lab_name for p in group if (p.lab_name.casefold(), p.image_name) in ended]
        if not done:
            continue
        already = [
            s.lab_name
            for s in skipped
            if s.reason == "already_present" and s.version == version and imagepaths.key(s.image_path) == path_key
        ]
        failed = [p.lab_name for p in group if p.lab_name not in done]
        image = versions.get((path_key, version))
        out.append(
            Release(
                image_path=imagepaths.normalize(group[0].image_path),
                version=version,
                image_name=group[0].image_name,
                labs_done=_sorted(done + already),
                labs_failed=_sorted(failed),
                size_bytes=image.size_bytes if image else None,
                footer_sha256=image.footer_sha256 if image else None,
            )
        )
    return out


def announce(run: RunContext, outlet_events: Any) -> list[dict[str, Any]]:
    """Add one event on the ImagePath's asset (through :data:`IMAGES`) per version this run distributed.

    Reads what ``plan`` and the distribute tasks handed over, and the catalogue (size, footer digest) only when
    something was distributed; returns the events' extras. A dry run distributes nothing, so announces nothing.
    """
    from image_factory.tasks import PLAN_TASK_ID, REGIONAL_XCOM_KEY, planned, read_catalogue  # noqa: PLC0415

    plan = planned(run)
    if plan is None or run.params.dry_run:
        log.info("Nothing to announce: %s", "dry run" if plan is not None else "no plan")
        return []
    ti = run.xcom()
    pairs = list(plan.pairs)  # both waves
    waves = {
        "distribute": ti.xcom_pull(task_ids=PLAN_TASK_ID) or [],
        "distribute_regional": ti.xcom_pull(task_ids=PLAN_TASK_ID, key=REGIONAL_XCOM_KEY) or [],
    }
    results: list[Any] = []
    for task_id, wave in waves.items():
        # One map index per item of the wave; a failed task's index has none.
        if wave:
            results += list(ti.xcom_pull(task_ids=task_id, map_indexes=list(range(len(wave)))) or [])
    log.info(
        "%d pair(s) planned, %d distribute result(s) handed over (%s)", len(pairs), sum(1 for r in results if r),
        ", ".join(sorted({type(r).__name__ for r in results})),
    )  # fmt: skip
    found = releases(pairs, results, plan.skipped, ()) if pairs else []
    if found:
        found = releases(pairs, results, plan.skipped, read_catalogue(run).images)
    extras = []
    for release in found:
        extra = release.event_extra(run.run_id)
        outlet_events[IMAGES].add(image_asset(release.image_path), extra=extra)
        log.info(
            "Asset %s: version %s reached %s", image_asset(release.image_path).name, release.version,
            ", ".join(release.labs_done),
        )  # fmt: skip
        extras.append(extra)
    if not extras:
        log.info("No new image version reached a lab in this run: no asset event")
    return extras
