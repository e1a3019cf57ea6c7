"""Crash drills: a task process killed with SIGKILL mid-copy, the triggerer and the scheduler restarted mid-run.

One stack serves the module; each drill starts from labs without images (``reset``) and must end with every
pair exactly once, no second copy of a pair, and the invariants.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable

import psutil
import pytest

from stack.__main__ import DAG_ID, Stack
from tests.drills import invariants
from tests.drills.conftest import DEMO_PAIRS, FAST, check_after, reset, trigger, wait

pytestmark = [pytest.mark.drill, pytest.mark.timeout(1800)]

RUNS: list[str] = []


def wait_for(predicate: Callable[[], bool], what: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


def assert_every_pair_once(stack: Stack, run_id: str) -> None:
    state = check_after(stack, run_id)
    pairs = invariants.succeeded_pairs(state)
    assert len(pairs) == DEMO_PAIRS and set(pairs.values()) == {1}, pairs
    copies = {k: v for k, v in stack.azure.stats()["copies"].items() if k != "transfers"}
    print(f"\ndrill figures {run_id}: copies {copies}")
    assert copies["started"] == DEMO_PAIRS, "a pair was copied twice"


def task_processes(stack: Stack, ti_ids: set[str]) -> dict[str, psutil.Process]:
    """Find the task processes (``airflow worker -- <ti id>``) of ``ti_ids`` among the scheduler's descendants."""
    root = psutil.Process(stack.airflow.children["scheduler"].pid)
    found: dict[str, psutil.Process] = {}
    for proc in root.children(recursive=True):
        try:
            cmdline = " ".join(proc.cmdline())
        except psutil.Error:
            continue
        for ti_id in ti_ids:
            if f"airflow worker -- {ti_id}" in cmdline:
                found[ti_id] = proc
    return found


def distribute_log(stack: Stack, run_id: str) -> str:
    root = stack.airflow.settings.home / "task-logs"
    return "\n".join(
        p.read_text(errors="replace")
        for p in sorted(root.rglob("*"))
        if p.is_file() and f"run_id={run_id}" in str(p) and "task_id=distribute" in str(p)
    )


def test_kill_9_of_a_task_mid_copy_is_adopted_by_its_retry(demo_stack: Stack) -> None:
    reset(demo_stack)
    # The copies the killed tasks leave behind stay pending long enough for the retries to find them pending.
    demo_stack.azure.post("/config", {"copy_seconds": 150})
    demo_stack.azure.post(
        "/faults", [{"service": "blob", "kind": "delay", "delay": 15, "operation": "CopyBlob", "account": "*labstore"}]
    )
    run_id = trigger(demo_stack)
    RUNS.append(run_id)

    def copying() -> bool:
        with demo_stack.azure.control() as control:
            return any(r["fired"] for r in control.get("/faults").json()["rules"])

    wait_for(copying, "a distribute task to send its copy request")
    time.sleep(2)  # let the other slots' tasks reach their copy request too
    running = {
        str(ti["id"]): ti
        for ti in demo_stack.client.task_instances(DAG_ID, run_id)
        if ti["task_id"] == "distribute" and ti["state"] == "running"
    }
    victims = task_processes(demo_stack, set(running))
    assert victims, f"no task process found for {sorted(running)}"
    for proc in victims.values():
        os.killpg(os.getpgid(proc.pid), signal.SIGKILL)
    with demo_stack.azure.control() as control:
        held = sum(int(r["fired"]) for r in control.get("/faults").json()["rules"])
    demo_stack.azure.delete("/faults")
    # The held copy requests reach Azurite only when their delay ends: keep copies long until they have started,
    # or the killed tasks' copies finish in seconds and their retries find nothing pending to adopt.
    wait_for(lambda: demo_stack.azure.stats()["copies"]["started"] >= held, f"the {held} held copy requests to start")
    demo_stack.azure.post("/config", {"copy_seconds": FAST["copy_seconds"]})

    run = wait(demo_stack, run_id, timeout=1500)
    assert run["state"] == "success", run
    # A retry is a new task instance id in Airflow 3: find the killed pairs again by map index.
    killed = {running[ti_id]["map_index"] for ti_id in victims}
    tries = {
        ti["map_index"]: ti["try_number"]
        for ti in demo_stack.client.task_instances(DAG_ID, run_id)
        if ti["task_id"] == "distribute" and ti["map_index"] in killed
    }
    assert tries and all(n >= 2 for n in tries.values()), f"the killed tasks must have been retried: {tries}"
    # A retry reuses the killed attempt's copy: adopted while still pending, or (when the retry waited for a pool
    # slot longer than the copy took) the uploaded VHD is turned into the image. Never copied again: see below.
    log = distribute_log(demo_stack, run_id)
    reused = [phrase for phrase in ("adopting it", "the VHD was uploaded by an earlier attempt") if phrase in log]
    assert reused, "a retry must reuse the killed attempt's copy"
    print(f"\nkill -9: {len(victims)} task(s) killed, tries {tries}, retries {' and '.join(reused)}")
    assert_every_pair_once(demo_stack, run_id)


def test_triggerer_restart_while_copies_are_pending(demo_stack: Stack) -> None:
    reset(demo_stack)
    demo_stack.azure.post("/config", {"copy_seconds": 20})
    run_id = trigger(demo_stack)
    RUNS.append(run_id)
    wait_for(lambda: demo_stack.azure.stats()["copies"]["pending_now"] >= 2, "copies to be pending")
    deferred = [ti for ti in demo_stack.client.task_instances(DAG_ID, run_id) if ti["state"] == "deferred"]
    demo_stack.airflow.restart("triggerer")
    demo_stack.azure.post("/config", {"copy_seconds": FAST["copy_seconds"]})
    run = wait(demo_stack, run_id, timeout=1500)
    assert run["state"] == "success", run
    assert deferred, "tasks were deferred when the triggerer went down"
    assert demo_stack.airflow.children["triggerer"].alive()
    assert_every_pair_once(demo_stack, run_id)


def test_scheduler_restart_mid_run(demo_stack: Stack) -> None:
    reset(demo_stack)
    demo_stack.azure.post("/config", {"copy_seconds": 10})
    run_id = trigger(demo_stack)
    RUNS.append(run_id)
    wait_for(lambda: demo_stack.azure.stats()["copies"]["pending_now"] >= 1, "copies to be pending")
    demo_stack.airflow.restart("scheduler")
    demo_stack.azure.post("/config", {"copy_seconds": FAST["copy_seconds"]})
    run = wait(demo_stack, run_id, timeout=1500)
    assert run["state"] == "success", run
    assert_every_pair_once(demo_stack, run_id)


def test_no_secret_leaked_by_the_crash_drills(demo_stack: Stack) -> None:
    assert RUNS, "run the module's drills first"
    hits, scanned = invariants.scan_everything(demo_stack, RUNS)
    assert scanned["files"] > 10 and scanned["task_instances"] > 0, scanned
    assert hits == [], "\n".join(hits)
