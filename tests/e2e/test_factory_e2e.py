"""The product run as a user runs it: REST triggers, the pool, a no-op re-run, params, a backfill.

One stack (local Azure + api-server, scheduler, dag-processor, triggerer) serves the whole module; the tests run
in file order and each builds on the state the previous one left, as a lab administrator's week would.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from emulator.vhd import make_disk
from stack.__main__ import (
    DAG_ID,
    Stack,
    follow_run,
    nightly_logical_date,
    same_night,
    verify_report,
    wait_for_scheduled_run,
)
from stack.backfill import backfill_create_args
from stack.rest import TERMINAL_RUN_STATES
from tests.e2e.conftest import EXTRA_LAB, catalogue_container, lab_images, run_to_end, uploads_blobs

pytestmark = pytest.mark.e2e

# Older than any nightly slot the module can meet (the latest slot is today's or, before it fires, yesterday's).
OLD = datetime.now(UTC).date() - timedelta(days=2)
OLD_NAME = f"Ubuntu_Ubuntu2204-{OLD.strftime('%b')}-{OLD.day}-{OLD.year}"
TARGET_LABS = ("DevLab", "TestLab", "QALab")


def seed_powershell_version(stack: Stack) -> None:
    """Put an older Ubuntu version into the factory catalogue exactly as the PowerShell factory wrote it."""
    container = catalogue_container(stack)
    if not container.exists():
        container.create_container()
    disk = make_disk(1024 * 1024, seed=7)
    blob = container.get_blob_client(f"{OLD_NAME}.vhd")
    blob.create_page_blob(size=len(disk))
    for offset in range(0, len(disk), 4 * 1024 * 1024):
        chunk = disk[offset : offset + 4 * 1024 * 1024]
        blob.upload_page(chunk, offset=offset, length=len(chunk))
    sidecar = {
        "imageName": OLD_NAME,
        "imagePath": "Ubuntu\\Ubuntu2204.json",
        "description": "Ubuntu 22.04 LTS",
        "osType": "Linux",
        "vhdFileName": f"{OLD_NAME}.vhd",
        "timestamp": f"{OLD.isoformat()}T02:13:07.1234567+00:00",
    }
    container.upload_blob(f"{OLD_NAME}.json", json.dumps(sidecar).encode("utf-8-sig"), overwrite=True)


def test_nightly_run_on_unpause_distributes_every_pair_and_the_pool_caps_copies(stack: Stack) -> None:
    seed_powershell_version(stack)
    stack.azure.post("/reset-stats", {})
    stack.client.unpause(DAG_ID)
    nightly = wait_for_scheduled_run(stack)
    assert nightly, "unpausing a nightly DAG schedules its latest slot"
    run = follow_run(stack, nightly, timeout=600)
    assert run["state"] == "success", run
    state = stack.azure.state()
    labs = lab_images(state)
    expected_paths = {
        "DevLab": {"Win2016/Datacenter.json", "Win2016/SQLExpress.json", "Ubuntu/Ubuntu2204.json"},
        "TestLab": {"Win2012R2/VS2017.json", "Win2016/Datacenter.json"},
        "QALab": {"Win2016/SQLExpress.json", "Ubuntu/Ubuntu2204.json"},
    }
    for lab, paths in expected_paths.items():
        images = labs[lab].values()
        assert {img["tags"]["ImagePath"] for img in images} == paths, lab
        assert all(img["provisioning_state"] == "Succeeded" for img in images), lab
    # The older PowerShell-catalogued Ubuntu is retained (ImagesToSave 2), so the Ubuntu labs get it too.
    assert OLD_NAME in labs["DevLab"] and OLD_NAME in labs["QALab"]
    assert sum(len(v) for k, v in labs.items() if k in TARGET_LABS) == 9
    stats = stack.azure.stats()
    assert stats["copies"]["started"] == 4 + 9, "4 captures and 9 distributions"
    assert stats["copies"]["max_pending"] == 3, "the pool (MaxConcurrentJobs 3) must cap the copies in flight"
    assert uploads_blobs(state) == []
    assert stats["blob"]["bearer"]["allowed"].get("delete", 0) >= 9, "uploads are deleted by token, not by SAS"
    report = verify_report(stack, nightly)
    assert report is not None and report["problems"] == [] and report["uploads_left"] == []


def test_second_trigger_with_the_same_conf_does_no_work(stack: Stack) -> None:
    before = stack.azure.state()
    stack.azure.post("/reset-stats", {})
    run = run_to_end(stack, logical_date=same_night(stack))
    assert run["state"] == "success", run
    stats = stack.azure.stats()
    assert stats["copies"]["started"] == 0
    assert stats["arm"]["writes"] == 0 and stats["arm"]["actions"] == 0
    assert stack.azure.state()["labs"] == before["labs"]


def subscribe_staging_lab(config_dir: Path) -> None:
    labs_file = config_dir / "labs.json"
    labs = json.loads(labs_file.read_text())
    labs["Labs"].append(
        {
            "SubscriptionId": EXTRA_LAB["subscription"],
            "LabName": EXTRA_LAB["name"],
            "ResourceGroup": EXTRA_LAB["resource_group"],
            "ImagePaths": ["Win2016/Datacenter.json", "Ubuntu"],
        }
    )
    labs_file.write_text(json.dumps(labs, indent=2))


def test_dry_run_for_a_new_lab_reports_and_changes_nothing(stack: Stack, config_dir: Path) -> None:
    subscribe_staging_lab(config_dir)
    before = stack.azure.state()
    stack.azure.post("/reset-stats", {})
    run_id = stack.client.trigger(
        DAG_ID, conf={"dry_run": True, "labs": [EXTRA_LAB["name"]]}, logical_date=same_night(stack)
    )
    run = follow_run(stack, run_id, timeout=300)
    assert run["state"] == "success", run
    stats = stack.azure.stats()
    assert stats["arm"]["writes"] == 0 and stats["arm"]["actions"] == 0
    assert stats["copies"]["started"] == 0
    assert stack.azure.state()["labs"] == before["labs"]
    report = verify_report(stack, run_id)
    assert report is not None and report["dry_run"] is True
    assert len(report["would_distribute"]) == 3, report["would_distribute"]
    assert all(label.startswith(f"{EXTRA_LAB['name']} / ") for label in report["would_distribute"])


def test_params_limit_a_run_to_some_labs_and_paths(stack: Stack) -> None:
    before = lab_images(stack.azure.state())
    run = run_to_end(
        stack, conf={"labs": [EXTRA_LAB["name"]], "image_paths": ["Win2016"]}, logical_date=same_night(stack)
    )
    assert run["state"] == "success", run
    after = lab_images(stack.azure.state())
    assert [img["tags"]["ImagePath"] for img in after[EXTRA_LAB["name"]].values()] == ["Win2016/Datacenter.json"]
    for lab in TARGET_LABS:
        assert after[lab] == before[lab]


def test_backfill_after_adding_a_lab_brings_it_the_retained_versions(stack: Stack) -> None:
    before = lab_images(stack.azure.state())
    catalogue_before = stack.azure.state()["blobs"]["factorystore"]["imagefactoryvhds"]
    stack.azure.post("/reset-stats", {})

    to_date = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    stack.airflow.cli(
        *backfill_create_args(DAG_ID, OLD.isoformat(), to_date, reprocess_behavior="none", max_active_runs=1)
    )
    deadline = time.monotonic() + 600
    while True:
        runs = [r for r in stack.client.dag_runs(DAG_ID) if r.get("run_type") == "backfill"]
        if runs and all(r["state"] in TERMINAL_RUN_STATES for r in runs):
            break
        assert time.monotonic() < deadline, f"backfill did not finish: {runs}"
        time.sleep(3)
    assert all(r["state"] == "success" for r in runs), runs

    night = nightly_logical_date(stack)
    assert night is not None, "the nightly run of the first test is missing"
    nightly = night.date().isoformat()
    state = stack.azure.state()
    after = lab_images(state)
    staging = after[EXTRA_LAB["name"]]
    got = sorted((img["tags"]["ImagePath"], img["tags"]["ImageFactory.Version"]) for img in staging.values())
    assert got == sorted(
        [
            ("Win2016/Datacenter.json", nightly),
            ("Ubuntu/Ubuntu2204.json", nightly),
            ("Ubuntu/Ubuntu2204.json", OLD.isoformat()),
        ]
    ), "the new lab holds exactly the retained versions of what it subscribes to"
    for lab in TARGET_LABS:
        assert after[lab] == before[lab], f"{lab} must not change during the backfill"
    stats = stack.azure.stats()
    assert stats["arm"]["writes"] == 2, "one custom image write per image the new lab still lacked"
    assert stats["copies"]["started"] == 2, "nothing is captured again"
    assert state["blobs"]["factorystore"]["imagefactoryvhds"] == catalogue_before
    assert uploads_blobs(state) == []
