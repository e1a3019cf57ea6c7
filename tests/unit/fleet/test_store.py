"""The api-server's reads through Airflow's ORM, on Airflow's own tables (created, not migrated) in memory."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from airflow.api_fastapi.common.db.common import _get_session
from airflow.api_fastapi.core_api import security
from airflow.models import import_all_models
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, insert
from sqlalchemy.orm import Session
from sqlalchemy.pool import StaticPool

from image_factory.fleet import api
from image_factory.fleet.store import BATCH, OrmFleetStore
from tests.unit.fleet.test_api import FakeAuthManager

import_all_models()

from airflow.models.base import Base  # noqa: E402 - after every model is imported
from airflow.models.dagrun import DagRun  # noqa: E402
from airflow.models.taskinstance import TaskInstance  # noqa: E402
from airflow.models.xcom import XComModel  # noqa: E402

T0 = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
EVERYONE = [{"name": "A", "image_paths": []}, {"name": "B", "image_paths": []}]


@pytest.fixture
def session() -> Iterator[Session]:
    # One connection for every thread: the TestClient serves the app from another thread.
    engine = create_engine("sqlite://", connect_args={"check_same_thread": False}, poolclass=StaticPool)
    Base.metadata.create_all(engine)
    with Session(engine) as s:
        yield s


def xcom(session: Session, n: int, run_id: str, where: tuple[str, str], value: Any) -> None:
    """Store an XCom of task ``where[0]`` under key ``where[1]``, the n-th in time."""
    task_id, key = where
    row = {"dag_run_id": n, "task_id": task_id, "map_index": -1, "key": key, "dag_id": "image_factory",
           "run_id": run_id, "value": value, "timestamp": T0 + timedelta(minutes=n)}  # fmt: skip
    session.execute(insert(XComModel.__table__).values(**row))


def snapshot(run_id: str, *labs: str) -> dict[str, Any]:
    return {"schema": 1, "run_id": run_id, "all_labs": EVERYONE, "labs": [{"name": n} for n in labs]}


def test_snapshots_newest_first_until_every_lab_is_read(session: Session) -> None:
    xcom(session, 1, "night", ("verify", "fleet"), snapshot("night", "A", "B"))
    for n in range(2, 2 + BATCH + 1):  # more catch-ups of A than one batch holds
        xcom(session, n, f"catch-up-{n}", ("verify", "fleet"), snapshot(f"catch-up-{n}", "A"))
    xcom(session, 99, "other", ("verify", "return_value"), {"not": "a snapshot"})
    found = [s["run_id"] for s in OrmFleetStore(session).snapshots()]
    assert found[0] == "catch-up-7" and found[-1] == "night"
    assert len(found) == BATCH + 2


def test_a_serialized_value_is_decoded(session: Session) -> None:
    xcom(session, 1, "night", ("verify", "fleet"), '{"schema": 1, "run_id": "night", "labs": []}')
    assert OrmFleetStore(session).snapshots()[0]["run_id"] == "night"


def test_task_and_run_states_and_a_runs_plan(session: Session) -> None:
    run = {"id": 1, "dag_id": "image_factory", "run_id": "r", "run_type": "manual", "state": "success",
           "conf": {"labs": ["A"], "dry_run": True}, "data_interval_end": None, "logical_date": None}  # fmt: skip
    session.execute(insert(DagRun.__table__).values(**run))
    for task_id, index, state in [("distribute", 0, "success"), ("distribute", 1, "failed"), ("plan", -1, "success")]:
        ti = {"id": uuid.uuid4(), "dag_id": "image_factory", "run_id": "r", "task_id": task_id,
              "map_index": index, "pool": "p", "state": state}  # fmt: skip
        session.execute(insert(TaskInstance.__table__).values(**ti))
    xcom(session, 1, "r", ("plan", "plan"), {"pairs": [{"lab_name": "A", "image_name": "img-1"}]})
    store = OrmFleetStore(session)
    assert store.task_states(["r"]) == {("r", "distribute", 0): "success", ("r", "distribute", 1): "failed"}
    assert store.run_states(["r", "gone"]) == {"r": "success"}
    info = store.run("r")
    assert info is not None and (info.state, info.planned) == ("success", ["A / img-1"])
    assert info.conf == {"labs": ["A"], "dry_run": True}
    assert store.run("gone") is None
    assert store.task_states([]) == {} and store.run_states([]) == {}


def test_the_api_reads_the_fleet_through_airflows_session(session: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    """The app as mounted: Airflow's session dependency (here on the in-memory tables), no store override."""

    monkeypatch.setattr(security, "get_auth_manager", FakeAuthManager)
    monkeypatch.setattr(security.DagModel, "get_team_name", staticmethod(lambda dag_id: None))
    xcom(session, 1, "night", ("verify", "fleet"), snapshot("night", "A", "B"))
    app = api.create_app()
    app.dependency_overrides[_get_session] = lambda: session
    with TestClient(app) as client:
        answer = client.get("/api/fleet", headers={"Authorization": "Bearer viewer-token"})
    assert answer.status_code == 200, answer.text
    assert [lab["name"] for lab in answer.json()["labs"]] == ["A", "B"]
    assert answer.json()["run_id"] == "night"
