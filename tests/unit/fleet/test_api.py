"""The plugin's API through FastAPI's TestClient, with Airflow's own security dependencies and a fake auth manager.

No token → 401, an invalid token → 403, a user without the right → 403, on every route (FastAPI's docs routes
are off); the fleet answers with links into the UI; the catch-up action forwards the user's own token.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import jwt
import pytest
from airflow.api_fastapi.core_api import security
from fastapi.testclient import TestClient

from image_factory.fleet import api
from image_factory.fleet.catch_up import CatchUpRefused
from image_factory.fleet.store import RunInfo
from tests.unit.fleet.test_model import DC, _held, lab, snapshot


@dataclass
class FakeUser:
    name: str
    rights: frozenset[tuple[str, str | None]]

    def get_id(self) -> str:
        return self.name

    def get_name(self) -> str:
        return self.name


USERS = {
    "admin-token": FakeUser("admin", frozenset({("GET", None), ("GET", "RUN"), ("POST", "RUN")})),
    "viewer-token": FakeUser("viewer", frozenset({("GET", None), ("GET", "RUN")})),
    "nobody-token": FakeUser("nobody", frozenset()),
}


class FakeAuthManager:
    """Airflow's auth manager as the security dependencies call it."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, str | None, str | None]] = []

    async def get_user_from_token(self, token: str) -> FakeUser:
        if token not in USERS:
            raise jwt.InvalidTokenError("bad token")
        return USERS[token]

    def is_authorized_dag(self, *, method: str, access_entity: Any = None, details: Any = None, user: Any) -> bool:
        entity = access_entity.value if access_entity is not None else None
        self.asked.append((method, entity, details.id if details else None))
        return (method, entity) in user.rights


@dataclass
class FakeStore:
    docs: list[dict[str, Any]] = field(default_factory=list)
    runs: dict[str, RunInfo] = field(default_factory=dict)
    states: dict[tuple[str, str, int], str] = field(default_factory=dict)

    def snapshots(self) -> list[dict[str, Any]]:
        return self.docs

    def task_states(self, run_ids: Iterable[str]) -> dict[tuple[str, str, int], str]:
        return self.states

    def run_states(self, run_ids: Iterable[str]) -> dict[str, str]:
        return {}

    def run(self, run_id: str) -> RunInfo | None:
        return self.runs.get(run_id)


@dataclass
class FakeAirflow:
    triggered: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    refuse: CatchUpRefused | None = None

    def trigger(self, token: str, conf: dict[str, Any]) -> dict[str, Any]:
        if self.refuse:
            raise self.refuse
        self.triggered.append((token, conf))
        return {"dag_run_id": f"manual__{len(self.triggered)}"}


PAIRS = [{"lab": "QALab", "image_path": DC, "version": "2026-12-09", "label": "QALab / Win2016_Datacenter-2026-12-09",
          "task_id": "distribute", "map_index": 0}]  # fmt: skip


@pytest.fixture
def auth(monkeypatch: pytest.MonkeyPatch) -> FakeAuthManager:
    manager = FakeAuthManager()
    monkeypatch.setattr(security, "get_auth_manager", lambda: manager)
    monkeypatch.setattr(security.DagModel, "get_team_name", staticmethod(lambda dag_id: None))
    return manager


@pytest.fixture
def world() -> tuple[FakeStore, FakeAirflow]:
    docs = [snapshot([lab("QALab", {DC: _held("2026-12-01")}), lab("DevLab", {})], run_id="night+1", pairs=PAIRS)]
    return FakeStore(docs=docs, states={("night+1", "distribute", 0): "failed"}), FakeAirflow()


@pytest.fixture
def client(auth: FakeAuthManager, world: tuple[FakeStore, FakeAirflow]) -> Iterator[TestClient]:
    app = api.create_app()
    app.dependency_overrides[api.get_store] = lambda: world[0]
    app.dependency_overrides[api.get_airflow_api] = lambda: world[1]
    with TestClient(app) as c:
        yield c


ROUTES = [
    ("GET", "/"),
    ("GET", "/api/fleet"),
    ("GET", "/api/runs/x"),
    ("POST", "/api/labs/QALab/catch-up"),
    ("GET", "/docs"),
    ("GET", "/openapi.json"),
]


