"""Run benchmark scenarios for the product ("ours") and the ported PowerShell script ("baseline").

Each scenario writes ``bench/results/<scenario>.json`` (figures, world, settings, machine) and
``bench/RESULTS.md`` is regenerated from every result file (``bench.report``). Scenarios (issue "Benchmarks"),
one module per family:

- P1 ARM requests per run, 20 labs x 10 images (emulator ``/stats``: reads, writes, actions, LRO polls), and ARM
  calls made while copies are pending; P3 a no-op re-run right after P1: wall time as a fraction of the first run,
  copies, writes (``bench.arm_efficiency``).
- P2 makespan against the ideal ``ceil(pairs / pool) x (copy + image)``, and the most copies pending at once
  (``bench.saturation``).
- P4 scale: plan + dry run for 100 labs x 50 images; DAG parse time with a 1,000-lab labs.json (``bench.scale``).
- P5 cross-region bytes, 3 regions x 5 labs (``bench.regions``).
- P8 the Image Factory view's API for 100 labs x 50 ImagePaths, over HTTP (``bench.fleet_view``).
- P6 scale under Azure's latency and ARM's throttling: a dry run of 1,000 labs x 10 ImagePaths, and a real run
  on PostgreSQL with pool 50 (``bench.scale_p6``; ``P6-run-2000`` is the 2,000-pair size).
- P7 bytes copied per night over three nights — the first, a quiet one, one factory VM rebuilt — captures and
  distributions apart, beside the original's re-copy of everything (``bench.nights``).

Every scenario runs against the Azure-like local Azure (latency + ARM throttling, ``bench.azure_like``) unless
``BENCH_AZURE=instant``. ``quick`` (``make bench``) runs P1 (+P3 from the same stacks) and a scaled-down P2;
``full`` runs all at size.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

from bench.arm_efficiency import scenario_p1_p3
from bench.fleet_view import scenario_p8
from bench.measure import RUN_DIR
from bench.nights import scenario_p7
from bench.ours import OursRun, overhead_figures
from bench.overheads import pair_overheads
from bench.regions import scenario_p5
from bench.report import RESULTS_DIR, Outcome, regenerate_results_md, replace_figures, write_result
from bench.saturation import scenario_p2
from bench.scale import scenario_p4, scenario_p4_run
from bench.scale_p6 import scenario_p6, scenario_p6_run

log = logging.getLogger(__name__)

#: Scenario name → (function, kind).
SCENARIOS: dict[str, tuple[Callable[..., list[Outcome]], str]] = {
    "P1": (scenario_p1_p3, "quick"),
    "P3": (scenario_p1_p3, "quick"),
    "P2-quick": (
        lambda **kw: scenario_p2(
            labs=4, images=5, pool=4, copy_s=4.0, image_s=2.0, name="P2-quick", scaled_baseline=True, **kw
        ),
        "quick",
    ),
    "P2": (scenario_p2, "full"),
    "P2-local": (lambda **kw: scenario_p2(name="P2-local", baseline_from="P2", **kw), "full"),
    "P2-postgres": (
        lambda **kw: scenario_p2(name="P2-postgres", database="postgres", baseline_from="P2", **kw),
        "full",
    ),
    "P2-celery": (lambda **kw: scenario_p2(name="P2-celery", executor="celery", baseline_from="P2", **kw), "full"),
    "P4": (scenario_p4, "full"),
    "P4-run": (scenario_p4_run, "full"),
    "P5": (scenario_p5, "full"),
    "P7": (scenario_p7, "full"),
    "P8": (scenario_p8, "full"),
    "P6": (scenario_p6, "full"),
    "P6-run": (scenario_p6_run, "full"),
    "P6-run-2000": (lambda **kw: scenario_p6_run(labs=200, images=10, name="P6-run-2000", **kw), "full"),
}
QUICK = ("P1", "P2-quick")
FULL = ("P1", "P2", "P2-postgres", "P2-celery", "P4", "P4-run", "P5", "P6", "P6-run", "P7")


def annotate_overheads(name: str, results_dir: Path = RESULTS_DIR, run_dir: Path = RUN_DIR) -> Path:
    """Add the per-pair timings to a result written before they were measured, from its run's task logs."""
    path = results_dir / f"{name}.json"
    doc = json.loads(path.read_text(encoding="utf-8"))
    home = run_dir / f"{name.lower()}-ours" / "airflow"
    found = pair_overheads(home)
    if found.get("worker_part") is None:
        raise FileNotFoundError(f"no distribute task logs under {home}: run the scenario again")
    doc.setdefault("ours", {})["overheads"] = found
    added = overhead_figures(OursRun("", 0.0, {}, overheads=found))
    return replace_figures(path, doc, added)


def run(names: list[str], *, with_ours: bool = True) -> list[Path]:
    """Run the named scenarios (P1 also writes P3), write their results and RESULTS.md."""
    written: list[Path] = []
    done: set[int] = set()
    for name in names:
        fn, _ = SCENARIOS[name]
        if id(fn) in done:
            continue
        done.add(id(fn))
        log.info("scenario %s …", name)
        for outcome in fn(with_ours=with_ours):
            written.append(write_result(outcome))
    regenerate_results_md()
    return written
