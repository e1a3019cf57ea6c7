"""P6: scale under Azure's latency and ARM's throttling — a 1,000-lab x 10-ImagePath dry run, and a real run.

The dry run (``P6``) plans 10,000 pairs: the plan task's wall time (goal ≤ 60 s), the ARM reads of the whole dry
run by operation, and the 429s the factory's own reads caused (goal 0). The baseline's planning loop makes ~14 ARM
requests per pair one after another; at Azure's latency it would take hours for 10,000 pairs, so it plans a few
labs of the same 1,000-lab world and its figures for 1,000 labs are computed from those, saying so.

The real run (``P6-run``) distributes with short emulated copies and image creations on PostgreSQL, pool 50: its
makespan over the ideal, ARM writes per second at their peak minute and second, and 429s, beside the baseline.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from bench import worlds
from bench.baseline import DistributeImages, Endpoints
from bench.measure import RUN_DIR, baseline_settings, local_azure, stats_digest, world_facts
from bench.ours import OursRun, memory_figures
from bench.report import Figure, Outcome
from bench.saturation import scenario_p2
from bench.scale import dry_run_side

#: Operations whose request counts the dry run's figures name.
READ_OPERATIONS = ("Labs_ListBySubscription", "Labs_Get", "CustomImages_List", "VirtualMachines_List")


def refused(stats: Mapping[str, Any] | None) -> int | None:
    """The 429s the local Azure's ARM throttle answered (None when there are no statistics)."""
    if not stats:
        return None
    return int(sum((stats.get("arm", {}).get("throttling", {}).get("refused") or {}).values()))


def peak(stats: Mapping[str, Any] | None, window: str, kind: str) -> int | None:
    """The most ``kind`` requests in one second or minute (``window``: ``second`` or ``minute``)."""
    if not stats:
        return None
    return (stats.get("arm", {}).get("throttling", {}).get(f"peak_per_{window}") or {}).get(kind)


def _baseline_plan(out: Outcome, world: Mapping[str, Any], labs: int) -> dict[str, Any]:
    """Run the baseline's planning loop for the first ``labs`` labs of ``world`` (the whole world served)."""
    labs_doc = worlds.labs_json(world)
    subset = {"Labs": labs_doc["Labs"][:labs]}
    settings = baseline_settings(subset, jobs=20, copy_seconds=2.0, scaled=True)
    with local_azure(RUN_DIR / "p6-baseline", world) as azure:
        worlds.seed_catalogue(azure.info, world)
        azure.post("/reset-stats", {})
        script = DistributeImages(Endpoints.from_emulator(azure.info), settings)
        started = time.monotonic()
        planned = len(script.plan())
        seconds = time.monotonic() - started
        stats = azure.stats()
    found = {"labs": labs, "copies_planned": planned, "plan_seconds": seconds, "stats": stats_digest(stats)}
    out.baseline = found
    return found


def _per_lab(value: float | None, measured_labs: int, labs: int) -> float | None:
    return None if value is None else round(value / measured_labs * labs, 1)


def _ours_seconds(key: str, label: str, ours: OursRun | None, task: str | None) -> Figure:
    """A duration only ours has: one task's (``task``) or the whole run's (None)."""
    seconds = None if ours is None else (ours.task_seconds.get(task) if task else round(ours.seconds, 1))
    return Figure(key, label, seconds, None, unit="s")


