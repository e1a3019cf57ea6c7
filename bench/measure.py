"""Shared measuring for the scenarios: the local Azure alone, the baseline on it, and what the emulator counted.

The emulator's statistics (``GET /_emulator/stats``, docs/ARCHITECTURE.md) are read as plain JSON here.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench import azure_like, worlds
from bench.baseline import BaselineResult, BaselineSettings, DistributeImages, Endpoints

REPO = Path(__file__).resolve().parents[1]
RUN_DIR = REPO / ".run" / "bench"
FACTORY_SUB = "11111111-1111-4111-8111-111111111111"
#: The original's timings; the "scaled" variant multiplies them by the scenario's copy time / 20 s.
ORIGINAL_COPY_SECONDS = 20.0


def world_facts(labs: int, images: int, regions: int, **timings: float) -> dict[str, Any]:
    """Return what a result file says of its world: sizes, pairs, the emulator's timings, latency and throttling."""
    azure = azure_like.describe(azure_like.emulator_config())
    return {"labs": labs, "images": images, "regions": regions, "pairs": labs * images, **timings, "azure": azure}


# -- the local Azure and the baseline -------------------------------------------------------------------------------
@contextmanager
def local_azure(run_dir: Path, world: Mapping[str, Any]) -> Iterator[Any]:
    """Start the local Azure alone for ``world`` under ``run_dir``; stop it on exit."""
    from stack.localazure import start_local_azure

    shutil.rmtree(run_dir, ignore_errors=True)
    path = worlds.write_world(run_dir / "world.json", world)
    azure = start_local_azure(world=path, state_dir=run_dir / "azure", log_dir=run_dir / "logs")
    try:
        azure_like.apply(azure)
        yield azure
    finally:
        azure.stop()


@contextmanager
def seeded_azure(run_dir: Path, world: Mapping[str, Any]) -> Iterator[Any]:
    """Start the local Azure alone with the factory catalogue pre-filled (what capture would have written)."""
    with local_azure(run_dir, world) as azure:
        worlds.seed_catalogue(azure.info, world)
        yield azure


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


def baseline_facts(settings: BaselineSettings, *, scaled: bool) -> dict[str, Any]:
    """Return what a result file says of the baseline's settings."""
    return {
        "max_concurrent_jobs": settings.max_concurrent_jobs,
        "throttle_seconds": settings.throttle_seconds,
        "copy_poll_seconds": settings.copy_poll_seconds,
        "scaled": scaled,
    }


def run_baseline_once(azure: Any, settings: BaselineSettings) -> tuple[BaselineResult, dict[str, Any]]:
    """Reset the emulator's statistics, run the baseline, return its result and the statistics."""
    azure.post("/reset-stats", {})
    result = DistributeImages(Endpoints.from_emulator(azure.info), settings).run()
    return result, azure.stats()


def measure_baseline(
    run_dir: Path, world: Mapping[str, Any], settings: BaselineSettings, *, runs: int = 1
) -> list[tuple[BaselineResult, dict[str, Any]]]:
    """Run the baseline ``runs`` times in a row on a fresh, seeded local Azure; return each result and statistics."""
    with seeded_azure(run_dir, world) as azure:
        return [run_baseline_once(azure, settings) for _ in range(runs)]


def makespan(result: BaselineResult) -> float:
    """Return the time from the first job's start to the last job's end (the distribution part of the run)."""
    starts = [j.started for j in result.jobs if j.started]
    ends = [j.finished for j in result.jobs if j.finished]
    return max(ends) - min(starts) if starts and ends else 0.0


# -- the emulator's statistics ----------------------------------------------------------------------------------
def arm_total(stats: Mapping[str, Any]) -> int:
    """Return every ARM request counted (polls included)."""
    return int(sum(stats.get("arm", {}).get("requests", {}).values()))


def arm_count(stats: Mapping[str, Any], kind: str) -> int:
    """Return the ARM requests of one kind (``reads``, ``writes``, ``actions``, ``lro_polls``)."""
    return int(stats.get("arm", {}).get(kind, 0))


def operation_count(stats: Mapping[str, Any], operation: str) -> int:
    """Return the ARM requests of one operation (e.g. ``Labs_ListBySubscription``)."""
    return int(stats.get("arm", {}).get("requests", {}).get(operation, 0))


def while_pending(stats: Mapping[str, Any] | None) -> int | None:
    """Return the ARM requests the emulator saw while at least one copy was pending."""
    if stats is None:
        return None
    return int(sum(stats.get("arm", {}).get("while_copies_pending", {}).values()))


def stats_digest(stats: Mapping[str, Any]) -> dict[str, Any]:
    """Return what a result file keeps of the emulator's statistics (the copies' transfer list apart)."""
    arm = dict(stats.get("arm", {}))
    copies = {k: v for k, v in stats.get("copies", {}).items() if k != "transfers"}
    return {"arm": arm, "copies": copies, "blob_requests": stats.get("requests", {}), "entra": stats.get("entra")}
