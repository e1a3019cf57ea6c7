"""Run benchmark scenarios for the product ("ours") and the ported PowerShell script ("baseline").

Each scenario writes ``bench/results/<scenario>.json`` (figures, world, settings, machine) and
``bench/RESULTS.md`` is regenerated from every result file. Scenarios (issue "Benchmarks"):

- P1 ARM requests per run, 20 labs x 10 images (emulator ``/stats``: reads, writes, actions, LRO polls), and ARM
  calls made while copies are pending.
- P2 makespan against the ideal ``ceil(pairs / pool) x (copy + image)``, and the most copies pending at once.
- P3 a no-op re-run right after P1: wall time as a fraction of the first run, copies, writes.
- P4 scale: plan + dry run for 100 labs x 50 images; DAG parse time with a 1,000-lab labs.json.
- P5 cross-region bytes, 3 regions x 5 labs.

``quick`` (``make bench``) runs P1 (+P3 from the same stacks) and a scaled-down P2; ``full`` runs all at size.
"""

from __future__ import annotations

import json
import logging
import math
import os
import platform
import shutil
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from bench import memory, worlds
from bench.baseline import BaselineResult, BaselineSettings, DistributeImages, Endpoints
from bench.overheads import pair_overheads

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "bench"
RESULTS_DIR = BENCH / "results"
RESULTS_MD = BENCH / "RESULTS.md"
RUN_DIR = REPO / ".run" / "bench"
FACTORY_SUB = "11111111-1111-4111-8111-111111111111"
#: The original's timings; the "scaled" variant multiplies them by the scenario's copy time / 20 s.
ORIGINAL_COPY_SECONDS = 20.0
#: Unpausing the DAG would otherwise start its latest scheduled run (capture on) next to the measured one.
NO_SCHEDULED_RUNS = {"AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False"}
#: The mapped tasks that copy and create images (the span the ideal makespan describes).
DISTRIBUTE_TASKS = ("distribute", "distribute_regional")
#: Process trees whose peak memory the figures name (Celery workers appear as celery-worker-w1/-w2).
AIRFLOW_COMPONENTS = (
    "scheduler",
    "api-server",
    "triggerer",
    "dag-processor",
    "celery-worker-w1",
    "celery-worker-w2",
    "postgresql",
    "redis",
)


@dataclass
class Figure:
    """One row of RESULTS.md."""

    key: str
    label: str
    ours: float | int | str | None = None
    baseline: float | int | str | None = None
    goal: str = ""
    unit: str = ""

    def ratio(self) -> float | None:
        """Return ours / baseline when both are numbers and the baseline is not zero."""
        if isinstance(self.ours, int | float) and isinstance(self.baseline, int | float) and self.baseline:
            return float(self.ours) / float(self.baseline)
        return None


@dataclass
class Outcome:
    """What a scenario produced: figures plus raw data for its JSON file."""

    name: str
    title: str
    figures: list[Figure] = field(default_factory=list)
    world: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    ours: dict[str, Any] = field(default_factory=dict)
    baseline: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


# -- machine and files ---------------------------------------------------------------------------------------------
def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def machine() -> dict[str, Any]:
    """Describe the machine the figures were measured on."""
    mem_kib = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    except OSError:
        pass
    return {
        "cpu_count": os.cpu_count(),
        "memory_gib": round(mem_kib / 1024 / 1024, 1) if mem_kib else None,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "airflow": _version("apache-airflow"),
        "azure_mgmt_devtestlabs": _version("azure-mgmt-devtestlabs"),
        "azure_storage_blob": _version("azure-storage-blob"),
    }


def write_result(outcome: Outcome, results_dir: Path = RESULTS_DIR) -> Path:
    """Write ``results/<scenario>.json``."""
    results_dir.mkdir(parents=True, exist_ok=True)
    doc = {
        "scenario": outcome.name,
        "title": outcome.title,
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "figures": [{**f.__dict__, "ratio": f.ratio()} for f in outcome.figures],
        "world": outcome.world,
        "settings": outcome.settings,
        "machine": machine(),
        "ours": outcome.ours,
        "baseline": outcome.baseline,
        "notes": outcome.notes,
    }
    path = results_dir / f"{outcome.name}.json"
    path.write_text(json.dumps(doc, indent=2, default=str) + "\n", encoding="utf-8")
    return path


def _cell(value: Any, unit: str = "") -> str:
    if value is None:
        return "—"
    text = str(value)
    if isinstance(value, float):
        text = f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"
    return f"{text} {unit}".strip() if isinstance(value, int | float) else text


def _stack_line(described: Mapping[str, Any] | None) -> list[str]:
    if not described:
        return []
    return [
        f"Ours ran on {described.get('executor')} with {described.get('database')} "
        f"(parallelism {described.get('parallelism')}).",
        "",
    ]


