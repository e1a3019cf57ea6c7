"""P4 scale: plan + dry run for 100 labs x 50 images, the DAG's parse time with a 1,000-lab labs.json, and a real
run of 1,050 pairs (beyond Airflow's default 1,024 map length) on PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import worlds
from bench.baseline import DistributeImages, Endpoints
from bench.measure import REPO, RUN_DIR, arm_total, baseline_settings, seeded_azure, stats_digest, world_facts
from bench.ours import OursRun, memory_figures, ours_digest, ours_side
from bench.report import RESULTS_DIR, Figure, Outcome, compared, replace_figures
from bench.saturation import scenario_p2

#: Times ``DagBag`` parses of the DAG folder in one process: the first after importing Airflow only (as the
#: dag-processor has it loaded), then with the project's modules already imported; prints first, best, dags, errors.
_PARSE_CODE = """\
import time,sys
from airflow.dag_processing.dagbag import DagBag
times=[]
for _ in range(int(sys.argv[2])):
    t=time.perf_counter(); bag=DagBag(dag_folder=sys.argv[1]); times.append(time.perf_counter()-t)
print(times[0], min(times[1:] or times), len(bag.dags), len(bag.import_errors))
"""


def dag_parse_seconds(labs: int, *, repeats: int = 3) -> dict[str, Any]:
    """Time parsing ``dags/image_factory.py`` with a ``labs``-lab labs.json (best of ``repeats``, in a subprocess)."""
    world = worlds.generate_world(labs, 5, 1)
    config_dir = worlds.write_config(RUN_DIR / "parse-config", world)
    home = RUN_DIR / "parse-home"
    home.mkdir(parents=True, exist_ok=True)
    env = dict(
        os.environ,
        IMAGE_FACTORY_CONFIG_DIR=str(config_dir),
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        PYTHONPATH=f"{REPO / 'plugins'}:{REPO}",
    )
    try:
        proc = subprocess.run(
            [sys.executable, "-c", _PARSE_CODE, str(REPO / "dags" / "image_factory.py"), str(repeats)],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=True,
        )
        first, best, dags, errors = proc.stdout.strip().splitlines()[-1].split()
        return {
            "seconds": float(first),
            "warm_seconds": float(best),
            "dags": int(dags),
            "import_errors": int(errors),
            "labs": labs,
        }
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {exc}"[:1000], "labs": labs}


def parse_figures(parse: Mapping[str, Any]) -> list[Figure]:
    """The DAG parse figures: first parse (project modules imported) and a parse with them already imported."""
    labs = parse.get("labs")
    return [
        Figure(
            "parse_seconds",
            f"DAG file parse with {labs} labs (first in a process)",
            parse.get("seconds"),
            None,
            "< 0.5 s",
            "s",
        ),
        Figure(
            "parse_warm_seconds",
            f"DAG file parse with {labs} labs (modules already imported)",
            parse.get("warm_seconds"),
            None,
            "< 0.5 s",
            "s",
        ),
    ]


def annotate_parse(name: str = "P4", labs: int = 1000, results_dir: Path = RESULTS_DIR) -> Path:
    """Measure the DAG parse again and replace the parse figures of an existing result."""
    path = results_dir / f"{name}.json"
    doc = json.loads(path.read_text(encoding="utf-8"))
    parse = dag_parse_seconds(labs)
    if "error" in parse:
        raise RuntimeError(f"parse failed: {parse['error']}")
    doc.setdefault("ours", {})["parse"] = parse
    return replace_figures(path, doc, parse_figures(parse))


def would_distribute(run_dir: Path) -> int | None:
    """Return ``would_distribute`` from the verify report a dry run wrote under ``run_dir``."""
    counts = []
    for path in run_dir.glob("airflow/reports/**/*.json"):
        try:
            doc = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(doc, dict) and "would_distribute" in doc:
            value = doc["would_distribute"]
            counts.append(len(value) if isinstance(value, list) else int(value))
    return max(counts) if counts else None


@dataclass(frozen=True)
class BaselinePlan:
    """The baseline's planning loop, timed alone: the copies it planned and the emulator's statistics."""

    planned: int
    seconds: float
    stats: dict[str, Any]


def _baseline_plan(out: Outcome, world: Mapping[str, Any], labs_doc: Mapping[str, Any]) -> BaselinePlan:
    """Run the baseline's planning loop alone; return the copies it planned, its seconds and the statistics."""
    settings = baseline_settings(labs_doc, jobs=20, copy_seconds=2.0, scaled=True)
    with seeded_azure(RUN_DIR / "p4-baseline", world) as azure:
        azure.post("/reset-stats", {})
        script = DistributeImages(Endpoints.from_emulator(azure.info), settings)
        started = time.monotonic()
        planned = len(script.plan())
        plan_seconds = time.monotonic() - started
        stats = azure.stats()
    out.baseline = {"plan_seconds": plan_seconds, "copies_planned": planned, "stats": stats_digest(stats)}
    return BaselinePlan(planned, plan_seconds, stats)


