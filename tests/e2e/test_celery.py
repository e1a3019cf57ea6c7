"""The distributed engine: CeleryExecutor on PostgreSQL + Redis with two workers, as ``make up EXECUTOR=celery``.

Each stack has its own world (the emulator's demo world, a copy of Configuration/). ``TestCeleryStack`` shares one
stack; the worker-loss test kills a worker and needs a pristine world to count images in, so it starts its own
after the shared one is gone (class scope), never two at once on the 2-core machines.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg2
import pytest

from stack.__main__ import DAG_ID, Stack, follow_run, running_stack
from stack.celery import WORKERS, ping_workers, worker_process
from stack.hostname import WORKER_NAME_VAR, worker_hostname
from stack.processes import wait_until
from stack.services import redis_ping, services_for
from tests.e2e.conftest import lab_images, uploads_blobs

pytestmark = [pytest.mark.celery, pytest.mark.e2e]

REPO = Path(__file__).resolve().parents[2]
DEMO_WORLD = REPO / "emulator" / "worlds" / "demo.json"
POOL_SLOTS = 3  # MaxConcurrentJobs of the sample factory.json
#: The demo world's 7 (lab, ImagePath) pairs (docs/ARCHITECTURE.md).
EXPECTED_PAIRS = {
    ("DevLab", "Win2016/Datacenter.json"),
    ("DevLab", "Win2016/SQLExpress.json"),
    ("DevLab", "Ubuntu/Ubuntu2204.json"),
    ("TestLab", "Win2012R2/VS2017.json"),
    ("TestLab", "Win2016/Datacenter.json"),
    ("QALab", "Win2016/SQLExpress.json"),
    ("QALab", "Ubuntu/Ubuntu2204.json"),
}
RUN_CONF = {"copy_poll_seconds": 2}
#: Unpausing would otherwise create today's scheduled run (catchup=False still runs the latest interval), which
#: does all the work before the REST-triggered run under test (max_active_runs=1) and leaves it nothing to do.
NO_SCHEDULED_RUNS = {"AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False"}


@contextlib.contextmanager
def celery_stack(
    tmp: Path, *, emulator_config: dict[str, Any], extra_env: dict[str, str] | None = None
) -> Iterator[Stack]:
    """Start the local Azure + the Celery stack (2 workers) on a copy of Configuration/; unpause the DAG."""
    config_dir = tmp / "Configuration"
    shutil.copytree(REPO / "Configuration", config_dir)
    with running_stack(
        run_dir=tmp / "run",
        world=DEMO_WORLD,
        config_dir=config_dir,
        emulator_config=emulator_config,
        extra_env={**NO_SCHEDULED_RUNS, **(extra_env or {})},
        executor="celery",
        say=lambda *_: None,
    ) as stack:
        stack.client.unpause(DAG_ID)
        yield stack


@pytest.fixture(scope="class")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One Celery stack for the tests of a class (torn down before the worker-loss test starts its own)."""
    with celery_stack(tmp_path_factory.mktemp("celery"), emulator_config={"copy_seconds": 4, "lro_seconds": 1}) as s:
        yield s


def run_version(run: dict[str, Any]) -> str:
    """The version a run without a logical date distributes: the UTC date of its ``run_after``."""
    moment = run.get("logical_date") or run["run_after"]
    return datetime.fromisoformat(str(moment).replace("Z", "+00:00")).astimezone(UTC).date().isoformat()


def images_by_pair(state: dict[str, Any]) -> Counter[tuple[str, str, str]]:
    """Count custom images per (lab, ImagePath, version) over every lab of the emulator."""
    counts: Counter[tuple[str, str, str]] = Counter()
    for lab, images in lab_images(state).items():
        for image in images.values():
            tags = image.get("tags", {})
            counts[(lab, tags.get("ImagePath", "?"), tags.get("ImageFactory.Version", "?"))] += 1
    return counts


def assert_every_pair_distributed_once(state: dict[str, Any], version: str) -> None:
    counts = images_by_pair(state)
    assert set(counts) == {(lab, path, version) for lab, path in EXPECTED_PAIRS}, sorted(counts)
    assert all(n == 1 for n in counts.values()), f"duplicate images: {counts}"
    for lab, images in lab_images(state).items():
        assert all(img["provisioning_state"] == "Succeeded" for img in images.values()), lab
    assert uploads_blobs(state) == [], "uploaded VHDs must be deleted once their image is Succeeded"
    assert state["disk_access"]["granted_now"] == 0, "no disk access may stay granted"


def reset_stats_when_planning(stack: Stack, run_id: str, timeout: float = 300) -> None:
    """Reset the emulator's stats once ``plan`` runs: every capture copy has ended, no distribute copy started."""

    def planning() -> bool:
        states = {ti["task_id"]: ti["state"] for ti in stack.client.task_instances(DAG_ID, run_id)}
        if stack.client.dag_run(DAG_ID, run_id)["state"] == "failed":
            raise AssertionError(f"the run failed before plan: {states}")
        return states.get("plan") in ("running", "success")

    wait_until(planning, timeout=timeout, interval=0.3, what="the plan task to start")
    stack.azure.post("/reset-stats", {})


def test_hostname_callable_names_the_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(WORKER_NAME_VAR, "w2")
    assert worker_hostname() == "w2"
    monkeypatch.delenv(WORKER_NAME_VAR)
    assert worker_hostname() == socket.getfqdn()