def render_results(results_dir: Path = RESULTS_DIR) -> str:
    """Return RESULTS.md for every result file."""
    lines = [
        "# Benchmark results",
        "",
        "Generated by `python -m bench` from `bench/results/*.json`; do not edit by hand.",
        "*ours* is the Airflow DAG on the local Azure, *baseline* the PowerShell DistributeImages ported to Python",
        "call for call (`bench/baseline.py`). Ratio = ours / baseline.",
        "",
    ]
    for path in sorted(results_dir.glob("*.json")):
        doc = json.loads(path.read_text(encoding="utf-8"))
        m = doc.get("machine", {})
        lines += [
            f"## {doc['scenario']} — {doc['title']}",
            "",
            f"Measured {doc.get('generated_at')} on {m.get('cpu_count')} CPUs, {m.get('memory_gib')} GiB, "
            f"Python {m.get('python')}, Airflow {m.get('airflow')}. World: "
            + ", ".join(f"{k} {v}" for k, v in doc.get("world", {}).items() if not isinstance(v, dict | list))
            + ".",
            "",
            *_stack_line((doc.get("ours") or {}).get("stack")),
            "| figure | ours | baseline | ratio | goal |",
            "| --- | --- | --- | --- | --- |",
        ]
        for f in doc.get("figures", []):
            ratio = f.get("ratio")
            lines.append(
                f"| {f['label']} | {_cell(f.get('ours'), f.get('unit', ''))} | "
                f"{_cell(f.get('baseline'), f.get('unit', ''))} | {'—' if ratio is None else f'{ratio:.2f}'} | "
                f"{f.get('goal', '')} |"
            )
        for note in doc.get("notes", []):
            lines.append(f"\n- {note}")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def regenerate_results_md(results_dir: Path = RESULTS_DIR, target: Path = RESULTS_MD) -> Path:
    """Rewrite RESULTS.md from the result files."""
    target.write_text(render_results(results_dir), encoding="utf-8")
    return target


# -- the local Azure and the baseline -------------------------------------------------------------------------------
@contextmanager
def local_azure(run_dir: Path, world: Mapping[str, Any]) -> Iterator[Any]:
    """Start the local Azure alone for ``world`` under ``run_dir``; stop it on exit."""
    from stack.localazure import start_local_azure

    shutil.rmtree(run_dir, ignore_errors=True)
    path = worlds.write_world(run_dir / "world.json", world)
    azure = start_local_azure(world=path, state_dir=run_dir / "azure", log_dir=run_dir / "logs")
    try:
        yield azure
    finally:
        azure.stop()


def baseline_settings(labs_doc: Mapping[str, Any], *, jobs: int, copy_seconds: float, scaled: bool) -> BaselineSettings:
    """Return the baseline's settings: the original's 30 s / 45 s, or scaled by ``copy_seconds / 20 s``."""
    factor = copy_seconds / ORIGINAL_COPY_SECONDS if scaled else 1.0
    return BaselineSettings(
        factory_subscription_id=FACTORY_SUB,
        factory_lab_name=worlds.FACTORY_LAB,
        labs=list(labs_doc["Labs"]),
        max_concurrent_jobs=jobs,
        throttle_seconds=30.0 * factor,
        copy_poll_seconds=45.0 * factor,
    )


def arm_total(stats: Mapping[str, Any]) -> int:
    """Return every ARM request counted (polls included)."""
    return int(sum(stats.get("arm", {}).get("requests", {}).values()))


def while_pending(stats: Mapping[str, Any] | None) -> int | None:
    """Return the ARM requests the emulator saw while at least one copy was pending."""
    if stats is None:
        return None
    return int(sum(stats.get("arm", {}).get("while_copies_pending", {}).values()))


def makespan(result: BaselineResult) -> float:
    """Return the time from the first job's start to the last job's end (the distribution part of the run)."""
    starts = [j.started for j in result.jobs if j.started]
    ends = [j.finished for j in result.jobs if j.finished]
    return max(ends) - min(starts) if starts and ends else 0.0


def run_baseline_once(azure: Any, settings: BaselineSettings) -> tuple[BaselineResult, dict[str, Any]]:
    """Reset the emulator's statistics, run the baseline, return its result and the statistics."""
    azure.post("/reset-stats", {})
    result = DistributeImages(Endpoints.from_emulator(azure.info), settings).run()
    return result, azure.stats()


def _stats_digest(stats: Mapping[str, Any]) -> dict[str, Any]:
    arm = dict(stats.get("arm", {}))
    copies = {k: v for k, v in stats.get("copies", {}).items() if k != "transfers"}
    return {"arm": arm, "copies": copies, "blob_requests": stats.get("requests", {}), "entra": stats.get("entra")}


