"""A build night with dag.test() on the local Azure's build world (an empty factory lab, no VM built by hand).

build → capture → distribute → clean → retire: the factory makes its VMs from the GoldenImages/ templates
(param ``build=on``; factory.json's ``Build.Enabled`` is off in the sample), captures them, distributes their
images, deletes the VMs once catalogued and leaves the factory lab empty. One template's artifact is made to fail
(the emulator's ``artifact_fail`` fault on ``windows-chocolatey`` in the VM built from ``Win2016/SQLExpress.json``,
named ``SQLExpres-<hash>``): its failure is reported with the artifact's status and message, its VM deleted, and
every other template's image still reaches the labs. Two more nights (``weeks``) build everything again: new disks,
a new version in every lab each night, and retention retires the first night's (``ImagesToSave`` is 2).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration import conftest as nights
from tests.integration.conftest import REPO, LocalAzure, running_local_azure

pytestmark = [pytest.mark.emulator, pytest.mark.airflow]

BUILD = {"build": "on", "copy_poll_seconds": 1}
SQLEXPRESS = "Win2016/SQLExpress.json"
BUILT = ["Ubuntu/Ubuntu2204.json", "Win2012R2/VS2017.json", "Win2016/Datacenter.json"]
#: Pairs of labs.json without SQLExpress (DevLab Win2016 → 2 of its 3, QALab → 1 of its 2, TestLab → 2).
PAIRS_WITHOUT_SQLEXPRESS = 5
CHOCOLATEY_FAILS = "choco install exited with code 1: package sql-server-management-studio not found"


@pytest.fixture(scope="module")
def azure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalAzure]:
    with running_local_azure(REPO / "emulator/worlds/build.json", tmp_path_factory.mktemp("build-state")) as local:
        yield local


@pytest.fixture(scope="module")
def env(azure: LocalAzure, airflow_home: dict[str, str]) -> dict[str, str]:
    return {**airflow_home, **azure.connection_env()}


def run_dag(env: dict[str, str], conf: dict[str, Any], logical_date: str) -> dict[str, Any]:
    """Run a night with the conftest's ``run_dag``, its whole output kept in a file for a failure."""
    kept = Path(env["IMAGE_FACTORY_REPORT_DIR"]).parent / f"night-{logical_date[:10]}.log"
    return {**nights.run_dag(env, conf, logical_date, keep_in=kept), "kept": str(kept)}


def _lab(azure: LocalAzure, name: str) -> dict[str, Any]:
    return next(lab for lab in azure.state()["labs"] if lab["name"] == name)


def _versions(azure: LocalAzure) -> dict[str, set[tuple[str, str]]]:
    return {
        lab["name"]: {(i["tags"]["ImagePath"], i["tags"]["ImageFactory.Version"]) for i in lab["images"]}
        for lab in azure.state()["labs"]
        if lab["name"] != "ImageFactory"
    }


def _report(env: dict[str, str], day: str) -> dict[str, Any]:
    reports = [p for p in Path(env["IMAGE_FACTORY_REPORT_DIR"]).glob(f"{day}__*.json") if ".retire." not in p.name]
    assert reports, "verify wrote no report"
    return dict(json.loads(max(reports, key=lambda p: p.stat().st_mtime_ns).read_text()))


def test_a_build_night_with_a_failing_artifact(azure: LocalAzure, env: dict[str, str]) -> None:
    day = "2026-03-01"
    assert _lab(azure, "ImageFactory")["vms"] == []
    azure.control.post(
        "/faults",
        json=[
            {
                "service": "arm",
                "kind": "artifact_fail",
                "artifact": "windows-chocolatey",
                "vm": "SQLExpres-*",
                "message": CHOCOLATEY_FAILS,
            }
        ],
    ).raise_for_status()
    try:
        result = run_dag(env, BUILD, f"{day}T02:00:00")
    finally:
        azure.control.delete("/faults").raise_for_status()
    tasks, log = result["tasks"], f"{result['tasks']}\nthe whole log: {result['kept']}"
    # The failed template fails the run; the others were built, captured and distributed.
    assert result["state"] == "failed", log
    assert sorted(tasks["build.build_vm"]) == ["failed", "success", "success", "success"], log
    assert tasks["capture.capture_vm"].count("success") == 3, log
    assert tasks["distribute"].count("success") == PAIRS_WITHOUT_SQLEXPRESS, log
    assert re.search(r"windows-chocolatey: Failed: .*package sql-server-management-studio not found", result["output"])
    assert "its VM was deleted" in result["output"]
    versions = _versions(azure)
    assert versions == {
        "DevLab": {(p, day) for p in ("Ubuntu/Ubuntu2204.json", "Win2016/Datacenter.json")},
        "TestLab": {(p, day) for p in ("Win2012R2/VS2017.json", "Win2016/Datacenter.json")},
        "QALab": {("Ubuntu/Ubuntu2204.json", day)},
    }
    report = _report(env, day)
    assert set(report["build"]) == {*BUILT, SQLEXPRESS}
    assert report["build"][SQLEXPRESS].startswith("build failed")
    assert all(report["build"][p].startswith("built as VM ") for p in BUILT)
    assert all(report["capture"][p].startswith(f"captured {day} from ") for p in BUILT)
    # The factory lab is empty again: the failed VM deleted, the built ones deleted once captured; no
    # deployment record is left.
    state = azure.state()
    assert _lab(azure, "ImageFactory")["vms"] == []
    assert [d for d in state.get("deployments", []) if d["resource_group"] == "rg-imagefactory"] == []
    # The admin password never reached the log.
    assert not re.search(r"password['\"]?\s*[:=]\s*['\"][^*'\"]", result["output"], re.IGNORECASE)


@pytest.mark.weeks
def test_later_build_nights_make_new_versions_that_retention_rotates_in(azure: LocalAzure, env: dict[str, str]) -> None:
    first = "2026-03-01"
    for day in ("2026-03-02", "2026-03-03"):
        result = run_dag(env, BUILD, f"{day}T02:00:00")
        assert result["state"] == "success", result["kept"]
        assert result["tasks"]["build.build_vm"].count("success") == 4, result["kept"]
        assert _lab(azure, "ImageFactory")["vms"] == []
    # ImagesToSave is 2: the first night's versions are retired everywhere, the last two nights' are held.
    versions = _versions(azure)
    assert ("Win2016/SQLExpress.json", "2026-03-03") in versions["QALab"]
    for lab, held in versions.items():
        assert {v for _, v in held} == {"2026-03-02", "2026-03-03"}, (lab, held)
        assert first not in {v for _, v in held}
