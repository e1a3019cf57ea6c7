"""The fleet model: each cell's state, version, age and distance behind; labs' last runs; snapshots merged."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from image_factory.fleet.model import behind_labs, build_fleet, catch_up_paths, stale_labs

DC = "Win2016/Datacenter.json"
UB = "Ubuntu/Ubuntu2204.json"
NOW = datetime(2026, 12, 10, 8, 0, tzinfo=UTC)


CATALOGUE = {
    DC: [
        {"version": "2026-12-09", "size_bytes": 128, "captured": "2026-12-09T02:10:00+00:00",
         "source_vm": "vm-dc", "source_disk": "d-1", "by_powershell": False},
        {"version": "2026-12-01", "size_bytes": 127, "captured": "", "source_vm": None,
         "source_disk": None, "by_powershell": True},
    ],
    UB: [{"version": "2026-11-20", "size_bytes": 64, "captured": "", "source_vm": "vm-ub",
          "source_disk": None, "by_powershell": False}],
}  # fmt: skip


def _held(*versions: str, state: str = "Succeeded") -> list[dict[str, Any]]:
    return [{"version": v, "state": state, "created": None} for v in versions]


def snapshot(
    labs: list[dict[str, Any]],
    *,
    run_id: str = "scheduled__2026-12-10",
    all_labs: list[dict[str, Any]] | None = None,
    freshness_days: int | None = None,
    pairs: list[dict[str, Any]] | None = None,
    problems: dict[str, list[str]] | None = None,
    dry_run: bool = False,
) -> dict[str, Any]:
    return {
        "schema": 1,
        "run_id": run_id,
        "day": "2026-12-10",
        "dry_run": dry_run,
        "taken_at": "2026-12-10T03:00:00+00:00",
        "freshness_days": freshness_days,
        "golden_images": [DC, UB],
        "all_labs": all_labs
        or [
            {"name": "DevLab", "image_paths": ["Win2016"]},
            {"name": "QALab", "image_paths": ["Win2016", "Ubuntu"]},
            {"name": "TestLab", "image_paths": ["Ubuntu/Ubuntu2204.json"]},
        ],
        "labs": labs,
        "catalogue": CATALOGUE,
        "pairs": pairs or [],
        "problems": problems or {},
    }


def lab(name: str, held: dict[str, list[dict[str, Any]]], status: str = "ok", message: str = "") -> dict[str, Any]:
    return {"name": name, "status": status, "message": message, "held": held}


def test_cells_are_current_behind_missing_and_not_subscribed() -> None:
    fleet = build_fleet(
        [
            snapshot(
                [
                    lab("DevLab", {DC: _held("2026-12-09", "2026-12-01")}),
                    lab("QALab", {DC: _held("2026-12-01")}),
                    lab("TestLab", {}),
                ]
            )
        ],
        now=NOW,
    )
    assert fleet.image_paths == (UB, DC)
    dev, qa, test = fleet.labs
    assert dev.cell(DC).state == "current"  # type: ignore[union-attr]
    assert (dev.cell(DC).version, dev.cell(DC).age_days) == ("2026-12-09", 1)  # type: ignore[union-attr]
    assert dev.cell(UB).state == "not_subscribed"  # type: ignore[union-attr]
    assert (qa.cell(DC).state, qa.cell(DC).behind) == ("behind", 1)  # type: ignore[union-attr]
    assert qa.cell(UB).state == "missing"  # type: ignore[union-attr]
    assert test.cell(UB).state == "missing"  # type: ignore[union-attr]
    assert [r.name for r in behind_labs(fleet)] == ["QALab", "TestLab"]
    assert stale_labs(fleet) == []
    assert catch_up_paths(qa) == [UB, DC]
    assert fleet.counts() == {"failed": 0, "missing": 2, "stale": 0, "behind": 1, "current": 1, "not_subscribed": 2}
    assert [v.version for v in fleet.catalogue[DC]] == ["2026-12-09", "2026-12-01"]
    assert fleet.catalogue[DC][0].source_vm == "vm-dc"


def test_freshness_days_mark_old_versions_stale_and_zero_means_no_target() -> None:
    labs = [lab("TestLab", {UB: _held("2026-11-20")})]
    fresh = build_fleet([snapshot(labs, freshness_days=14)], now=NOW)
    cell = fresh.lab("testlab").cell(UB)  # type: ignore[union-attr]
    assert (cell.state, cell.age_days) == ("stale", 20)  # type: ignore[union-attr]
    assert "FreshnessDays 14" in cell.detail  # type: ignore[union-attr]
    assert [r.name for r in stale_labs(fresh)] == ["TestLab"]
    assert build_fleet([snapshot(labs, freshness_days=0)], now=NOW).lab("TestLab").cell(UB).state == "current"  # type: ignore[union-attr]
    assert build_fleet([snapshot(labs, freshness_days=20)], now=NOW).lab("TestLab").cell(UB).state == "current"  # type: ignore[union-attr]


def test_a_failed_copy_and_an_unreadable_lab_are_failed() -> None:
    fleet = build_fleet(
        [
            snapshot(
                [
                    lab("DevLab", {DC: [*_held("2026-12-01"), *_held("2026-12-09", state="Failed")]}),
                    lab("QALab", {}, status="forbidden", message="access denied"),
                ]
            )
        ],
        now=NOW,
    )
    dev = fleet.lab("DevLab").cell(DC)  # type: ignore[union-attr]
    assert (dev.state, dev.version) == ("failed", "2026-12-01")  # type: ignore[union-attr]
    qa = fleet.lab("QALab")
    assert [c.state for c in qa.cells] == ["failed", "failed"]  # type: ignore[union-attr]
    assert "forbidden" in qa.cells[0].detail  # type: ignore[union-attr]
    assert fleet.lab("TestLab").status == "unknown", "a lab no verify read yet"  # type: ignore[union-attr]


def test_each_lab_comes_from_the_newest_snapshot_that_read_it() -> None:
    older = snapshot(
        [lab("DevLab", {DC: _held("2026-12-01")}), lab("QALab", {DC: _held("2026-12-01")})], run_id="night-1"
    )
    newer = snapshot([lab("DevLab", {DC: _held("2026-12-09")})], run_id="catch-up")
    fleet = build_fleet([newer, older], now=NOW)
    assert fleet.lab("DevLab").cell(DC).state == "current"  # type: ignore[union-attr]
    assert fleet.lab("DevLab").last_run.run_id == "catch-up"  # type: ignore[union-attr]
    assert fleet.lab("QALab").cell(DC).state == "behind"  # type: ignore[union-attr]
    assert fleet.lab("QALab").last_run.run_id == "night-1"  # type: ignore[union-attr]
    assert fleet.run_id == "catch-up"


def _pair(lab_name: str, path: str, version: str, index: int) -> dict[str, Any]:
    return {"lab": lab_name, "image_path": path, "version": version, "label": f"{lab_name} / x",
            "task_id": "distribute", "map_index": index}  # fmt: skip


@pytest.mark.parametrize(
    ("states", "outcome"),
    [
        ({0: "success", 1: "success"}, "succeeded"),
        ({0: "success", 1: "failed"}, "failed"),
        ({0: "success", 1: "deferred"}, "running"),
        ({}, "unknown"),
    ],
)
def test_a_labs_last_run_outcome_comes_from_its_pairs_tasks(states: dict[int, str], outcome: str) -> None:
    pairs = [_pair("QALab", DC, "2026-12-09", 0), _pair("QALab", UB, "2026-11-20", 1), _pair("DevLab", DC, "x", 2)]
    fleet = build_fleet(
        [snapshot([lab("QALab", {DC: _held("2026-12-09")})], run_id="r", pairs=pairs)],
        now=NOW,
        task_states={("r", "distribute", i): s for i, s in states.items()},
    )
    last = fleet.lab("QALab").last_run  # type: ignore[union-attr]
    assert last.outcome == outcome  # type: ignore[union-attr]
    assert [(p.task_id, p.map_index) for p in last.pairs] == [("distribute", 0), ("distribute", 1)]  # type: ignore[union-attr]
    ub = fleet.lab("QALab").cell(UB)  # type: ignore[union-attr]
    assert ub.state == ("failed" if outcome == "failed" else "missing")  # type: ignore[union-attr]


def test_a_lab_without_pairs_did_nothing_and_problems_or_a_dry_run_say_so() -> None:
    labs = [lab("DevLab", {DC: _held("2026-12-09")})]
    assert build_fleet([snapshot(labs)], now=NOW).lab("DevLab").last_run.outcome == "nothing_to_do"  # type: ignore[union-attr]
    failed = build_fleet([snapshot(labs, problems={"DevLab": ["DevLab: x is missing"]})], now=NOW)
    assert failed.lab("DevLab").last_run.outcome == "failed"  # type: ignore[union-attr]
    assert build_fleet([snapshot(labs, dry_run=True)], now=NOW).lab("DevLab").last_run.outcome == "dry_run"  # type: ignore[union-attr]


def test_no_snapshot_is_an_empty_fleet_and_to_dict_is_json_ready() -> None:
    assert build_fleet([]).labs == ()
    assert build_fleet([{"schema": 99}]).labs == ()
    doc = build_fleet([snapshot([lab("DevLab", {DC: _held("2026-12-09")})])], now=NOW).to_dict()
    assert doc["labs"][0]["cells"][DC] == {
        "state": "current", "version": "2026-12-09", "age_days": 1, "behind": 0, "detail": ""
    }  # fmt: skip
    assert doc["labs"][0]["worst"] == "current"
    assert doc["catalogue"][UB][0]["size_bytes"] == 64
