"""bench.measure: what the scenarios read from the emulator's statistics and how the baseline is set."""

from __future__ import annotations

import pytest

from bench.baseline import BaselineResult, JobOutcome
from bench.measure import (
    arm_count,
    arm_total,
    baseline_facts,
    baseline_settings,
    makespan,
    operation_count,
    stats_digest,
    while_pending,
    world_facts,
)

STATS = {
    "arm": {"requests": {"Labs_Get": 4, "CustomImages_CreateOrUpdate": 2}, "reads": 4, "writes": 2},
    "copies": {"started": 2, "max_pending": 1, "transfers": [{"bytes": 10}]},
    "requests": {"GetBlob": 3},
}


def test_while_pending_sums_the_emulators_counter() -> None:
    assert while_pending(None) is None
    assert while_pending({"arm": {}}) == 0
    assert while_pending({"arm": {"while_copies_pending": {"Labs_Get": 2, "CustomImages_Get": 3}}}) == 5


def test_arm_counts() -> None:
    assert arm_total(STATS) == 6
    assert (arm_count(STATS, "reads"), arm_count(STATS, "lro_polls")) == (4, 0)
    assert operation_count(STATS, "Labs_Get") == 4
    assert operation_count({}, "Labs_Get") == 0


def test_digest_leaves_the_transfer_list_out() -> None:
    assert stats_digest(STATS) == {
        "arm": STATS["arm"],
        "copies": {"started": 2, "max_pending": 1},
        "blob_requests": {"GetBlob": 3},
        "entra": None,
    }


def test_baseline_timings_scale_with_the_copy_time() -> None:
    labs = {"Labs": [{"LabName": "Lab000"}]}
    scaled = baseline_settings(labs, jobs=4, copy_seconds=2.0, scaled=True)
    assert (scaled.throttle_seconds, scaled.copy_poll_seconds, scaled.max_concurrent_jobs) == (3.0, 4.5, 4)
    original = baseline_settings(labs, jobs=4, copy_seconds=2.0, scaled=False)
    assert (original.throttle_seconds, original.copy_poll_seconds) == (30.0, 45.0)
    assert baseline_facts(scaled, scaled=True) == {
        "max_concurrent_jobs": 4,
        "throttle_seconds": 3.0,
        "copy_poll_seconds": 4.5,
        "scaled": True,
    }


def test_world_facts_and_makespan(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BENCH_AZURE", raising=False)
    assert world_facts(3, 2, 1, copy_seconds=2.0) == {
        "labs": 3,
        "images": 2,
        "regions": 1,
        "pairs": 6,
        "copy_seconds": 2.0,
        "azure": "ARM 100 ms median (p99 400), storage 20 ms median (p99 60), ARM throttling on",
    }
    result = BaselineResult(started=0.0)
    assert makespan(result) == 0.0
    result.jobs = [JobOutcome("a", "l", started=10.0, finished=20.0), JobOutcome("b", "l", started=12.0, finished=31.5)]
    assert makespan(result) == 21.5


def test_benchmarks_run_against_an_azure_like_local_azure_unless_told(monkeypatch: pytest.MonkeyPatch) -> None:
    from bench import azure_like

    monkeypatch.delenv("BENCH_AZURE", raising=False)
    assert azure_like.emulator_config()["throttling"] is True
    assert azure_like.emulator_config()["arm_latency"] == {"median_ms": 100, "p99_ms": 400}
    monkeypatch.setenv("BENCH_AZURE", "instant")
    assert azure_like.emulator_config() == azure_like.INSTANT
    assert azure_like.describe(azure_like.INSTANT) == "instant (no latency), ARM throttling off"