def test_every_route_of_the_app_is_in_this_test() -> None:
    paths = {getattr(r, "path", None) for r in api.create_app().routes}
    assert paths == {"/", "/api/fleet", "/api/runs/{run_id}", "/api/labs/{lab}/catch-up"}


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_no_token_is_401_and_a_bad_one_403(client: TestClient, method: str, path: str) -> None:
    expected_open = path in ("/docs", "/openapi.json")
    anonymous = client.request(method, path, json={})
    assert anonymous.status_code == (404 if expected_open else 401), "FastAPI's docs routes are off"
    if not expected_open:
        bad = client.request(method, path, json={}, headers={"Authorization": "Bearer forged"})
        assert bad.status_code == 403
        cookie = client.request(method, path, json={}, cookies={"_token": "forged"})
        assert cookie.status_code == 403


@pytest.mark.parametrize(("method", "path"), ROUTES[:4])
def test_a_user_without_rights_on_the_dag_is_403(client: TestClient, method: str, path: str) -> None:
    refused = client.request(method, path, json={}, headers={"Authorization": "Bearer nobody-token"})
    assert refused.status_code == 403


def test_the_fleet_answers_with_links_to_the_runs_tasks(client: TestClient, auth: FakeAuthManager) -> None:
    answer = client.get("/api/fleet", headers={"Authorization": "Bearer viewer-token"})
    assert answer.status_code == 200
    doc = answer.json()
    assert ("GET", None, "image_factory") in auth.asked, "DAG read is what the view checks"
    qa = next(row for row in doc["labs"] if row["name"] == "QALab")
    assert qa["cells"][DC]["state"] == "failed", "its task failed and the lab is still behind"
    assert qa["last_run"]["outcome"] == "failed"
    assert qa["last_run"]["url"] == "/dags/image_factory/runs/night%2B1"
    assert qa["last_run"]["pairs"][0]["url"] == "/dags/image_factory/runs/night%2B1/tasks/distribute/mapped/0"
    assert "key" not in answer.text.lower() and "sig=" not in answer.text


def test_the_page_is_served_to_the_uis_cookie(client: TestClient) -> None:
    page = client.get("/", cookies={"_token": "viewer-token"})
    assert page.status_code == 200
    assert "Image Factory" in page.text and "/api/fleet" in page.text


def test_catch_up_is_a_dry_run_first_with_the_users_own_token(
    client: TestClient, world: tuple[FakeStore, FakeAirflow]
) -> None:
    store, airflow = world
    admin = {"Authorization": "Bearer admin-token"}
    viewer = client.post(
        "/api/labs/QALab/catch-up", json={"dry_run": True}, headers={"Authorization": "Bearer viewer-token"}
    )
    assert viewer.status_code == 403, "triggering needs the right to run the DAG"
    assert client.post("/api/labs/NoLab/catch-up", json={}, headers=admin).status_code == 404
    refused = client.post("/api/labs/QALab/catch-up", json={"dry_run": False}, headers=admin)
    assert refused.status_code == 409 and "start with a dry run" in refused.json()["detail"]

    started = client.post("/api/labs/qalab/catch-up", json={"dry_run": True}, headers=admin).json()
    assert started["run_id"] == "manual__1"
    assert airflow.triggered == [("admin-token", {"labs": ["QALab"], "dry_run": True, "capture": False})]

    store.runs["manual__1"] = RunInfo("manual__1", "running", {"labs": ["QALab"], "dry_run": True})
    body = {"dry_run": False, "dry_run_id": "manual__1"}
    early = client.post("/api/labs/QALab/catch-up", json=body, headers=admin)
    assert early.status_code == 409 and "running" in early.json()["detail"]
    store.runs["manual__1"] = RunInfo("manual__1", "success", {"labs": ["QALab"], "dry_run": True}, ["QALab / x"])
    assert client.get("/api/runs/manual__1", headers=admin).json()["planned"] == ["QALab / x"]
    other = client.post("/api/labs/DevLab/catch-up", json=body, headers=admin)
    assert other.status_code == 409 and "not a dry run of DevLab" in other.json()["detail"]
    real = client.post("/api/labs/QALab/catch-up", json=body, headers=admin)
    assert real.status_code == 200
    assert airflow.triggered[-1] == ("admin-token", {"labs": ["QALab"], "dry_run": False, "capture": False})


def test_airflows_refusal_is_passed_on(client: TestClient, world: tuple[FakeStore, FakeAirflow]) -> None:
    world[1].refuse = CatchUpRefused(403, "Forbidden")
    answer = client.post("/api/labs/QALab/catch-up", json={}, cookies={"_token": "admin-token"})
    assert (answer.status_code, answer.json()["detail"]) == (403, "Forbidden")


def test_no_snapshot_yet_is_an_empty_fleet(client: TestClient, world: tuple[FakeStore, FakeAirflow]) -> None:
    world[0].docs = []
    doc = client.get("/api/fleet", headers={"Authorization": "Bearer viewer-token"}).json()
    assert doc["labs"] == [] and doc["as_of"] == ""
