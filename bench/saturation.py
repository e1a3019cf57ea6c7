"""P2: a saturated pool's makespan against the ideal ``ceil(pairs / pool) x (copy + image)``, and the most copies
pending at once; its variants on other executors and databases reuse P2's baseline (it needs no Airflow)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from bench import worlds
from bench.baseline import BaselineResult, BaselineSettings
from bench.measure import (
    ORIGINAL_COPY_SECONDS,
    RUN_DIR,
    baseline_facts,
    baseline_settings,
    makespan,
    measure_baseline,
    stats_digest,
    world_facts,
)
from bench.ours import OursRun, memory_figures, ours_digest, ours_side, overhead_figures
from bench.report import Figure, Outcome, previous_baseline

#: The goal for makespan / ideal.
WITHIN_IDEAL = "≤ 1.15"


@dataclass(frozen=True)
class Pool:
    """The pairs, the pool and the emulator's timings of one P2 run, and the makespan they allow at best."""

    pairs: int
    size: int
    copy_seconds: float
    image_seconds: float

    @property
    def ideal(self) -> float:
        """``ceil(pairs / pool) x (copy + image)``: every slot busy from the start to the end."""
        return math.ceil(self.pairs / self.size) * (self.copy_seconds + self.image_seconds)

    def baseline_minutes(self) -> float:
        """Roughly how long the unscaled baseline takes (its 30 s throttle sleeps and 45 s polls on top)."""
        return math.ceil(self.pairs / self.size) * (self.copy_seconds + self.image_seconds + 75) / 60


@dataclass(frozen=True)
class BaselineMeasures:
    """The baseline's part of the P2 figures (None where it did not run)."""

    makespan: float | None = None
    max_pending: int | None = None
    created: int | None = None
    seconds: float | None = None

    @classmethod
    def from_result(cls, doc: dict[str, Any]) -> BaselineMeasures:
        """Read them back from the baseline half of a result file."""
        return cls(
            doc.get("makespan"),
            (doc.get("stats") or {}).get("copies", {}).get("max_pending"),
            (doc.get("summary") or {}).get("created"),
            (doc.get("summary") or {}).get("seconds"),
        )

    @classmethod
    def from_run(cls, result: BaselineResult, stats: dict[str, Any]) -> BaselineMeasures:
        """Take them from a baseline run and the emulator's statistics for it."""
        return cls(makespan(result), int(stats["copies"]["max_pending"]), len(result.created), result.seconds)


def _baseline_side(
    out: Outcome,
    world: dict[str, Any],
    settings: BaselineSettings,
    pool: Pool,
    *,
    baseline_from: str | None,
    run: bool,
) -> BaselineMeasures:
    """Reuse the baseline of result ``baseline_from``, or run it (when ``run``), or say why it did not run."""
    previous = previous_baseline(baseline_from) if baseline_from else None
    if previous is not None:
        out.baseline = previous
        out.notes.append(f"baseline: reused from {previous['from']} ({previous.get('generated_at')}), same world.")
        return BaselineMeasures.from_result(previous)
    if run:
        [(result, stats)] = measure_baseline(RUN_DIR / f"{out.name.lower()}-baseline", world, settings)
        out.baseline = {"summary": result.summary(), "stats": stats_digest(stats), "makespan": makespan(result)}
        return BaselineMeasures.from_run(result, stats)
    out.notes.append(
        "baseline not run at this size: its 30 s throttle sleeps and 45 s copy polls would take "
        f"~{pool.baseline_minutes():.0f} min; see P2 for it against the same ideal."
    )
    return BaselineMeasures()


def _rounded(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 1)


def _over(seconds: float | None, ideal: float) -> float | None:
    return None if seconds is None else seconds / ideal


