"""P1 (ARM requests per run, 20 labs x 10 images) and P3 (a no-op re-run right after it), both sides.

P1 counts the emulator's ARM requests (reads, writes, actions, LRO polls) and those made while copies are pending;
P3 re-runs at once, with every pair already present: wall time as a fraction of the first run, copies, writes.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any

from bench import worlds
from bench.baseline import BaselineResult, BaselineSettings
from bench.measure import (
    ORIGINAL_COPY_SECONDS,
    RUN_DIR,
    arm_count,
    arm_total,
    baseline_facts,
    baseline_settings,
    measure_baseline,
    operation_count,
    stats_digest,
    while_pending,
    world_facts,
)
from bench.ours import DISTRIBUTE_ONLY, OursRun, ours_side
from bench.report import Figure, Outcome, compared

COPY_SECONDS = 2.0
LRO_SECONDS = 1.0
POOL = 20

Stats = Mapping[str, Any]

#: What each ARM read (GET, polls apart) of a distribution-only run is for.
READ_PURPOSES = {
    "Labs_Get": "the factory lab's region (plan), and any lab its subscription's listing did not show",
    "Labs_ListBySubscription": "plan: one page per 50 labs of a subscription holding 3+ labs of labs.json "
    "(their regions and resource groups)",
    "CustomImages_List": "one per lab and step: plan (what it holds), verify (what it holds after), "
    "retention (its versions)",
    "CustomImages_Get": "one per image created: its LRO's final GET on the resource (azure-core ends a PUT so); "
    "retries and images the plan saw Failed are read first too",
    "VirtualMachines_List": "capture: the factory VMs",
    "Disks_Get": "capture: a candidate VM's OS disk (changed since the last capture?)",
}


def read_note(stats: Stats | None) -> str | None:
    """Say, operation by operation, what ours' ARM reads were for."""
    if not stats:
        return None
    requests = stats.get("arm", {}).get("requests", {})
    parts = [
        f"{op} {requests[op]} ({READ_PURPOSES.get(op, 'other')})"
        for op in sorted(requests)
        if op in READ_PURPOSES and requests[op]
    ]
    return "ours' ARM reads, by operation: " + "; ".join(parts) + "." if parts else None


def _run_digest(run: OursRun) -> dict[str, Any]:
    return {"state": run.state, "seconds": run.seconds, "tasks": run.tasks, "stats": stats_digest(run.stats)}


def _stats(run: OursRun | None) -> Stats | None:
    return None if run is None else run.stats


def _wall_time(key: str, label: str, ours: OursRun | None, baseline: BaselineResult) -> Figure:
    """A run's wall time on both sides, to a tenth of a second."""
    return Figure(key, label, None if ours is None else round(ours.seconds, 1), round(baseline.seconds, 1), unit="s")


def _request_figures(pairs: int, mine: Stats | None, base_stats: Stats) -> list[Figure]:
    """P1's ARM request counts: in all, per pair, by kind and for the two operations the goals name."""
    both = (mine, base_stats)
    return [
        compared("arm_total", "ARM requests, total (polls included)", arm_total, *both, goal="< baseline"),
        compared(
            "arm_per_pair",
            "ARM requests per (lab, image) pair",
            lambda s: arm_total(s) / pairs,
            *both,
            goal="< baseline",
        ),
        compared("arm_reads", "ARM reads (GET)", partial(arm_count, kind="reads"), *both),
        compared(
            "arm_writes",
            "ARM writes (PUT/PATCH/DELETE)",
            partial(arm_count, kind="writes"),
            *both,
            goal=f"= {pairs} image creations",
        ),
        compared("arm_actions", "ARM actions (POST)", partial(arm_count, kind="actions"), *both),
        compared("arm_lro_polls", "ARM LRO polls", partial(arm_count, kind="lro_polls"), *both),
        compared(
            "labs_list",
            "Labs_ListBySubscription",
            partial(operation_count, operation="Labs_ListBySubscription"),
            *both,
            goal="≤ labs",
        ),
        compared(
            "upload_uri",
            "Labs_GenerateUploadUri (baseline: listKeys substitute)",
            partial(operation_count, operation="Labs_GenerateUploadUri"),
            *both,
        ),
    ]


def p1_figures(pairs: int, ours: OursRun | None, baseline: BaselineResult, base_stats: Stats) -> list[Figure]:
    """The P1 figures: ARM requests by kind and operation, while copies were pending, images made, wall time."""
    mine = _stats(ours)
    return [
        *_request_figures(pairs, mine, base_stats),
        Figure(
            "arm_while_pending",
            "ARM requests while copies pending",
            while_pending(mine),
            while_pending(base_stats),
            "0",
        ),
        Figure(
            "created",
            "images created",
            None if ours is None else ours.images_succeeded,
            len(baseline.created),
            f"= {pairs}",
        ),
        _wall_time("seconds", "wall time of the run", ours, baseline),
    ]