# -- ours ---------------------------------------------------------------------------------------------------------
@dataclass
class OursRun:
    """One DAG run of the product and the emulator's statistics for it."""

    state: str
    seconds: float
    stats: dict[str, Any]
    tasks: dict[str, int] = field(default_factory=dict)
    images_succeeded: int = 0
    #: First distribute task start → last distribute task end (the part the ideal makespan describes).
    distribution_seconds: float | None = None
    mapped: dict[str, int] = field(default_factory=dict)
    hostnames: dict[str, int] = field(default_factory=dict)
    memory: dict[str, Any] = field(default_factory=dict)
    stack: dict[str, str] = field(default_factory=dict)
    #: Unmapped task id → seconds from its start to its end.
    task_seconds: dict[str, float] = field(default_factory=dict)
    #: Per-pair timings read from the distribute tasks' logs (``bench.overheads``).
    overheads: dict[str, Any] = field(default_factory=dict)


def _when(value: Any) -> datetime | None:
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")) if value else None


def distribution_span(tis: list[dict[str, Any]]) -> float | None:
    """Return seconds from the first distribute task's start to the last one's end (None when none ran)."""
    mine = [ti for ti in tis if str(ti.get("task_id")) in DISTRIBUTE_TASKS]
    starts = [t for t in (_when(ti.get("start_date")) for ti in mine) if t]
    ends = [t for t in (_when(ti.get("end_date")) for ti in mine) if t]
    if not starts or not ends:
        return None
    return (max(ends) - min(starts)).total_seconds()


def stack_roots(stack: Any) -> dict[str, int]:
    """Return component → root pid of a running stack (each component is its process tree)."""
    roots = {name: child.pid for name, child in stack.airflow.children.items() if child.alive()}
    roots["local-azure"] = stack.azure.child.pid
    if stack.services is not None:
        pg = memory.postmaster_pid(stack.services.postgres.data_dir)
        if pg:
            roots["postgresql"] = pg
        redis = stack.services.redis.pid
        if redis:
            roots["redis"] = redis
    return roots


def run_ours(
    *,
    run_dir: Path,
    world: Mapping[str, Any],
    config_dir: Path,
    conf: Mapping[str, Any],
    runs: int = 1,
    timeout: float = 1800,
    emulator_config: dict[str, Any] | None = None,
    executor: str = "local",
    database: str = "sqlite",
    follow_interval: float = 2.0,
) -> list[OursRun]:
    """Run the DAG ``runs`` times in a row on a fresh stack whose catalogue is pre-filled; return each run.

    The memory of every process tree (PSS) is sampled every 5 s while each run is in flight.
    """
    from stack.__main__ import DAG_ID, follow_run, running_stack

    path = worlds.write_world(run_dir.parent / f"{run_dir.name}-world.json", world)
    out: list[OursRun] = []
    with running_stack(
        run_dir=run_dir,
        world=path,
        config_dir=config_dir,
        emulator_config=emulator_config,
        extra_env=dict(NO_SCHEDULED_RUNS),
        say=log.info,
        executor=executor,
        database=database,
    ) as stack:
        worlds.seed_catalogue(stack.azure.info, world)
        stack.client.unpause(DAG_ID)
        described = {
            "executor": stack.airflow.settings.executor,
            "database": "PostgreSQL" if stack.airflow.settings.sql_alchemy_conn else "SQLite",
            "parallelism": str(stack.airflow.settings.parallelism),
        }
        for _ in range(runs):
            stack.azure.post("/reset-stats", {})
            started = time.monotonic()
            with memory.sampling(lambda: stack_roots(stack), interval=5.0) as peaks:
                run_id = stack.client.trigger(DAG_ID, conf=dict(conf))
                run = follow_run(stack, run_id, timeout=timeout, interval=follow_interval)
                seconds = time.monotonic() - started
            tis = stack.client.task_instances(DAG_ID, run_id)
            states: dict[str, int] = {}
            mapped: dict[str, int] = {}
            hosts: dict[str, int] = {}
            durations: dict[str, float] = {}
            for ti in tis:
                states[str(ti.get("state"))] = states.get(str(ti.get("state")), 0) + 1
                if int(ti.get("map_index", -1)) >= 0:
                    mapped[str(ti["task_id"])] = mapped.get(str(ti["task_id"]), 0) + 1
                if str(ti.get("task_id")) in DISTRIBUTE_TASKS and ti.get("hostname"):
                    hosts[str(ti["hostname"])] = hosts.get(str(ti["hostname"]), 0) + 1
                begun, ended = _when(ti.get("start_date")), _when(ti.get("end_date"))
                if int(ti.get("map_index", -1)) < 0 and begun and ended:
                    durations[str(ti["task_id"])] = round((ended - begun).total_seconds(), 2)
            stats = stack.azure.stats()
            images = sum(
                1
                for lab in stack.azure.state().get("labs", [])
                if lab.get("name") != worlds.FACTORY_LAB
                for image in lab.get("images", [])
                if image.get("provisioning_state") == "Succeeded"
            )
            out.append(
                OursRun(
                    str(run["state"]),
                    seconds,
                    stats,
                    states,
                    images,
                    distribution_span(tis),
                    mapped,
                    hosts,
                    peaks.to_dict(),
                    described,
                    durations,
                    pair_overheads(stack.airflow.settings.home, run_id=run_id),
                )
            )
    return out


