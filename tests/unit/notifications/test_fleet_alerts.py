"""Labs that become stale or behind are told once, in one message, from the fleet model; recovered ones reset."""

from __future__ import annotations

import html
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from image_factory.fleet.model import build_fleet
from image_factory.fleet.snapshot import FLEET_XCOM_KEY
from image_factory.notifications import fleet_alerts
from image_factory.notifications.fleet_alerts import TOLD_VARIABLE, alerts_of, newly_told, notify_labs
from image_factory.notifications.messages import LabAlert
from image_factory.run_context import RunContext, RunParams
from tests.smtp_server import Inbox, body_text, smtp_server

CONFIG = Path(__file__).resolve().parents[3] / "Configuration"
DC = "Win2016/Datacenter.json"
UB = "Ubuntu/Ubuntu2204.json"
NOW = datetime(2026, 12, 10, 8, 0, tzinfo=UTC)


def held(version: str) -> list[dict[str, Any]]:
    return [{"version": version, "state": "Succeeded", "created": None}]


def snapshot(labs: list[dict[str, Any]], freshness_days: int | None = 60) -> dict[str, Any]:
    return {
        "schema": 1, "run_id": "r", "day": "2026-12-10", "dry_run": False, "taken_at": "2026-12-10T03:00:00+00:00",
        "freshness_days": freshness_days, "golden_images": [DC, UB],
        "all_labs": [{"name": "DevLab", "image_paths": ["Win2016"]}, {"name": "QALab", "image_paths": ["Ubuntu"]},
                     {"name": "TestLab", "image_paths": ["Ubuntu"]}],
        "labs": labs,
        "catalogue": {DC: [{"version": "2026-12-09"}, {"version": "2026-11-01"}], UB: [{"version": "2026-10-01"}]},
        "pairs": [], "problems": {},
    }  # fmt: skip


FLEET = snapshot(
    [
        {"name": "DevLab", "status": "ok", "message": "", "held": {DC: held("2026-11-01")}},
        {"name": "QALab", "status": "ok", "message": "", "held": {UB: held("2026-10-01")}},
    ]
)


def test_alerts_come_from_the_fleet_model_for_the_labs_read() -> None:
    alerts = alerts_of(build_fleet([FLEET], now=NOW))
    assert [(a.lab, a.state) for a in alerts] == [("QALab", "stale"), ("DevLab", "behind")]
    assert alerts[0].detail == "Ubuntu/Ubuntu2204.json: stale (2026-10-01 is 70 days old (FreshnessDays 60))"
    assert alerts[1].detail.startswith("Win2016/Datacenter.json: behind")


def test_told_once_then_again_only_after_recovering() -> None:
    behind = [LabAlert("DevLab", "behind")]
    new, told = newly_told({}, behind, ["DevLab"], "r1")
    assert (new, told) == (["devlab:behind"], {"devlab:behind": "r1"})
    new, told = newly_told(told, behind, ["DevLab"], "r2")
    assert (new, told) == ([], {"devlab:behind": "r1"})
    # a run of another lab only keeps what it knows of DevLab
    new, told = newly_told(told, [LabAlert("QALab", "stale")], ["QALab"], "r3")
    assert new == ["qalab:stale"] and set(told) == {"devlab:behind", "qalab:stale"}
    new, told = newly_told(told, [], ["DevLab", "QALab"], "r4")
    assert (new, told) == ([], {})


class FakeTi:
    def __init__(self, document: dict[str, Any] | None) -> None:
        self.document = document

    def xcom_pull(self, task_ids: Any = None, key: str = "return_value", **_: Any) -> Any:
        assert (task_ids, key) == ("verify", FLEET_XCOM_KEY)
        return self.document

    def xcom_push(self, key: str, value: Any) -> None:
        raise AssertionError("nothing is pushed")


@pytest.fixture
def variables(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    store: dict[str, Any] = {}

    class Variable:
        @staticmethod
        def get(key: str, default: Any = None, deserialize_json: bool = False) -> Any:
            return json.loads(store[key]) if key in store else default

        @staticmethod
        def set(key: str, value: Any, serialize_json: bool = False) -> None:
            store[key] = json.dumps(value)

    monkeypatch.setattr("airflow.sdk.Variable", Variable)
    return store


@pytest.fixture
def configured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, Inbox]]:
    folder = tmp_path / "Configuration"
    import shutil

    shutil.copytree(CONFIG, folder)
    factory = json.loads((folder / "factory.json").read_text(encoding="utf-8-sig"))
    factory["Notifications"] = {"Arguments": {"to": "labs@example.com", "smtp_conn_id": "factory_smtp"}}
    (folder / "factory.json").write_text(json.dumps(factory), encoding="utf-8")
    with smtp_server() as inbox:
        monkeypatch.setenv("AIRFLOW_CONN_FACTORY_SMTP", inbox.connection_json())
        yield folder, inbox


def test_one_mail_when_labs_become_stale_or_behind_and_none_the_next_night(
    configured: tuple[Path, Inbox], variables: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    folder, inbox = configured
    monkeypatch.setattr(fleet_alerts, "build_fleet", lambda snaps: build_fleet(snaps, now=NOW))
    run = RunContext(RunParams(), day="2026-12-10", run_id="r1", folder=folder, ti=FakeTi(FLEET))
    told = notify_labs(run, {})
    assert told["new"] == ["devlab:behind", "qalab:stale"]
    [(recipients, message)] = inbox.wait_for(1)
    assert recipients == ["labs@example.com"]
    assert message["Subject"] == "Image Factory: 2 lab(s) stale or behind: DevLab, QALab"
    body = html.unescape(body_text(message))
    assert "QALab (new): Ubuntu/Ubuntu2204.json: stale" in body and "DevLab (new): Win2016" in body
    assert json.loads(variables[TOLD_VARIABLE]) == {"devlab:behind": "r1", "qalab:stale": "r1"}

    again = RunContext(RunParams(), day="2026-12-11", run_id="r2", folder=folder, ti=FakeTi(FLEET))
    assert notify_labs(again, {})["new"] == []
    assert len(inbox.messages) == 1


def test_a_dry_run_or_no_snapshot_tells_nobody(configured: tuple[Path, Inbox], variables: dict[str, Any]) -> None:
    folder, inbox = configured
    notify_labs(RunContext(RunParams(dry_run=True), day="d", folder=folder, ti=FakeTi(FLEET)), {})
    notify_labs(RunContext(RunParams(), day="d", folder=folder, ti=FakeTi(None)), {})
    assert inbox.messages == [] and variables == {}