def p1_notes(settings: BaselineSettings) -> list[str]:
    """What the P1 figures need said: what "while copies pending" counts, and how the baseline was scaled."""
    return [
        "ARM requests while copies pending: counted by the emulator for every ARM request that arrives while at "
        "least one blob copy is pending, ANY copy: ours keeps the pipeline full, so one pair's image creation "
        "overlaps other pairs' copies; the baseline's waves (throttle sleeps, then polls) rarely overlap. Per pair, "
        "ours makes no ARM call while its own copy is pending (the trigger polls storage only).",
        f"baseline timings scaled by {COPY_SECONDS}/{ORIGINAL_COPY_SECONDS:.0f} (throttle "
        f"{settings.throttle_seconds:g} s, copy poll {settings.copy_poll_seconds:g} s); request counts do not depend "
        "on them except LRO polls.",
    ]


def p3_figures(
    ours: tuple[OursRun | None, OursRun | None], first: BaselineResult, rerun: BaselineResult, rerun_stats: Stats
) -> list[Figure]:
    """The P3 figures: the re-run's wall time (also as a fraction of the first run's), copies, writes, requests."""
    ours_first, ours_rerun = ours
    mine = _stats(ours_rerun)
    both = (mine, rerun_stats)
    fraction = None if ours_first is None or ours_rerun is None else ours_rerun.seconds / ours_first.seconds
    return [
        Figure("wall_fraction", "re-run wall time / first run", fraction, rerun.seconds / first.seconds, "≤ 0.1"),
        _wall_time("rerun_seconds", "re-run wall time", ours_rerun, rerun),
        compared(
            "rerun_copies", "copies started in the re-run", lambda s: int(s["copies"]["started"]), *both, goal="0"
        ),
        compared("rerun_writes", "ARM writes in the re-run", partial(arm_count, kind="writes"), *both, goal="0"),
        compared("rerun_arm_total", "ARM requests in the re-run", arm_total, *both, goal="< baseline"),
    ]


def scenario_p1_p3(*, labs: int = 20, images: int = 10, with_ours: bool = True) -> list[Outcome]:
    """P1 (ARM requests per run) and P3 (a no-op re-run right after it), both sides."""
    world = worlds.generate_world(labs, images, 1, copy_seconds=COPY_SECONDS, lro_seconds=LRO_SECONDS)
    labs_doc = worlds.labs_json(world)
    pairs = labs * images
    settings = baseline_settings(labs_doc, jobs=POOL, copy_seconds=COPY_SECONDS, scaled=True)
    p1 = Outcome("P1", f"ARM requests per run, {labs} labs x {images} images ({pairs} pairs)")
    p3 = Outcome("P3", f"No-op re-run after P1 ({pairs} pairs already present)")
    for o in (p1, p3):
        o.world = world_facts(labs, images, 1, copy_seconds=COPY_SECONDS, lro_seconds=LRO_SECONDS)
        o.settings = {
            "pool": POOL,
            "baseline": baseline_facts(settings, scaled=True),
            "ours_conf": dict(DISTRIBUTE_ONLY),
        }
    (first, first_stats), (second, second_stats) = measure_baseline(RUN_DIR / "p1-baseline", world, settings, runs=2)
    p1.baseline = {"summary": first.summary(), "stats": stats_digest(first_stats)}
    p3.baseline = {"summary": second.summary(), "stats": stats_digest(second_stats)}
    runs: list[OursRun] = []
    if with_ours:
        runs = ours_side(p1, "p1", world, labs_doc, DISTRIBUTE_ONLY, max_concurrent_jobs=POOL, runs=2) or []
        if runs:
            p1.ours, p3.ours = _run_digest(runs[0]), _run_digest(runs[1])
        else:
            p3.ours = dict(p1.ours)
            p3.notes.extend(p1.notes)
    ours_first = runs[0] if runs else None
    ours_rerun = runs[1] if len(runs) > 1 else None
    p1.figures = p1_figures(pairs, ours_first, first, first_stats)
    p1.notes += p1_notes(settings)
    note = read_note(_stats(ours_first))
    if note:
        p1.notes.append(note)
    p3.figures = p3_figures((ours_first, ours_rerun), first, second, second_stats)
    return [p1, p3]