def ours_digest(run: OursRun) -> dict[str, Any]:
    """Return what a result file keeps of one ours run."""
    return {
        "state": run.state,
        "seconds": run.seconds,
        "distribution_seconds": run.distribution_seconds,
        "tasks": run.tasks,
        "mapped": run.mapped,
        "distribute_hostnames": run.hostnames,
        "stack": run.stack,
        "memory": run.memory,
        "task_seconds": run.task_seconds,
        "overheads": run.overheads,
        "stats": _stats_digest(run.stats),
    }


def _try_ours(outcome: Outcome, fn: Callable[[], list[OursRun]]) -> list[OursRun] | None:
    try:
        return fn()
    except Exception as exc:  # report what blocked "ours", keep the baseline's figures
        outcome.ours = {"error": f"{type(exc).__name__}: {exc}"[:2000], "traceback": traceback.format_exc()[-4000:]}
        outcome.notes.append(f"ours did not run: {type(exc).__name__}: {str(exc)[:300]}")
        return None


# -- scenarios ----------------------------------------------------------------------------------------------------
def scenario_p1_p3(*, labs: int = 20, images: int = 10, with_ours: bool = True) -> list[Outcome]:
    """P1 (ARM requests per run) and P3 (a no-op re-run right after it), both sides."""
    copy_s, lro_s = 2.0, 1.0
    world = worlds.generate_world(labs, images, 1, copy_seconds=copy_s, lro_seconds=lro_s)
    labs_doc = worlds.labs_json(world)
    pairs = labs * images
    settings = baseline_settings(labs_doc, jobs=20, copy_seconds=copy_s, scaled=True)
    p1 = Outcome("P1", f"ARM requests per run, {labs} labs x {images} images ({pairs} pairs)")
    p3 = Outcome("P3", f"No-op re-run after P1 ({pairs} pairs already present)")
    world_info = {
        "labs": labs,
        "images": images,
        "regions": 1,
        "pairs": pairs,
        "copy_seconds": copy_s,
        "lro_seconds": lro_s,
    }
    for o in (p1, p3):
        o.world = dict(world_info)
        o.settings = {
            "pool": 20,
            "baseline": {
                "max_concurrent_jobs": 20,
                "throttle_seconds": settings.throttle_seconds,
                "copy_poll_seconds": settings.copy_poll_seconds,
                "scaled": True,
            },
            "ours_conf": {"capture": False, "copy_poll_seconds": 1},
        }
    with local_azure(RUN_DIR / "p1-baseline", world) as azure:
        worlds.seed_catalogue(azure.info, world)
        first, first_stats = run_baseline_once(azure, settings)
        second, second_stats = run_baseline_once(azure, settings)
    p1.baseline = {"summary": first.summary(), "stats": _stats_digest(first_stats)}
    p3.baseline = {"summary": second.summary(), "stats": _stats_digest(second_stats)}
    ours_runs: list[OursRun] | None = None
    if with_ours:
        config_dir = worlds.write_config(RUN_DIR / "p1-config", world, max_concurrent_jobs=20, labs_doc=labs_doc)
        ours_runs = _try_ours(
            p1,
            lambda: run_ours(
                run_dir=RUN_DIR / "p1-ours",
                world=world,
                config_dir=config_dir,
                conf={"capture": False, "copy_poll_seconds": 1},
                runs=2,
            ),
        )
        if ours_runs:
            p1.ours = {
                "state": ours_runs[0].state,
                "seconds": ours_runs[0].seconds,
                "tasks": ours_runs[0].tasks,
                "stats": _stats_digest(ours_runs[0].stats),
            }
            p3.ours = {
                "state": ours_runs[1].state,
                "seconds": ours_runs[1].seconds,
                "tasks": ours_runs[1].tasks,
                "stats": _stats_digest(ours_runs[1].stats),
            }
        else:
            p3.ours = dict(p1.ours)
            p3.notes.extend(p1.notes)
    o1 = ours_runs[0].stats if ours_runs else None
    o2 = ours_runs[1].stats if ours_runs and len(ours_runs) > 1 else None

    def arm(stats: Mapping[str, Any] | None, key: str) -> int | None:
        return None if stats is None else int(stats.get("arm", {}).get(key, 0))

    def op(stats: Mapping[str, Any] | None, name: str) -> int | None:
        return None if stats is None else int(stats.get("arm", {}).get("requests", {}).get(name, 0))

    p1.figures = [
        Figure(
            "arm_total",
            "ARM requests, total (polls included)",
            None if o1 is None else arm_total(o1),
            arm_total(first_stats),
            "< baseline",
        ),
        Figure(
            "arm_per_pair",
            "ARM requests per (lab, image) pair",
            None if o1 is None else arm_total(o1) / pairs,
            arm_total(first_stats) / pairs,
            "< baseline",
        ),
        Figure("arm_reads", "ARM reads (GET)", arm(o1, "reads"), arm(first_stats, "reads")),
        Figure(
            "arm_writes",
            "ARM writes (PUT/PATCH/DELETE)",
            arm(o1, "writes"),
            arm(first_stats, "writes"),
            f"= {pairs} image creations",
        ),
        Figure("arm_actions", "ARM actions (POST)", arm(o1, "actions"), arm(first_stats, "actions")),
        Figure("arm_lro_polls", "ARM LRO polls", arm(o1, "lro_polls"), arm(first_stats, "lro_polls")),
        Figure(
            "labs_list",
            "Labs_ListBySubscription",
            op(o1, "Labs_ListBySubscription"),
            op(first_stats, "Labs_ListBySubscription"),
            "≤ labs",
        ),
        Figure(
            "upload_uri",
            "Labs_GenerateUploadUri (baseline: listKeys substitute)",
            op(o1, "Labs_GenerateUploadUri"),
            op(first_stats, "Labs_GenerateUploadUri"),
        ),
        Figure(
            "arm_while_pending",
            "ARM requests while copies pending",
            while_pending(o1),
            while_pending(first_stats),
            "0",
        ),
        Figure(
            "created",
            "images created",
            None if o1 is None else _created(ours_runs[0] if ours_runs else None),
            len(first.created),
            f"= {pairs}",
        ),
        Figure(
            "seconds",
            "wall time of the run",
            None if not ours_runs else round(ours_runs[0].seconds, 1),
            round(first.seconds, 1),
            unit="s",
        ),
    ]
    p1.notes.append(
        "ARM requests while copies pending: counted by the emulator for every ARM request that arrives while at "
        "least one blob copy is pending, ANY copy: ours keeps the pipeline full, so one pair's image creation "
        "overlaps other pairs' copies; the baseline's waves (throttle sleeps, then polls) rarely overlap. Per pair, "
        "ours makes no ARM call while its own copy is pending (the trigger polls storage only)."
    )
    p1.notes.append(
        f"baseline timings scaled by {copy_s}/{ORIGINAL_COPY_SECONDS:.0f} (throttle {settings.throttle_seconds:g} s, "
        f"copy poll {settings.copy_poll_seconds:g} s); request counts do not depend on them except LRO polls."
    )
    frac_ours = (ours_runs[1].seconds / ours_runs[0].seconds) if ours_runs and len(ours_runs) > 1 else None
    p3.figures = [
        Figure("wall_fraction", "re-run wall time / first run", frac_ours, second.seconds / first.seconds, "≤ 0.1"),
        Figure(
            "rerun_seconds",
            "re-run wall time",
            None if not ours_runs else round(ours_runs[1].seconds, 1),
            round(second.seconds, 1),
            unit="s",
        ),
        Figure(
            "rerun_copies",
            "copies started in the re-run",
            None if o2 is None else int(o2["copies"]["started"]),
            int(second_stats["copies"]["started"]),
            "0",
        ),
        Figure("rerun_writes", "ARM writes in the re-run", arm(o2, "writes"), arm(second_stats, "writes"), "0"),
        Figure(
            "rerun_arm_total",
            "ARM requests in the re-run",
            None if o2 is None else arm_total(o2),
            arm_total(second_stats),
            "< baseline",
        ),
    ]
    return [p1, p3]


