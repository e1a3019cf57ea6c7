"""Capture only what changed, run with dag.test() against the local Azure (demo world, its own emulator).

Three runs on one day: the first captures every factory VM; the second, nothing having changed, captures and
copies nothing and writes nothing to ARM; after one VM was started and deallocated again (the emulator's
``/vms/cycle``), the third captures only that VM, as the day's second version, and distributes only it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import REPO, WORLD, LocalAzure, run_dag, running_local_azure

# Several nights in a row (minutes each): with the weeks test in `make weeks`, not in `make test`.
pytestmark = [pytest.mark.emulator, pytest.mark.airflow, pytest.mark.weeks]

FAST = {"copy_poll_seconds": 1}
DAY = "2025-06-01"
PATHS = ["Win2012R2/VS2017.json", "Win2016/Datacenter.json", "Win2016/SQLExpress.json", "Ubuntu/Ubuntu2204.json"]
UBUNTU = "Ubuntu/Ubuntu2204.json"


@pytest.fixture(scope="module")
def azure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalAzure]:
    with running_local_azure(REPO / WORLD, tmp_path_factory.mktemp("capture-changes-state")) as local:
        yield local


@pytest.fixture(scope="module")
def env(azure: LocalAzure, airflow_home: dict[str, str]) -> dict[str, str]:
    return {**airflow_home, **azure.connection_env()}


def _versions(azure: LocalAzure) -> dict[str, list[tuple[str, str]]]:
    """Map lab name → sorted (ImagePath, version) of its custom images."""
    found: dict[str, list[tuple[str, str]]] = {}
    for lab in azure.state().get("labs", []):
        tags = [image["tags"] for image in lab.get("images", [])]
        found[lab["name"]] = sorted((t["ImagePath"], t["ImageFactory.Version"]) for t in tags)
    return found


def _capture_summary(env: dict[str, str]) -> dict[str, str]:
    """Return the capture summary in verify's report of the latest run (dag.test names runs by the clock)."""
    reports = [p for p in Path(env["IMAGE_FACTORY_REPORT_DIR"]).glob(f"{DAY}__*.json") if ".retire." not in p.name]
    assert reports, "verify wrote no report"
    latest: dict[str, Any] = json.loads(max(reports, key=lambda p: p.stat().st_mtime_ns).read_text())
    return dict(latest["capture"])


def _run(env: dict[str, str], hour: str) -> dict[str, Any]:
    result = run_dag(env, FAST, f"{DAY}T{hour}:00:00")
    assert result["state"] == "success", result["log"]
    return result


def test_only_what_changed_is_captured_and_distributed(azure: LocalAzure, env: dict[str, str]) -> None:
    first = _run(env, "02")
    assert first["tasks"]["capture.capture_vm"].count("success") == 4
    assert first["tasks"]["distribute"].count("success") == 7
    assert _capture_summary(env) == {
        "Win2012R2/VS2017.json": f"captured {DAY} from vm-vs2017",
        "Win2016/Datacenter.json": f"captured {DAY} from vm-datacenter",
        "Win2016/SQLExpress.json": f"captured {DAY} from vm-sqlexpress",
        UBUNTU: f"captured {DAY} from vm-ubuntu",
    }
    after_first = _versions(azure)

    # Nothing changed: no capture, no copy, no ARM write (no disk access granted either); verify still passes.
    azure.reset_stats()
    quiet = _run(env, "03")
    stats = azure.stats()
    assert "capture.capture_vm" not in quiet["tasks"] or "success" not in quiet["tasks"]["capture.capture_vm"]
    assert stats["copies"]["started"] == 0
    assert stats["arm"]["writes"] == 0
    assert "Disks_GrantAccess" not in stats["arm"]["requests"]
    assert stats["arm"]["requests"].get("Disks_Get") == 4, "one disk read per capture candidate"
    assert _capture_summary(env) == {path: f"unchanged since {DAY}" for path in PATHS}
    assert _versions(azure) == after_first

    # Someone booted vm-ubuntu and deallocated it again: only it is captured, as the day's second version.
    azure.control.post("/vms/cycle", json={"lab": "ImageFactory", "vm": "vm-ubuntu"}).raise_for_status()
    azure.reset_stats()
    changed = _run(env, "04")
    stats = azure.stats()
    assert changed["tasks"]["capture.capture_vm"].count("success") == 1
    # DevLab and QALab subscribe to Ubuntu; TestLab does not.
    assert changed["tasks"]["distribute"].count("success") == 2
    assert stats["copies"]["started"] == 3, "one capture copy and two distribution copies"
    summary = _capture_summary(env)
    assert summary[UBUNTU] == f"captured {DAY}.2 from vm-ubuntu"
    assert {p: t for p, t in summary.items() if p != UBUNTU} == {
        p: f"unchanged since {DAY}" for p in PATHS if p != UBUNTU
    }
    now = _versions(azure)
    for lab in ("DevLab", "QALab"):
        assert sorted(set(now[lab]) - set(after_first[lab])) == [(UBUNTU, f"{DAY}.2")]
        assert set(after_first[lab]) <= set(now[lab])
    assert now["TestLab"] == after_first["TestLab"]