def test_services_start_and_stop_idempotently_and_leave_nothing_running(tmp_path: Path) -> None:
    services = services_for(tmp_path)
    try:
        services.start()
        pg_port, redis_port = services.postgres.port, services.redis.port
        services.start()  # a second start reuses both servers
        assert (services.postgres.port, services.redis.port) == (pg_port, redis_port)
        assert redis_ping(redis_port)
        other = services_for(tmp_path)  # what another process sees for the same run folder
        assert other.postgres.running() and other.redis.running()
        conn = psycopg2.connect(services.postgres.url("postgresql"))
        with conn, conn.cursor() as cur:
            cur.execute("SHOW max_connections")
            assert cur.fetchone() == ("200",)
        conn.close()
        other.stop()
        other.stop()  # stopping twice is a no-op
        assert not services.postgres.running() and not services.redis.running()
        assert not redis_ping(redis_port)
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", pg_port), timeout=1).close()
    finally:
        services.remove()
    assert not services.postgres.cluster_dir.exists() or services.postgres.cluster_dir.is_relative_to(tmp_path)


class TestCeleryStack:
    """The product on the Celery stack: both workers serve, the run succeeds, the pool still caps the copies."""

    def test_both_workers_answer(self, stack: Stack) -> None:
        assert stack.services is not None
        nodes = ping_workers(stack.services.redis.url())
        assert sorted(node.split("@", 1)[0] for node in nodes) == sorted(WORKERS), nodes
        env = stack.airflow.env()
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
        assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://")
        health = httpx.get(f"{stack.airflow.base_url}/api/v2/monitor/health", timeout=10).json()
        assert {health[k]["status"] for k in ("metadatabase", "scheduler", "triggerer", "dag_processor")} == {"healthy"}

    def test_run_succeeds_on_both_workers_and_the_pool_caps_copies(self, stack: Stack) -> None:
        run_id = stack.client.trigger(DAG_ID, conf=RUN_CONF)
        reset_stats_when_planning(stack, run_id)
        run = follow_run(stack, run_id, timeout=600)
        assert run["state"] == "success", run

        assert_every_pair_distributed_once(stack.azure.state(), run_version(run))
        tis = stack.client.task_instances(DAG_ID, run_id)
        hosts = {ti["hostname"] for ti in tis if ti["state"] == "success"}
        assert hosts == set(WORKERS), f"task hostnames: {Counter(ti['hostname'] for ti in tis)}"
        copies = stack.azure.stats()["copies"]
        lab_copies = [t for t in copies["transfers"] if t["container"] == "uploads"]
        assert len(lab_copies) == len(EXPECTED_PAIRS), f"one upload copy per pair: {copies}"
        assert 1 <= copies["max_pending"] <= POOL_SLOTS, copies["max_pending"]


def _descendants(pid: int) -> set[int]:
    """Every process below ``pid`` (by /proc parent links), including ones in other process groups."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry.name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


@pytest.mark.timeout(1200)  # its own stack, a 30 s heartbeat timeout and a 1 min retry delay
def test_losing_a_worker_retries_its_tasks_on_the_other(tmp_path: Path) -> None:
    extra_env = {
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "30",
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
        # A task the dead worker had taken but not started stays queued this long before being sent again.
        "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "120",
    }
    orphans: set[int] = set()
    with celery_stack(tmp_path, emulator_config={"copy_seconds": 15, "lro_seconds": 1}, extra_env=extra_env) as stack:
        try:
            run_id = stack.client.trigger(DAG_ID, conf=RUN_CONF)
            victim_tis: list[dict[str, Any]] = []

            def distribute_running() -> bool:
                nonlocal victim_tis
                running = [
                    ti
                    for ti in stack.client.task_instances(DAG_ID, run_id)
                    if ti["task_id"] == "distribute" and ti["state"] == "running" and ti["hostname"] in WORKERS
                ]
                victim_tis = running
                return bool(running)

            wait_until(distribute_running, timeout=420, interval=0.2, what="a distribute task running on a worker")
            victim = victim_tis[0]["hostname"]
            survivor = next(w for w in WORKERS if w != victim)
            worker = stack.airflow.children[worker_process(victim)]
            orphans = _descendants(worker.pid)
            os.killpg(worker.pid, signal.SIGKILL)
            worker.popen.wait(10)
            killed = {ti["map_index"]: ti["try_number"] for ti in victim_tis if ti["hostname"] == victim}

            run = follow_run(stack, run_id, timeout=900)
            assert run["state"] == "success", run
            assert not worker.alive()

            tis = {
                ti["map_index"]: ti
                for ti in stack.client.task_instances(DAG_ID, run_id)
                if ti["task_id"] == "distribute"
            }
            for map_index, try_number in killed.items():
                ti = tis[map_index]
                assert ti["state"] == "success", ti
                assert ti["try_number"] > try_number, f"distribute[{map_index}] was not retried: {ti}"
                assert ti["hostname"] == survivor, f"distribute[{map_index}] retried on {ti['hostname']}"
            state = stack.azure.state()
            assert_every_pair_distributed_once(state, run_version(run))
        finally:
            for pid in orphans:  # task processes live in their own groups and outlive their worker
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