def _created(run: OursRun | None) -> int | None:
    """Return how many custom images are Succeeded in the target labs after an ours run."""
    if run is None:
        return None
    return run.images_succeeded


def _previous_baseline(name: str) -> dict[str, Any] | None:
    """Return the baseline half of an earlier result file (same world and settings), or None."""
    path = RESULTS_DIR / f"{name}.json"
    if not path.exists():
        return None
    data = json.loads(path.read_text())
    baseline = data.get("baseline") or {}
    return {"from": path.name, "generated_at": data.get("generated_at"), **baseline} if baseline else None


def overhead_figures(run: OursRun | None) -> list[Figure]:
    """Per-pair time besides copy + image (median / p90), from the distribute tasks' logs."""
    if run is None:
        return []
    rows = [
        ("worker_part", "per pair: worker part (parse, hooks, token, upload URI, start copy, defer)"),
        ("slot_handover", "per pair: pool slot freed → next pair's worker starts"),
        ("trigger_part", "per pair: trigger part (copy + image creation)"),
    ]
    figures = []
    for key, label in rows:
        found = run.overheads.get(key)
        if found:
            figures.append(Figure(key, label, f"{found['median']} s (p90 {found['p90']} s)", None))
    return figures


def memory_figures(run: OursRun | None, components: tuple[str, ...]) -> list[Figure]:
    """Figures for the peak PSS of the named components and of the whole Airflow stack (local Azure apart)."""
    if run is None or not run.memory:
        return []
    peaks = run.memory.get("peak_mib", {})
    figures = [
        Figure(f"memory_{name}", f"peak memory (PSS) of {name} (process tree)", peaks.get(name), None, unit="MiB")
        for name in components
        if name in peaks
    ]
    stack_total = round(sum(v for k, v in peaks.items() if k != "local-azure"), 1)
    figures.append(
        Figure(
            "memory_stack",
            "sum of the Airflow stack's peaks (+ PostgreSQL/Redis when used; local Azure apart)",
            stack_total,
            None,
            unit="MiB",
        )
    )
    return figures


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
    pairs = labs * images
    ideal = math.ceil(pairs / pool) * (copy_s + image_s)
    settings = baseline_settings(labs_doc, jobs=pool, copy_seconds=copy_s, scaled=scaled_baseline)
    out = Outcome(name, f"Makespan vs ideal, {pairs} pairs, pool {pool}, copy {copy_s:g} s + image {image_s:g} s")
    out.world = {
        "labs": labs,
        "images": images,
        "regions": 1,
        "pairs": pairs,
        "copy_seconds": copy_s,
        "lro_seconds": image_s,
    }
    out.settings = {
        "pool": pool,
        "ideal_seconds": ideal,
        "executor": executor,
        "database": database,
        "baseline": {
            "max_concurrent_jobs": pool,
            "throttle_seconds": settings.throttle_seconds,
            "copy_poll_seconds": settings.copy_poll_seconds,
            "scaled": scaled_baseline,
        },
    }
    base_makespan: float | None = None
    base_pending: int | None = None
    base_created: int | None = None
    base_seconds: float | None = None
    previous = _previous_baseline(baseline_from) if baseline_from else None
    if previous is not None:
        out.baseline = previous
        base_makespan = previous.get("makespan")
        base_pending = (previous.get("stats") or {}).get("copies", {}).get("max_pending")
        base_created = (previous.get("summary") or {}).get("created")
        base_seconds = (previous.get("summary") or {}).get("seconds")
        out.notes.append(f"baseline: reused from {previous['from']} ({previous.get('generated_at')}), same world.")
    elif run_baseline:
        with local_azure(RUN_DIR / f"{name.lower()}-baseline", world) as azure:
            worlds.seed_catalogue(azure.info, world)
            result, stats = run_baseline_once(azure, settings)
        out.baseline = {"summary": result.summary(), "stats": _stats_digest(stats), "makespan": makespan(result)}
        base_makespan = makespan(result)
        base_pending = int(stats["copies"]["max_pending"])
        base_created = len(result.created)
        base_seconds = result.seconds
    else:
        out.notes.append(
            "baseline not run at this size: its 30 s throttle sleeps and 45 s copy polls would take "
            f"~{math.ceil(pairs / pool) * (copy_s + image_s + 75) / 60:.0f} min; see P2 for it against the same ideal."
        )
    ours_runs = None
    if with_ours:
        config_dir = worlds.write_config(
            RUN_DIR / f"{name.lower()}-config", world, max_concurrent_jobs=pool, labs_doc=labs_doc
        )
        poll = max(1, round(min(copy_s, image_s) / 4))
        out.settings["ours_conf"] = {"capture": False, "copy_poll_seconds": poll}
        ours_runs = _try_ours(
            out,
            lambda: run_ours(
                run_dir=RUN_DIR / f"{name.lower()}-ours",
                world=world,
                config_dir=config_dir,
                conf={"capture": False, "copy_poll_seconds": poll},
                executor=executor,
                database=database,
                timeout=timeout,
                follow_interval=2.0 if pairs <= 300 else 10.0,
            ),
        )
        if ours_runs:
            out.ours = ours_digest(ours_runs[0])
    ours = ours_runs[0] if ours_runs else None
    span = ours.distribution_seconds if ours else None
    out.figures = [
        Figure(
            "makespan",
            "makespan (ours: whole DAG run; baseline: first job start → last job end)",
            None if ours is None else round(ours.seconds, 1),
            None if base_makespan is None else round(base_makespan, 1),
            f"→ {ideal:.0f} s",
            "s",
        ),
        Figure(
            "makespan_over_ideal",
            "makespan / ideal",
            None if ours is None else ours.seconds / ideal,
            None if base_makespan is None else base_makespan / ideal,
            "≤ 1.15",
        ),
        Figure(
            "distribution_seconds",
            "ours: first distribute task start → last distribute task end",
            None if span is None else round(span, 1),
            None if base_makespan is None else round(base_makespan, 1),
            f"→ {ideal:.0f} s",
            "s",
        ),
        Figure(
            "distribution_over_ideal",
            "distribution span / ideal",
            None if span is None else span / ideal,
            None if base_makespan is None else base_makespan / ideal,
            "≤ 1.15",
        ),
        Figure(
            "run_seconds",
            "wall time of the whole run",
            None if ours is None else round(ours.seconds, 1),
            None if base_seconds is None else round(base_seconds, 1),
            unit="s",
        ),
        Figure(
            "max_pending",
            "max copies pending at once",
            None if ours is None else int(ours.stats["copies"]["max_pending"]),
            base_pending,
            f"= {pool}",
        ),
        Figure("created", "images created", _created(ours), base_created, f"= {pairs}"),
    ]
    if ours is not None and ours.hostnames:
        out.figures.append(
            Figure(
                "distribute_hosts",
                "distribute tasks per worker host",
                ", ".join(f"{h}: {n}" for h, n in sorted(ours.hostnames.items())),
                None,
            )
        )
    out.figures += overhead_figures(ours)
    out.figures += memory_figures(ours, AIRFLOW_COMPONENTS)
    if scaled_baseline:
        out.notes.append(f"baseline uses the original's 30 s / 45 s scaled by {copy_s:g}/{ORIGINAL_COPY_SECONDS:.0f}.")
    return [out]