def _makespan_figures(ideal: float, ours: OursRun | None, base: BaselineMeasures) -> list[Figure]:
    """Makespan and the distribute tasks' span, in seconds and over the ideal (the baseline has one span only)."""
    ours_seconds = None if ours is None else ours.seconds
    span = None if ours is None else ours.distribution_seconds
    to_ideal = f"→ {ideal:.0f} s"
    return [
        Figure(
            "makespan",
            "makespan (ours: whole DAG run; baseline: first job start → last job end)",
            _rounded(ours_seconds),
            _rounded(base.makespan),
            to_ideal,
            "s",
        ),
        Figure(
            "makespan_over_ideal",
            "makespan / ideal",
            _over(ours_seconds, ideal),
            _over(base.makespan, ideal),
            WITHIN_IDEAL,
        ),
        Figure(
            "distribution_seconds",
            "ours: first distribute task start → last distribute task end",
            _rounded(span),
            _rounded(base.makespan),
            to_ideal,
            "s",
        ),
        Figure(
            "distribution_over_ideal",
            "distribution span / ideal",
            _over(span, ideal),
            _over(base.makespan, ideal),
            WITHIN_IDEAL,
        ),
    ]


def p2_figures(pool: Pool, ours: OursRun | None, base: BaselineMeasures) -> list[Figure]:
    """The P2 figures: makespan against the ideal, wall time, pending copies, images made, hosts, overheads, memory."""
    figures = [
        *_makespan_figures(pool.ideal, ours, base),
        Figure(
            "run_seconds",
            "wall time of the whole run",
            None if ours is None else round(ours.seconds, 1),
            _rounded(base.seconds),
            unit="s",
        ),
        Figure(
            "max_pending",
            "max copies pending at once",
            None if ours is None else int(ours.stats["copies"]["max_pending"]),
            base.max_pending,
            f"= {pool.size}",
        ),
        Figure(
            "created",
            "images created",
            None if ours is None else ours.images_succeeded,
            base.created,
            f"= {pool.pairs}",
        ),
    ]
    if ours is not None and ours.hostnames:
        hosts = ", ".join(f"{h}: {n}" for h, n in sorted(ours.hostnames.items()))
        figures.append(Figure("distribute_hosts", "distribute tasks per worker host", hosts, None))
    return figures + overhead_figures(ours) + memory_figures(ours)


def scenario_p2(
    *,
    labs: int = 20,
    images: int = 10,
    pool: int = 20,
    copy_s: float = 20.0,
    image_s: float = 10.0,
    name: str = "P2",
    with_ours: bool = True,
    scaled_baseline: bool = False,
    executor: str = "local",
    database: str = "sqlite",
    baseline_from: str | None = None,
    run_baseline: bool = True,
    timeout: float = 1800,
) -> list[Outcome]:
    """P2: makespan against the ideal ``ceil(pairs / pool) x (copy + image)`` and max pending copies.

    ``baseline_from`` names an earlier result (same world and settings) whose baseline is reused instead of
    running the baseline again (it does not depend on Airflow's executor or database).
    """
    world = worlds.generate_world(labs, images, 1, copy_seconds=copy_s, lro_seconds=image_s)
    labs_doc = worlds.labs_json(world)
    shape = Pool(labs * images, pool, copy_s, image_s)
    settings = baseline_settings(labs_doc, jobs=pool, copy_seconds=copy_s, scaled=scaled_baseline)
    out = Outcome(name, f"Makespan vs ideal, {shape.pairs} pairs, pool {pool}, copy {copy_s:g} s + image {image_s:g} s")
    out.world = world_facts(labs, images, 1, copy_seconds=copy_s, lro_seconds=image_s)
    out.settings = {
        "pool": pool,
        "ideal_seconds": shape.ideal,
        "executor": executor,
        "database": database,
        "baseline": baseline_facts(settings, scaled=scaled_baseline),
    }
    base = _baseline_side(out, world, settings, shape, baseline_from=baseline_from, run=run_baseline)
    ours: OursRun | None = None
    if with_ours:
        conf = {"capture": False, "copy_poll_seconds": max(1, round(min(copy_s, image_s) / 4))}
        out.settings["ours_conf"] = dict(conf)
        runs = ours_side(
            out,
            name.lower(),
            world,
            labs_doc,
            conf,
            max_concurrent_jobs=pool,
            executor=executor,
            database=database,
            timeout=timeout,
            follow_interval=2.0 if shape.pairs <= 300 else 10.0,
        )
        ours = runs[0] if runs else None
        if ours:
            out.ours = ours_digest(ours)
    out.figures = p2_figures(shape, ours, base)
    if scaled_baseline:
        out.notes.append(f"baseline uses the original's 30 s / 45 s scaled by {copy_s:g}/{ORIGINAL_COPY_SECONDS:.0f}.")
    return [out]