def p6_figures(labs: int, images: int, ours: OursRun | None, would: int | None, base: dict[str, Any]) -> list[Figure]:
    """The P6 dry-run figures: pairs, plan and verify time, reads by operation, 429s, the peak read second."""
    stats = None if ours is None else ours.stats
    requests = {} if stats is None else stats["arm"]["requests"]
    base_stats, base_labs = base["stats"], base["labs"]
    base_reads = int(base_stats["arm"]["reads"])
    figures = [
        Figure("pairs", "pairs planned (would be distributed)", would, None, f"= {labs * images}"),
        Figure(
            "plan_seconds",
            f"plan wall time (baseline: its planning loop, computed for {labs} labs from {base_labs})",
            None if ours is None else ours.task_seconds.get("plan"),
            _per_lab(base["plan_seconds"], base_labs, labs),
            "≤ 60 s",
            "s",
        ),
        _ours_seconds("verify_seconds", "verify wall time (one image list per lab)", ours, "verify"),
        _ours_seconds("dry_run_seconds", "whole dry run (plan, verify, retention's decisions)", ours, None),
        Figure(
            "arm_reads",
            f"ARM reads (ours: the whole dry run; baseline: planning, computed for {labs} labs)",
            None if stats is None else int(stats["arm"]["reads"]),
            _per_lab(base_reads, base_labs, labs),
            f"plan ≤ {labs + images + 10} + verify/retention's {labs} image lists each",
        ),
    ]
    figures += [
        Figure(f"reads_{op}", f"of which {op}", requests.get(op, 0) if stats is not None else None, None)
        for op in READ_OPERATIONS
    ]
    figures += [
        Figure("throttled", "429s received (ARM throttling on)", refused(stats), refused(base_stats), "0"),
        Figure(
            "peak_reads_second",
            "ARM reads in the busiest second (a pacer's burst; ARM's bucket holds 250)",
            peak(stats, "second", "reads"),
            None,
        ),
    ]
    return figures + memory_figures(ours)


def scenario_p6(*, labs: int = 1000, images: int = 10, baseline_labs: int = 5, with_ours: bool = True) -> list[Outcome]:
    """P6: the dry run of ``labs`` x ``images`` with latency and throttling on, beside the baseline's planning."""
    world = worlds.generate_world(labs, images, 1, copy_seconds=2.0, lro_seconds=1.0)
    labs_doc = worlds.labs_json(world)
    out = Outcome("P6", f"Scale under latency and throttling: dry run of {labs} labs x {images} ImagePaths")
    out.world = world_facts(labs, images, 1)
    base = _baseline_plan(out, world, baseline_labs)
    out.notes.append(
        f"baseline: its planning loop run for {baseline_labs} of the {labs} labs (the whole world served, so each "
        f"pair's lab search pages through every lab of the subscription as it would); its seconds and reads for "
        f"{labs} labs are those x {labs}/{baseline_labs}, computed, not measured."
    )
    ours, would = dry_run_side(out, "p6", world, labs_doc, timeout=1800) if with_ours else (None, None)
    out.figures = p6_figures(labs, images, ours, would, base)
    return [out]


def write_figures(out: Outcome) -> list[Figure]:
    """ARM writes at their peak and the 429s of a real run, ours beside the baseline."""
    ours_stats = (out.ours or {}).get("stats")
    base_stats = (out.baseline or {}).get("stats")
    writes = [
        Figure(
            "arm_writes",
            "ARM writes (PUT/PATCH/POST/DELETE kinds: writes + actions)",
            None if not ours_stats else ours_stats["arm"]["writes"] + ours_stats["arm"]["actions"],
            None if not base_stats else base_stats["arm"]["writes"] + base_stats["arm"]["actions"],
        ),
        Figure(
            "peak_writes_minute",
            "ARM writes in the busiest minute (÷ 60 = per second)",
            peak(ours_stats, "minute", "writes"),
            peak(base_stats, "minute", "writes"),
            "< 600 (10/s)",
        ),
        Figure(
            "peak_writes_second",
            "ARM writes in the busiest second",
            peak(ours_stats, "second", "writes"),
            peak(base_stats, "second", "writes"),
        ),
        Figure("throttled", "429s received (ARM throttling on)", refused(ours_stats), refused(base_stats), "0"),
    ]
    return writes


def scenario_p6_run(
    *, labs: int = 40, images: int = 10, pool: int = 50, with_ours: bool = True, name: str = "P6-run"
) -> list[Outcome]:
    """P6 (real run): ``labs`` x ``images`` pairs on PostgreSQL, pool 50, copies of 2 s and images of 1 s.

    The baseline of an earlier result of the same name is reused (``--baseline-only`` first, then the product:
    two runs of the heavy lock instead of one long one).
    """
    [out] = scenario_p2(
        labs=labs,
        images=images,
        pool=pool,
        copy_s=2.0,
        image_s=1.0,
        name=name,
        with_ours=with_ours,
        database="postgres",
        scaled_baseline=True,
        baseline_from=name if with_ours else None,
        timeout=3600,
    )
    at = next((i for i, f in enumerate(out.figures) if f.key.startswith("memory_")), len(out.figures))
    out.figures[at:at] = write_figures(out)
    return [out]