def scenario_p4(*, labs: int = 100, images: int = 50, parse_labs: int = 1000, with_ours: bool = True) -> list[Outcome]:
    """P4: plan + dry run for ``labs`` x ``images`` and the DAG's parse time with a ``parse_labs``-lab labs.json."""
    world = worlds.generate_world(labs, images, 1, copy_seconds=2.0, lro_seconds=1.0)
    labs_doc = worlds.labs_json(world)
    pairs = labs * images
    out = Outcome("P4", f"Scale: plan + dry run for {labs} labs x {images} images; DAG parse with {parse_labs} labs")
    out.world = {"labs": labs, "images": images, "regions": 1, "pairs": pairs}
    settings = baseline_settings(labs_doc, jobs=20, copy_seconds=2.0, scaled=True)
    with local_azure(RUN_DIR / "p4-baseline", world) as azure:
        worlds.seed_catalogue(azure.info, world)
        azure.post("/reset-stats", {})
        script = DistributeImages(Endpoints.from_emulator(azure.info), settings)
        started = time.monotonic()
        things = script.plan()
        plan_seconds = time.monotonic() - started
        stats = azure.stats()
    out.baseline = {"plan_seconds": plan_seconds, "copies_planned": len(things), "stats": _stats_digest(stats)}
    ours = None
    would: int | None = None
    if with_ours:
        config_dir = worlds.write_config(RUN_DIR / "p4-config", world, labs_doc=labs_doc)
        runs = _try_ours(
            out,
            lambda: run_ours(
                run_dir=RUN_DIR / "p4-ours",
                world=world,
                config_dir=config_dir,
                conf={"capture": False, "dry_run": True},
                database="postgres",
                follow_interval=5.0,
            ),
        )
        ours = runs[0] if runs else None
        if ours:
            out.ours = ours_digest(ours)
            would = _would_distribute(RUN_DIR / "p4-ours")
            out.ours["would_distribute"] = would
    parse = dag_parse_seconds(parse_labs)
    out.ours["parse"] = parse
    plan_reads = None if ours is None else ours.stats["arm"]["reads"]
    out.figures = [
        Figure("pairs", "pairs planned (would be distributed)", would, len(things), f"= {pairs}"),
        Figure(
            "plan_seconds",
            "plan wall time (ours: the plan task; baseline: its planning loop)",
            None if ours is None else ours.task_seconds.get("plan"),
            round(plan_seconds, 1),
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
            plan_reads,
            int(stats["arm"]["reads"]),
            f"≤ {labs + images + 10} + verify/retention's per-lab lists",
        ),
        Figure(
            "plan_arm",
            "ARM requests of any kind",
            None if ours is None else arm_total(ours.stats),
            arm_total(stats),
            "< baseline",
        ),
        *parse_figures(parse),
    ]
    out.figures += memory_figures(ours, AIRFLOW_COMPONENTS)
    return [out]


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
    return _replace_figures(path, doc, parse_figures(parse))