def p4_figures(shape: tuple[int, int], ours: OursRun | None, would: int | None, baseline: BaselinePlan) -> list[Figure]:
    """The P4 figures: pairs planned, plan and dry-run time, ARM reads and requests (parse and memory come after)."""
    labs, images = shape
    stats = baseline.stats
    return [
        Figure("pairs", "pairs planned (would be distributed)", would, baseline.planned, f"= {labs * images}"),
        Figure(
            "plan_seconds",
            "plan wall time (ours: the plan task; baseline: its planning loop)",
            None if ours is None else ours.task_seconds.get("plan"),
            round(baseline.seconds, 1),
            "< baseline",
            "s",
        ),
        Figure(
            "dry_run_seconds",
            "whole dry run (ours: DAG run incl. verify and retention's decisions)",
            None if ours is None else round(ours.seconds, 1),
            None,
            unit="s",
        ),
        Figure(
            "plan_arm_reads",
            "ARM reads (ours: the whole dry run; baseline: planning)",
            None if ours is None else ours.stats["arm"]["reads"],
            int(stats["arm"]["reads"]),
            f"≤ {labs + images + 10} + verify/retention's per-lab lists",
        ),
        compared(
            "plan_arm",
            "ARM requests of any kind",
            arm_total,
            None if ours is None else ours.stats,
            stats,
            goal="< baseline",
        ),
    ]


def dry_run_side(
    out: Outcome, prefix: str, world: Mapping[str, Any], labs_doc: Mapping[str, Any], **options: Any
) -> tuple[OursRun | None, int | None]:
    """Run ours' dry run on PostgreSQL; return the run and the pairs its verify report says it would distribute."""
    runs = ours_side(
        out,
        prefix,
        world,
        labs_doc,
        {"capture": False, "dry_run": True},
        database="postgres",
        follow_interval=5.0,
        **options,
    )
    ours = runs[0] if runs else None
    if ours is None:
        return None, None
    out.ours = ours_digest(ours)
    would = would_distribute(RUN_DIR / f"{prefix}-ours")
    out.ours["would_distribute"] = would
    return ours, would


def scenario_p4(*, labs: int = 100, images: int = 50, parse_labs: int = 1000, with_ours: bool = True) -> list[Outcome]:
    """P4: plan + dry run for ``labs`` x ``images`` and the DAG's parse time with a ``parse_labs``-lab labs.json."""
    world = worlds.generate_world(labs, images, 1, copy_seconds=2.0, lro_seconds=1.0)
    labs_doc = worlds.labs_json(world)
    out = Outcome("P4", f"Scale: plan + dry run for {labs} labs x {images} images; DAG parse with {parse_labs} labs")
    out.world = world_facts(labs, images, 1)
    baseline = _baseline_plan(out, world, labs_doc)
    ours, would = dry_run_side(out, "p4", world, labs_doc) if with_ours else (None, None)
    parse = dag_parse_seconds(parse_labs)
    out.ours["parse"] = parse
    out.figures = [*p4_figures((labs, images), ours, would, baseline), *parse_figures(parse), *memory_figures(ours)]
    return [out]


def scenario_p4_run(*, with_ours: bool = True) -> list[Outcome]:
    """P4 (real run): 1,050 pairs (beyond Airflow's default 1,024 map length) on PostgreSQL, pool 50."""
    return scenario_p2(
        labs=35,
        images=30,
        pool=50,
        name="P4-run",
        with_ours=with_ours,
        database="postgres",
        run_baseline=False,
        timeout=3600,
    )
