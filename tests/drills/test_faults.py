"""Fault drills: the real Airflow processes against a local Azure that throttles, errs, fails copies and LROs.

One stack serves the module. Before each drill the labs' images are deleted (``reset``), so every drill run
distributes the 7 demo pairs again under its faults; after each drill the invariants must hold and every pair
must exist exactly once. Outcomes are asserted, never timings.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from stack.__main__ import Stack, verify_report
from tests.drills import invariants
from tests.drills.conftest import DEMO_PAIRS, check_after, reset, run_to_end, trigger, wait

pytestmark = [pytest.mark.drill, pytest.mark.timeout(1800)]

#: Every run id a drill made, for the secret scan at the end of the module.
RUNS: list[str] = []


def fired(stack: Stack) -> dict[int, int]:
    """Return rule id -> how often it fired."""
    with stack.azure.control() as control:
        rules = control.get("/faults").json()["rules"]
    return {int(r["id"]): int(r["fired"]) for r in rules}


def distribute_run(stack: Stack, rules: list[dict[str, Any]], *, timeout: float = 1500) -> tuple[str, dict[str, Any]]:
    """Reset, add ``rules``, run the factory to the end, clear the faults; return (run id, stats of the run)."""
    reset(stack)
    if rules:
        stack.azure.post("/faults", rules)
    run_id, run = run_to_end(stack, timeout=timeout)
    RUNS.append(run_id)
    stats = stack.azure.stats()
    stats["fired"] = fired(stack)
    stack.azure.delete("/faults")
    print(f"\n{figures(run_id, stats)}")
    assert run["state"] == "success", f"run {run_id} ended {run['state']}: {(verify_report(stack, run_id) or {})}"
    return run_id, stats


def figures(run_id: str, stats: dict[str, Any]) -> str:
    """One line of a drill's figures for RESULTS.md: faults fired, early retries, copies."""
    copies = {k: v for k, v in stats["copies"].items() if k != "transfers"}
    return (
        f"drill figures {run_id}: fired {stats.get('fired')}, early retries arm {stats['arm']['early_retries']} "
        f"blob {stats['blob']['early_retries']}, copies {copies}"
    )


def assert_every_pair_once(stack: Stack, run_id: str) -> None:
    state = check_after(stack, run_id)
    pairs = invariants.succeeded_pairs(state)
    assert len(pairs) == DEMO_PAIRS, sorted(pairs)
    assert set(pairs.values()) == {1}, pairs


def test_429_storms_with_retry_after_are_waited_out(demo_stack: Stack) -> None:
    rules = [
        {"service": "arm", "kind": "status", "status": 429, "retry_after": 2, "probability": 0.4, "count": 25},
        {"service": "blob", "kind": "status", "status": 503, "retry_after": 2, "probability": 0.4, "count": 25},
    ]
    run_id, stats = distribute_run(demo_stack, rules)
    assert all(n > 0 for n in stats["fired"].values()), f"the storm must hit both services: {stats['fired']}"
    assert stats["arm"]["early_retries"] == 0, "an ARM request was retried before its Retry-After"
    assert stats["blob"]["early_retries"] == 0, "a blob request was retried before its Retry-After"
    assert_every_pair_once(demo_stack, run_id)


def test_one_request_in_ten_fails_or_resets(demo_stack: Stack) -> None:
    rules = [
        {"service": "arm", "kind": "status", "status": 500, "probability": 0.05, "count": 20},
        {"service": "arm", "kind": "status", "status": 503, "probability": 0.03, "count": 20},
        {"service": "arm", "kind": "reset", "probability": 0.02, "count": 10},
        {"service": "blob", "kind": "status", "status": 500, "probability": 0.05, "count": 20},
        {"service": "blob", "kind": "status", "status": 503, "probability": 0.03, "count": 20},
        {"service": "blob", "kind": "reset", "probability": 0.02, "count": 10},
    ]
    run_id, stats = distribute_run(demo_stack, rules)
    assert sum(stats["fired"].values()) >= 5, f"too few faults fired to mean anything: {stats['fired']}"
    assert_every_pair_once(demo_stack, run_id)


def test_copies_failed_or_aborted_half_way_are_retried(demo_stack: Stack) -> None:
    rules = [
        {"service": "blob", "kind": "copy_fail", "account": "*labstore", "count": 2},
        {"service": "blob", "kind": "copy_abort", "account": "*labstore", "count": 2},
    ]
    run_id, stats = distribute_run(demo_stack, rules)
    assert stats["copies"]["failed"] == 2 and stats["copies"]["aborted"] == 2, stats["copies"]
    assert stats["copies"]["completed"] == DEMO_PAIRS, "each pair's copy completes once"
    assert_every_pair_once(demo_stack, run_id)


def test_custom_image_lro_failed_once_is_deleted_and_recreated(demo_stack: Stack) -> None:
    rules = [
        {
            "service": "arm",
            "kind": "status",
            "method": "LRO",
            "operation": "CustomImages_CreateOrUpdate",
            "count": 1,
            "message": "Drill: the custom image creation failed.",
        }
    ]
    run_id, stats = distribute_run(demo_stack, rules)
    assert list(stats["fired"].values()) == [1]
    assert stats["arm"]["requests"].get("CustomImages_Delete", 0) == 1, "the Failed image is deleted"
    assert stats["arm"]["requests"]["CustomImages_CreateOrUpdate"] == DEMO_PAIRS + 1, "and created once more"
    assert stats["copies"]["started"] == DEMO_PAIRS, "the uploaded VHD is reused, not copied again"
    assert_every_pair_once(demo_stack, run_id)


def test_arm_unreachable_for_a_minute_mid_run(demo_stack: Stack) -> None:
    reset(demo_stack)
    run_id = trigger(demo_stack)
    RUNS.append(run_id)
    deadline = time.monotonic() + 300
    while demo_stack.azure.stats()["copies"]["pending_now"] == 0:
        assert time.monotonic() < deadline, "no copy ever became pending"
        time.sleep(0.5)
    demo_stack.azure.post(
        "/faults",
        [
            {"service": "arm", "kind": "reset", "probability": 0.5},
            {"service": "arm", "kind": "status", "status": 503},
        ],
    )
    time.sleep(60)
    outage = sum(fired(demo_stack).values())
    demo_stack.azure.delete("/faults")
    assert outage > 0, "the outage refused no request: the drill did not strike mid-run"
    run = wait(demo_stack, run_id, timeout=1500)
    if run["state"] != "success":
        report = verify_report(demo_stack, run_id)
        assert report is not None and report["problems"], "a failed run must say which pairs are missing"
        second, run = run_to_end(demo_stack, timeout=1500)
        RUNS.append(second)
        assert run["state"] == "success", "a second run completes what the outage left"
        run_id = second
    assert_every_pair_once(demo_stack, run_id)


def test_no_secret_leaked_by_the_fault_drills(demo_stack: Stack) -> None:
    assert RUNS, "run the module's drills first"
    hits, scanned = invariants.scan_everything(demo_stack, RUNS)
    assert scanned["files"] > 10 and scanned["xcoms"] > 0 and scanned["task_instances"] > 0, scanned
    assert hits == [], "\n".join(hits)