def _would_distribute(run_dir: Path) -> int | None:
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


def dag_parse_seconds(labs: int, *, repeats: int = 3) -> dict[str, Any]:
    """Time parsing ``dags/image_factory.py`` with a ``labs``-lab labs.json (best of ``repeats``, in a subprocess)."""
    world = worlds.generate_world(labs, 5, 1)
    config_dir = worlds.write_config(RUN_DIR / "parse-config", world)
    # Airflow itself is imported first (the dag-processor has it loaded when it parses); the first parse then pays
    # for importing the project's modules (as a fresh parse process does), later ones find them imported.
    code = (
        "import time,sys\n"
        "from airflow.dag_processing.dagbag import DagBag\n"
        "times=[]\n"
        f"for _ in range({repeats}):\n"
        "    t=time.perf_counter(); bag=DagBag(dag_folder=sys.argv[1]); times.append(time.perf_counter()-t)\n"
        "print(times[0], min(times[1:] or times), len(bag.dags), len(bag.import_errors))\n"
    )
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
            [sys.executable, "-c", code, str(REPO / "dags" / "image_factory.py")],
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


def scenario_p5(
    *, labs_per_region: int = 5, regions: int = 3, images: int = 3, with_ours: bool = True
) -> list[Outcome]:
    """P5: bytes copied across regions (3 regions x 5 labs)."""
    labs = labs_per_region * regions
    world = worlds.generate_world(labs, images, regions, copy_seconds=2.0, lro_seconds=1.0)
    labs_doc = worlds.labs_json(world)
    factory_region = worlds.factory_lab(world)["location"]
    region_of = {lab["storage_account"]: lab["location"] for lab in world["labs"]}
    out = Outcome("P5", f"Cross-region bytes, {regions} regions x {labs_per_region} labs, {images} images")
    out.world = {"labs": labs, "images": images, "regions": regions, "pairs": labs * images}

    def cross_bytes(stats: Mapping[str, Any]) -> int:
        return sum(
            int(t.get("bytes", 0))
            for t in stats.get("copies", {}).get("transfers", [])
            if t.get("status") == "success"
            and region_of.get(t.get("source_account") or "", factory_region) != region_of.get(t["destination_account"])
        )

    settings = baseline_settings(labs_doc, jobs=20, copy_seconds=2.0, scaled=True)
    with local_azure(RUN_DIR / "p5-baseline", world) as azure:
        worlds.seed_catalogue(azure.info, world)
        result, stats = run_baseline_once(azure, settings)
    out.baseline = {
        "summary": result.summary(),
        "stats": _stats_digest(stats),
        "cross_region_bytes": cross_bytes(stats),
    }
    ours = None
    if with_ours:
        config_dir = worlds.write_config(RUN_DIR / "p5-config", world, labs_doc=labs_doc)
        runs = _try_ours(
            out,
            lambda: run_ours(
                run_dir=RUN_DIR / "p5-ours",
                world=world,
                config_dir=config_dir,
                conf={"capture": False, "copy_poll_seconds": 1},
            ),
        )
        ours = runs[0] if runs else None
        if ours:
            out.ours = {
                "state": ours.state,
                "seconds": ours.seconds,
                "stats": _stats_digest(ours.stats),
                "cross_region_bytes": cross_bytes(ours.stats),
            }
    image_bytes = worlds.MIB + 512
    out.figures = [
        Figure(
            "cross_region_bytes",
            "bytes copied across regions",
            None if ours is None else cross_bytes(ours.stats),
            cross_bytes(stats),
            f"≤ {(regions - 1) * images * image_bytes} (one copy per image and region)",
            "B",
        ),
        Figure("delivered", "images delivered", _created(ours), len(result.created), f"= {labs * images}"),
        Figure("refused", "pairs refused (other region)", None if ours is None else 0, result.refused_region, "0"),
    ]
    return [out]


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
}
QUICK = ("P1", "P2-quick")
FULL = ("P1", "P2", "P2-postgres", "P2-celery", "P4", "P4-run", "P5")


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
    return _replace_figures(path, doc, added)


def _replace_figures(path: Path, doc: dict[str, Any], added: list[Figure]) -> Path:
    """Put ``added`` in place of the figures with their keys (before the memory ones), write, regenerate RESULTS.md."""
    keys = {f.key for f in added}
    figures = [f for f in doc.get("figures", []) if f.get("key") not in keys]
    at = next((i for i, f in enumerate(figures) if str(f.get("key", "")).startswith("memory_")), len(figures))
    doc["figures"] = figures[:at] + [{**asdict(f), "ratio": f.ratio()} for f in added] + figures[at:]
    path.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    regenerate_results_md(path.parent, path.parent.parent / RESULTS_MD.name)
    return path


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
