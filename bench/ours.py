"""The product's side of a scenario: DAG runs on a fresh stack, what they did, and the figures only they have."""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from bench import azure_like, memory, worlds
from bench.measure import RUN_DIR, stats_digest
from bench.overheads import pair_overheads
from bench.report import Figure, Outcome

log = logging.getLogger(__name__)

Run = TypeVar("Run")

#: Unpausing the DAG would otherwise start its latest scheduled run (capture on) next to the measured one.
NO_SCHEDULED_RUNS = {"AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False"}
#: The DAG's params for a distribution-only run (the catalogue is pre-filled) that looks at copies every second.
DISTRIBUTE_ONLY = {"capture": False, "copy_poll_seconds": 1}
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


@dataclass
class TaskTally:
    """What a run's task instances (Airflow's REST API) add up to."""

    #: State → task instances in it.
    states: dict[str, int] = field(default_factory=dict)
    #: Mapped task id → its mapped instances.
    mapped: dict[str, int] = field(default_factory=dict)
    #: Worker host → distribute task instances it ran.
    hosts: dict[str, int] = field(default_factory=dict)
    #: Unmapped task id → seconds from its start to its end.
    durations: dict[str, float] = field(default_factory=dict)


def _when(value: Any) -> datetime | None:
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")) if value else None


def _bump(counts: dict[str, int], key: str) -> None:
    counts[key] = counts.get(key, 0) + 1


def tally_tasks(tis: list[dict[str, Any]]) -> TaskTally:
    """Count a run's task instances by state, mapped task and distribute host; time its unmapped tasks."""
    tally = TaskTally()
    for ti in tis:
        task_id, mapped = str(ti.get("task_id")), int(ti.get("map_index", -1)) >= 0
        _bump(tally.states, str(ti.get("state")))
        if mapped:
            _bump(tally.mapped, task_id)
        if task_id in DISTRIBUTE_TASKS and ti.get("hostname"):
            _bump(tally.hosts, str(ti["hostname"]))
        begun, ended = _when(ti.get("start_date")), _when(ti.get("end_date"))
        if not mapped and begun and ended:
            tally.durations[task_id] = round((ended - begun).total_seconds(), 2)
    return tally


def distribution_span(tis: list[dict[str, Any]]) -> float | None:
    """Return seconds from the first distribute task's start to the last one's end (None when none ran)."""
    mine = [ti for ti in tis if str(ti.get("task_id")) in DISTRIBUTE_TASKS]
    starts = [t for t in (_when(ti.get("start_date")) for ti in mine) if t]
    ends = [t for t in (_when(ti.get("end_date")) for ti in mine) if t]
    if not starts or not ends:
        return None
    return (max(ends) - min(starts)).total_seconds()


def images_succeeded(state: Mapping[str, Any]) -> int:
    """Return how many custom images are Succeeded in the target labs (the emulator's ``/state``)."""
    return sum(
        1
        for lab in state.get("labs", [])
        if lab.get("name") != worlds.FACTORY_LAB
        for image in lab.get("images", [])
        if image.get("provisioning_state") == "Succeeded"
    )


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


def _described(stack: Any) -> dict[str, str]:
    """Return the executor, database and parallelism a stack runs with."""
    return {
        "executor": stack.airflow.settings.executor,
        "database": "PostgreSQL" if stack.airflow.settings.sql_alchemy_conn else "SQLite",
        "parallelism": str(stack.airflow.settings.parallelism),
    }


def _one_run(stack: Any, conf: Mapping[str, Any], *, timeout: float, follow_interval: float) -> OursRun:
    """Trigger one DAG run on a running stack, follow it to its end (sampling memory), and read what it did."""
    from stack.__main__ import DAG_ID, follow_run

    stack.azure.post("/reset-stats", {})
    started = time.monotonic()
    with memory.sampling(lambda: stack_roots(stack), interval=5.0) as peaks:
        run_id = stack.client.trigger(DAG_ID, conf=dict(conf))
        run = follow_run(stack, run_id, timeout=timeout, interval=follow_interval)
        seconds = time.monotonic() - started
    tis = stack.client.task_instances(DAG_ID, run_id)
    tally = tally_tasks(tis)
    return OursRun(
        state=str(run["state"]),
        seconds=seconds,
        stats=stack.azure.stats(),
        tasks=tally.states,
        images_succeeded=images_succeeded(stack.azure.state()),
        distribution_seconds=distribution_span(tis),
        mapped=tally.mapped,
        hostnames=tally.hosts,
        memory=peaks.to_dict(),
        stack=_described(stack),
        task_seconds=tally.durations,
        overheads=pair_overheads(stack.airflow.settings.home, run_id=run_id),
    )


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
    from stack.__main__ import DAG_ID, running_stack

    path = worlds.write_world(run_dir.parent / f"{run_dir.name}-world.json", world)
    with running_stack(
        run_dir=run_dir,
        world=path,
        config_dir=config_dir,
        emulator_config={**azure_like.emulator_config(), **(emulator_config or {})},
        extra_env=dict(NO_SCHEDULED_RUNS),
        say=log.info,
        executor=executor,
        database=database,
    ) as stack:
        worlds.seed_catalogue(stack.azure.info, world)
        stack.client.unpause(DAG_ID)
        return [_one_run(stack, conf, timeout=timeout, follow_interval=follow_interval) for _ in range(runs)]


def try_ours(outcome: Outcome, fn: Callable[[], list[Run]]) -> list[Run] | None:
    """Return ``fn()``'s runs, or None with what blocked them written into ``outcome`` (the baseline's figures stay)."""
    try:
        return fn()
    except Exception as exc:  # report what blocked "ours", keep the baseline's figures
        outcome.ours = {"error": f"{type(exc).__name__}: {exc}"[:2000], "traceback": traceback.format_exc()[-4000:]}
        outcome.notes.append(f"ours did not run: {type(exc).__name__}: {str(exc)[:300]}")
        return None


def ours_side(
    outcome: Outcome,
    prefix: str,
    world: Mapping[str, Any],
    labs_doc: Mapping[str, Any],
    conf: Mapping[str, Any],
    *,
    max_concurrent_jobs: int = 20,
    **options: Any,
) -> list[OursRun] | None:
    """Write the scenario's configuration folder and run the DAG under ``RUN_DIR/<prefix>-ours`` (``run_ours``)."""
    config_dir = worlds.write_config(
        RUN_DIR / f"{prefix}-config", world, max_concurrent_jobs=max_concurrent_jobs, labs_doc=labs_doc
    )
    return try_ours(
        outcome,
        lambda: run_ours(run_dir=RUN_DIR / f"{prefix}-ours", world=world, config_dir=config_dir, conf=conf, **options),
    )


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
        "stats": stats_digest(run.stats),
    }


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


def memory_figures(run: OursRun | None, components: tuple[str, ...] = AIRFLOW_COMPONENTS) -> list[Figure]:
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
