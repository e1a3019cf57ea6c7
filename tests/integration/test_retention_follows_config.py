"""Retention follows the configuration, run with dag.test() on a local Azure of its own (the demo world).

Night 1 distributes everything. Before night 2 the golden image file ``Win2016/SQLExpress.json`` is deleted (and
QALab's entry naming it, which validation would refuse): DevLab still subscribes to its folder ``Win2016``, and
night 2 must leave no version of it in the catalogue or any lab. Before night 3 TestLab stops subscribing to
``Win2016/Datacenter.json``: night 3 deletes TestLab's Datacenter images and keeps DevLab's. The tests run in
file order, each night on what the one before left.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from image_factory import naming
from image_factory.models import MANAGED_BY_TAG
from tests.integration.conftest import REPO, WORLD, LocalAzure, run_dag, running_local_azure

# Several nights in a row (minutes each): with the weeks test in `make weeks`, not in `make test`.
pytestmark = [pytest.mark.emulator, pytest.mark.airflow, pytest.mark.weeks]

FAST = {"copy_poll_seconds": 1}
NIGHTS = ("2025-05-01", "2025-05-02", "2025-05-03")
SQL, DC, UB, VS = (
    "Win2016/SQLExpress.json",
    "Win2016/Datacenter.json",
    "Ubuntu/Ubuntu2204.json",
    "Win2012R2/VS2017.json",
)
CONTAINER = "imagefactoryvhds"


@pytest.fixture(scope="module")
def azure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalAzure]:
    with running_local_azure(REPO / WORLD, tmp_path_factory.mktemp("follows-config-azure")) as local:
        yield local


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("follows-config") / "Configuration"
    shutil.copytree(REPO / "Configuration", folder)
    return folder


@pytest.fixture(scope="module")
def env(azure: LocalAzure, airflow_home: dict[str, str], config: Path) -> dict[str, str]:
    return {
        **airflow_home,
        **azure.connection_env(),
        "IMAGE_FACTORY_CONFIG_DIR": str(config),
        "IMAGE_FACTORY_REPORT_DIR": str(config.parent / "reports"),
    }


#: The factory VMs whose golden images are rebuilt every night, so that each night captures a new version of each.
REBUILT_NIGHTLY = ("vm-vs2017", "vm-datacenter", "vm-sqlexpress", "vm-ubuntu")


def night(env: dict[str, str], index: int, azure: LocalAzure | None = None) -> dict[str, Any]:
    if azure is not None:
        # The factory captures only what changed: an administrator's nightly rebuild is what makes a new version.
        for vm in REBUILT_NIGHTLY:
            azure.control.post("/vms/cycle", json={"lab": "ImageFactory", "vm": vm}).raise_for_status()
    result = run_dag(env, FAST, f"{NIGHTS[index]}T02:00:00")
    assert result["state"] == "success", result["log"]
    return result


def images(azure: LocalAzure) -> set[tuple[str, str, str]]:
    """(lab, ImagePath, version) of every factory-made custom image, the factory lab's included."""
    return {
        (lab["name"], image["tags"]["ImagePath"], image["tags"]["ImageFactory.Version"])
        for lab in azure.state()["labs"]
        for image in lab["images"]
        if image["tags"].get(MANAGED_BY_TAG)
    }


def catalogue(azure: LocalAzure) -> set[tuple[str, str]]:
    """(ImagePath, version) of every night's version that has a sidecar or a VHD in the factory container."""
    names = {b["name"] for b in azure.state()["blobs"]["factorystore"].get(CONTAINER, [])}
    return {
        (path, version)
        for path in (SQL, DC, UB, VS)
        for version in NIGHTS
        if {f"{naming.image_name(path, version)}{ext}" for ext in (".json", ".vhd")} & names
    }


def edit_labs(config: Path, lab: str, paths: list[str]) -> None:
    file = config / "labs.json"
    doc = json.loads(file.read_text(encoding="utf-8-sig"))
    next(entry for entry in doc["Labs"] if entry["LabName"] == lab)["ImagePaths"] = paths
    file.write_text(json.dumps(doc, indent=2), encoding="utf-8")


def retire_report(config: Path, version: str) -> dict[str, Any]:
    (found,) = (config.parent / "reports").glob(f"{version}__*.retire.json")
    doc: dict[str, Any] = json.loads(found.read_text(encoding="utf-8"))
    return doc


def test_night_one_distributes_every_subscribed_path(azure: LocalAzure, env: dict[str, str]) -> None:
    night(env, 0)
    d1 = NIGHTS[0]
    assert {(lab, p) for lab, p, v in images(azure) if v == d1} == {
        ("DevLab", DC),
        ("DevLab", SQL),
        ("DevLab", UB),
        ("TestLab", VS),
        ("TestLab", DC),
        ("QALab", SQL),
        ("QALab", UB),
    }


def test_a_deleted_golden_image_file_leaves_no_version_in_the_catalogue_or_any_lab(
    azure: LocalAzure, env: dict[str, str], config: Path
) -> None:
    assert (SQL, NIGHTS[0]) in catalogue(azure)
    (config / "GoldenImages" / SQL).unlink()
    edit_labs(config, "QALab", [UB])  # its file entry would no longer validate; DevLab keeps the folder Win2016
    night(env, 1, azure)
    assert not {i for i in images(azure) if i[1] == SQL}, "a version of the deleted golden image is left in a lab"
    assert not {c for c in catalogue(azure) if c[0] == SQL}, "the catalogue still holds it"
    d1, d2 = NIGHTS[:2]
    assert {(lab, v) for lab, p, v in images(azure) if p == DC} == {
        (lab, v) for lab in ("DevLab", "TestLab") for v in (d1, d2)
    }
    report = retire_report(config, d2)
    reasons = {d["where"]: d["reason"] for d in report["deletions"] if d["image_path"] == SQL}
    assert set(reasons) == {"(factory storage)", "DevLab", "QALab"}
    assert all("no longer exists" in r for r in reasons.values())


def test_a_lab_that_unsubscribes_a_path_loses_it_and_the_others_keep_it(
    azure: LocalAzure, env: dict[str, str], config: Path
) -> None:
    edit_labs(config, "TestLab", ["Win2012R2"])  # it drops Win2016/Datacenter.json; DevLab still has Win2016
    night(env, 2, azure)
    held = images(azure)
    assert not {i for i in held if i[0] == "TestLab" and i[1] == DC}, "TestLab kept the path it left"
    d2, d3 = NIGHTS[1:]
    assert {v for lab, p, v in held if (lab, p) == ("DevLab", DC)} == {d2, d3}
    assert {v for lab, p, v in held if (lab, p) == ("TestLab", VS)} == {d2, d3}
    assert {v for p, v in catalogue(azure) if p == DC} == {d2, d3}
    reasons = {
        d["reason"] for d in retire_report(config, d3)["deletions"] if d["where"] == "TestLab" and d["image_path"] == DC
    }
    assert reasons == {f"TestLab no longer subscribes to {DC}"}
