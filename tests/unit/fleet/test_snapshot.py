"""verify hands the fleet view its snapshot (before it may fail) and names behind and stale labs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from image_factory import tasks
from image_factory.exceptions import ImageFactoryError
from image_factory.fleet.model import build_fleet
from image_factory.fleet.snapshot import FLEET_XCOM_KEY
from tests.unit.test_tasks import DATACENTER, VERSION, FakeTi, _held, _run


def _planned(ti: FakeTi, **params: object) -> None:
    direct = tasks.plan_distribution(_run(ti, **params))
    ti.store[(tasks.PLAN_TASK_ID, tasks.PLAN_XCOM_KEY)] = ti.pushed[tasks.PLAN_XCOM_KEY]
    ti.store[(tasks.PLAN_TASK_ID, "return_value")] = direct


def test_a_failing_verify_still_hands_over_its_snapshot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAGE_FACTORY_REPORT_DIR", str(tmp_path))
    ti = FakeTi()
    _planned(ti)
    run = _run(ti)
    run.arm.images = {"TestLab": (_held("TestLab"),)}
    with pytest.raises(ImageFactoryError):
        tasks.verify(run)
    snapshot = ti.pushed[FLEET_XCOM_KEY]
    json.dumps(snapshot)  # JSON-ready, as XCom stores it
    assert [lab["name"] for lab in snapshot["all_labs"]] == ["DevLab", "TestLab", "QALab"]
    assert {p["lab"]: (p["task_id"], p["map_index"]) for p in snapshot["pairs"]} == {
        "DevLab": ("distribute", 0),
        "TestLab": ("distribute", 1),
    }
    assert snapshot["catalogue"][DATACENTER][0] == {
        "version": VERSION, "size_bytes": 1024, "captured": "", "source_vm": None, "source_disk": None,
        "by_powershell": False,
    }  # fmt: skip
    assert "DevLab" in snapshot["problems"] and "TestLab" not in snapshot["problems"]
    fleet = build_fleet([snapshot], task_states={("manual__1", "distribute", 0): "failed"})
    assert fleet.lab("TestLab").cell(DATACENTER).state == "current"  # type: ignore[union-attr]
    assert fleet.lab("DevLab").cell(DATACENTER).state == "failed"  # type: ignore[union-attr]
    assert fleet.lab("DevLab").last_run.outcome == "failed"  # type: ignore[union-attr]


def test_a_passing_verify_names_the_labs_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAGE_FACTORY_REPORT_DIR", str(tmp_path))
    ti = FakeTi()
    _planned(ti, dry_run=True)
    done = tasks.verify(_run(ti, dry_run=True))
    assert done["behind_labs"] == ["DevLab", "TestLab"]
    assert done["stale_labs"] == []
    assert ti.pushed[FLEET_XCOM_KEY]["dry_run"] is True
