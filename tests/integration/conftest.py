"""Fixtures for integration tests: the local Azure (emulator subprocess) and a throwaway Airflow home."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from image_factory.hooks.devtestlabs import DevTestLabsHook
from image_factory.hooks.uploads import delete_upload as delete_by_token
from stack import localazure

REPO = Path(__file__).resolve().parents[2]
FACTORY_SUBSCRIPTION = "11111111-1111-4111-8111-111111111111"
WORLD = "emulator/worlds/demo.json"


class LocalAzure:
    """A running emulator: its ready line, and a client for its control API."""

    def __init__(self, info: dict[str, Any]) -> None:
        self.info = info
        self.control = httpx.Client(base_url=info["control_endpoint"], verify=info["ca_bundle"], timeout=30)

    def configure(self, **settings: Any) -> None:
        self.control.post("/config", json=settings).raise_for_status()

    def stats(self) -> dict[str, Any]:
        return dict(self.control.get("/stats").json())

    def reset_stats(self) -> None:
        self.control.post("/reset-stats").raise_for_status()

    def state(self) -> dict[str, Any]:
        return dict(self.control.get("/state").json())

    def connection_env(self, principal: str | None = None) -> dict[str, str]:
        """Return ``AIRFLOW_CONN_*`` variables pointing the factory's connections at the emulator."""
        info = self.info
        creds = info["principals"][principal] if principal else info
        factory = info["storage"]["factorystore"]
        arm = {
            "conn_type": "azure",
            "login": creds["client_id"],
            "password": creds["client_secret"],
            "extra": {
                "tenantId": info["tenant_id"],
                "subscriptionId": FACTORY_SUBSCRIPTION,
                "arm_endpoint": info["arm_endpoint"],
                "authority_host": info["authority_host"],
                "ca_bundle": info["ca_bundle"],
            },
        }
        storage = {
            "conn_type": "wasb",
            "extra": {
                "connection_string": (
                    f"DefaultEndpointsProtocol=https;AccountName=factorystore;AccountKey={factory['account_key']};"
                    f"BlobEndpoint={factory['blob_endpoint']};"
                ),
                "connection_verify": info["ca_bundle"],
            },
        }
        return {
            "AIRFLOW_CONN_IMAGE_FACTORY_ARM": json.dumps(arm),
            "AIRFLOW_CONN_IMAGE_FACTORY_STORAGE": json.dumps(storage),
        }


@contextlib.contextmanager
def running_local_azure(world: Path, state_dir: Path) -> Iterator[LocalAzure]:
    """Start ``python -m emulator serve`` on ``world`` with short timings; stop it (by pid) on exit."""
    state_dir.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [sys.executable, "-m", "emulator", "serve", "--world", str(world), "--state-dir", str(state_dir)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=(state_dir / "emulator.log").open("wb"),
        text=True,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line:
            pytest.fail(f"emulator exited without its ready line; see {state_dir / 'emulator.log'}")
        azure = LocalAzure(json.loads(line))
        azure.configure(lro_seconds=1, copy_seconds=1)
        yield azure
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture(scope="session")
def local_azure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalAzure]:
    """The local Azure on the demo world, for the whole session."""
    with running_local_azure(REPO / WORLD, tmp_path_factory.mktemp("emulator-state")) as azure:
        yield azure


@pytest.fixture(scope="session")
def airflow_home(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Create a throwaway AIRFLOW_HOME with a migrated SQLite DB; return the env to run Airflow in it."""
    home = tmp_path_factory.mktemp("airflow-home")
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "IMAGE_FACTORY_CONFIG_DIR": str(REPO / "Configuration"),
        "IMAGE_FACTORY_REPORT_DIR": str(home / "reports"),
        "PYTHONPATH": os.pathsep.join([str(REPO / "plugins"), str(REPO)]),
    }
    subprocess.run(
        [str(Path(sys.executable).with_name("airflow")), "db", "migrate"],
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )
    return env


DAG_TEST = """
import json, sys
from datetime import datetime, timezone
sys.path[:0] = ["plugins"]
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder="dags")
assert not bag.import_errors, bag.import_errors
dag = bag.dags["image_factory"]
conf = json.loads(sys.argv[1])
logical = datetime.fromisoformat(sys.argv[2]).replace(tzinfo=timezone.utc)
run = dag.test(run_conf=conf, logical_date=logical)
states = {}
for ti in run.get_task_instances():
    states.setdefault(ti.task_id, []).append(str(ti.state))
print("RESULT " + json.dumps({"state": str(run.state), "tasks": states}))
"""


def run_dag(
    env: dict[str, str], conf: dict[str, Any], logical_date: str, *, keep_in: Path | None = None
) -> dict[str, Any]:
    """Run ``dag.test`` in a subprocess; return the run state and the task states (its whole output also in the
    file ``keep_in``, when given, for a failure)."""
    done = subprocess.run(
        [sys.executable, "-c", DAG_TEST, json.dumps(conf), logical_date],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if keep_in is not None:
        keep_in.write_text(done.stdout + done.stderr, encoding="utf-8")
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            result: dict[str, Any] = json.loads(line[len("RESULT ") :])
            result["log"] = done.stdout[-20000:] + done.stderr[-20000:]  # for assertion messages
            result["output"] = done.stdout + done.stderr  # every line, to search
            return result
    raise AssertionError(
        f"dag.test gave no result (rc={done.returncode}):\n{done.stdout[-8000:]}\n{done.stderr[-8000:]}"
    )


@contextlib.contextmanager
def quick_local_azure(world: Path, tmp: Path) -> Iterator[localazure.LocalAzure]:
    """Start the local Azure (``stack.localazure``) on ``world`` with near-instant LROs and copies; stop it on exit."""
    local = localazure.start_local_azure(world=world, state_dir=tmp / "state", log_dir=tmp / "logs")
    try:
        local.post("/config", {"lro_seconds": 0.3, "copy_seconds": 0})
        yield local
    finally:
        local.stop()


@contextlib.contextmanager
def configuration_on(azure: localazure.LocalAzure, folder: Path, subscription_id: str) -> Iterator[Path]:
    """Copy Configuration/ to ``folder`` and point the connections, config and report folders at it and ``azure``."""
    shutil.copytree(REPO / "Configuration", folder)
    with pytest.MonkeyPatch.context() as mp:
        for key, value in azure.connections_env(subscription_id=subscription_id).items():
            mp.setenv(key, value)
        mp.setenv("IMAGE_FACTORY_CONFIG_DIR", str(folder))
        mp.setenv("IMAGE_FACTORY_REPORT_DIR", str(folder.parent / "reports"))
        yield folder


def delete_upload(blob: Any) -> None:
    """Delete a lab upload (a SAS ``BlobClient``) as the factory does: by token, since the SAS grants no delete."""
    hook = DevTestLabsHook()
    outcome = delete_by_token(blob.url, hook.clients.credential, lab="-", verify=hook.settings.connection_verify)
    assert outcome.status == "deleted", outcome
