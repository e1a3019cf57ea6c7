"""A night where one lab fails, run with dag.test() against the local Azure: who is told, what is announced.

A 403 on QALab's upload URL fails its pairs. People are told twice through the SmtpNotifier (a real aiosmtpd
server started here, read back): the failed run (the DAG's ``on_failure_callback``) and QALab behind (from the
fleet model on verify's snapshot). Every ImagePath a lab received gets an asset event through the factory's alias,
which queues the (unpaused) example consumer DAG for the scheduler.
"""

from __future__ import annotations

import html
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.conftest import REPO, WORLD, LocalAzure, running_local_azure
from tests.smtp_server import Inbox, body_text, smtp_server

pytestmark = [pytest.mark.emulator, pytest.mark.airflow]

CONSUMER = "image_factory_consumer_example"
#: Run the DAG with dag.test(), the example consumer unpaused first; print the run and what the DB then holds.
SCRIPT = """
import json, sys
from datetime import datetime, timezone
sys.path[:0] = ["plugins"]
from sqlalchemy import select
from airflow.dag_processing.dagbag import DagBag
from airflow.models.asset import AssetDagRunQueue, AssetEvent, AssetModel
from airflow.models.dag import DagModel
from airflow.utils.session import create_session
bag = DagBag(dag_folder="dags")
assert not bag.import_errors, bag.import_errors
dag = bag.dags["image_factory"]
bag.dags["__CONSUMER__"].test()  # registers the consumer (and its schedule on the alias) in the DB
with create_session() as session:
    session.get(DagModel, "__CONSUMER__").is_paused = False
run = dag.test(run_conf=json.loads(sys.argv[1]), logical_date=datetime(2025, 3, 1, 2, tzinfo=timezone.utc))
states = {}
for ti in run.get_task_instances():
    states.setdefault(ti.task_id, []).append(str(ti.state))
with create_session() as session:
    rows = session.execute(
        select(AssetEvent, AssetModel).join(AssetModel, AssetEvent.asset_id == AssetModel.id)
    ).all()
    events = [
        {"asset": a.name, "uri": a.uri, "extra": e.extra, "aliases": [x.name for x in e.source_aliases]}
        for e, a in rows
        if e.source_dag_id == "image_factory"
    ]
    queued = [q.target_dag_id for q in session.scalars(select(AssetDagRunQueue)).all()]
print("RESULT " + json.dumps({"state": str(run.state), "tasks": states, "events": events, "queued": queued}))
""".replace("__CONSUMER__", CONSUMER)


@pytest.fixture(scope="module")
def azure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalAzure]:
    with running_local_azure(REPO / WORLD, tmp_path_factory.mktemp("notify-state")) as local:
        yield local


@pytest.fixture(scope="module")
def inbox() -> Iterator[Inbox]:
    with smtp_server() as server:
        yield server


@pytest.fixture(scope="module")
def night(
    azure: LocalAzure, airflow_home: dict[str, str], inbox: Inbox, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("notify-config") / "Configuration"
    shutil.copytree(REPO / "Configuration", folder)
    factory = json.loads((folder / "factory.json").read_text(encoding="utf-8-sig"))
    factory["Notifications"] = {"Arguments": {"to": ["labs@example.com"], "smtp_conn_id": "factory_smtp"}}
    (folder / "factory.json").write_text(json.dumps(factory), encoding="utf-8")
    azure.control.post(
        "/faults",
        json=[{"service": "arm", "kind": "status", "status": 403, "operation": "Labs_GenerateUploadUri",
               "path": "*/labs/qalab/*", "message": "Test: the factory may not upload into QALab."}],
    ).raise_for_status()  # fmt: skip
    env = {
        **airflow_home,
        **azure.connection_env(),
        "AIRFLOW_CONN_FACTORY_SMTP": inbox.connection_json(),
        "IMAGE_FACTORY_CONFIG_DIR": str(folder),
    }
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, json.dumps({"copy_poll_seconds": 1})],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            result: dict[str, Any] = json.loads(line.removeprefix("RESULT "))
            result["log"] = done.stdout[-20000:] + done.stderr[-20000:]
            return result
    raise AssertionError(f"no result (rc={done.returncode}):\n{done.stdout[-8000:]}\n{done.stderr[-8000:]}")


def _mail(inbox: Inbox, subject_part: str) -> str:
    found = [m for _, m in inbox.messages if subject_part in str(m["Subject"])]
    assert len(found) == 1, [str(m["Subject"]) for _, m in inbox.messages]
    return html.unescape(body_text(found[0]))


def test_the_failed_run_is_mailed_once_naming_qalab(night: dict[str, Any], inbox: Inbox) -> None:
    assert night["state"] == "failed", night["log"]
    assert night["tasks"]["outcome"] == ["failed"]
    said = [line for line in night["log"].splitlines() if "callback" in line.lower() or "notif" in line.lower()]
    subjects = [str(m["Subject"]) for _, m in inbox.messages]
    try:
        inbox.wait_for(2)
    except AssertionError as exc:
        raise AssertionError(f"{exc}: {subjects}\n" + "\n".join(said[-60:])) from exc
    # dag.test() runs the callback after its in-process task supervisor is gone: the callback cannot read what
    # outcome handed over, so the message says where to look instead (the e2e test checks the names, as the
    # dag-processor runs it).
    body = _mail(inbox, "run manual__")
    assert "failed" in body and "Grid view" in body


def test_qalab_behind_is_mailed_once(night: dict[str, Any], inbox: Inbox) -> None:
    assert night["tasks"]["notify_labs"] == ["success"], night["log"]
    inbox.wait_for(2)
    body = _mail(inbox, "stale or behind: QALab")
    assert "QALab (new):" in body and "DevLab" not in body.split("What to do:")[0]
    assert len(inbox.messages) == 2


def test_each_image_path_a_lab_received_has_an_asset_event(night: dict[str, Any]) -> None:
    events = {e["asset"]: e for e in night["events"]}
    assert set(events) == {
        "image_factory/Win2012R2/VS2017.json",
        "image_factory/Win2016/Datacenter.json",
        "image_factory/Win2016/SQLExpress.json",
        "image_factory/Ubuntu/Ubuntu2204.json",
    }, night["log"]
    ubuntu = events["image_factory/Ubuntu/Ubuntu2204.json"]["extra"]
    assert ubuntu["version"] == "2025-03-01"
    assert ubuntu["labs_done"] == ["DevLab"] and ubuntu["labs_failed"] == ["QALab"]
    assert ubuntu["size_bytes"] > 0 and len(ubuntu["footer_sha256"]) == 64
    assert events["image_factory/Win2016/Datacenter.json"]["extra"]["labs_done"] == ["DevLab", "TestLab"]
    assert events["image_factory/Ubuntu/Ubuntu2204.json"]["uri"] == "imagefactory://catalogue/Ubuntu/Ubuntu2204.json"
    assert all(e["aliases"] == ["image_factory_images"] for e in events.values())


def test_the_events_queue_the_consumer_dag(night: dict[str, Any]) -> None:
    assert CONSUMER in night["queued"], night["log"]
