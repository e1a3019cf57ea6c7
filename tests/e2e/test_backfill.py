"""The README's "after adding a lab" on the default (PostgreSQL) stack: a nightly run, a lab added, a backfill.

The world (``emulator/worlds/weeks.json``) is the demo world plus ``NewLab``, which the copied labs.json does not
name until the test adds it. A backfill with ``reprocess_behavior: "none"`` then creates no run for the night that
already has one (what users hit); ``airflow backfill create … --reprocess-behavior completed`` re-runs that night as
a backfill, which captures nothing and brings NewLab every image its ImagePaths select, with no write elsewhere.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from stack.__main__ import DAG_ID, Stack, follow_run, wait_for_scheduled_run
from stack.backfill import BackfillOutcome, backfill_create_args, run_backfill, wait_for_backfill
from tests.e2e.conftest import copy_configuration, e2e_stack, lab_images

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
WEEKS_WORLD = REPO / "emulator" / "worlds" / "weeks.json"
NEW_LAB = {
    "SubscriptionId": "11111111-1111-4111-8111-111111111111",
    "LabName": "NewLab",
    "ResourceGroup": "rg-new",
    "ImagePaths": ["Win2016", "Ubuntu"],
}
#: The golden images NewLab's ImagePaths select in Configuration/GoldenImages.
NEW_LAB_PATHS = {"Win2016/Datacenter.json", "Win2016/SQLExpress.json", "Ubuntu/Ubuntu2204.json"}
OTHER_LABS = ("ImageFactory", "DevLab", "TestLab", "QALab")


@pytest.fixture(scope="module")
def config_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_configuration(tmp_path_factory, "backfill-config")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, config_dir: Path) -> Iterator[Stack]:
    with e2e_stack(tmp_path_factory.mktemp("backfill-stack"), WEEKS_WORLD, config_dir) as s:
        assert s.services is not None, "the default stack runs its metadata DB on PostgreSQL"
        yield s


def add_new_lab(config_dir: Path) -> None:
    labs_file = config_dir / "labs.json"
    labs = json.loads(labs_file.read_text())
    labs["Labs"].append(dict(NEW_LAB))
    labs_file.write_text(json.dumps(labs, indent=2))


def first_night(stack: Stack) -> dict[str, Any]:
    """Unpause: Airflow runs the latest nightly slot (a scheduled run with a logical date); return it finished."""
    stack.client.unpause(DAG_ID)
    nightly = wait_for_scheduled_run(stack)
    assert nightly, "unpausing a nightly DAG schedules its latest slot"
    run = follow_run(stack, nightly, timeout=600)
    assert run["state"] == "success", run
    return run


def night_range(run: dict[str, Any]) -> tuple[str, str]:
    """A backfill range holding exactly this run's nightly slot (slots are a day apart)."""
    night = datetime.fromisoformat(str(run["logical_date"]).replace("Z", "+00:00"))
    return (night - timedelta(hours=1)).isoformat(), (night + timedelta(hours=1)).isoformat()


def backfill_completed_by_cli(stack: Stack, start: str, end: str) -> BackfillOutcome:
    """The README's command, word for word, then its runs followed through the REST API."""
    known = {b["id"] for b in stack.client.backfills(DAG_ID)}
    stack.airflow.cli(*backfill_create_args(DAG_ID, start, end, reprocess_behavior="completed"))
    created = [b for b in stack.client.backfills(DAG_ID) if b["id"] not in known]
    assert len(created) == 1, created
    return wait_for_backfill(stack.client, int(created[0]["id"]), timeout=600)


def test_backfill_after_adding_a_lab_gives_it_every_image_and_writes_nowhere_else(
    stack: Stack, config_dir: Path
) -> None:
    night = first_night(stack)
    version = str(night["logical_date"])[:10]
    before = lab_images(stack.azure.state())
    assert before["NewLab"] == {}
    add_new_lab(config_dir)

    # The failure mode: "none" skips a night that already has a run, so the new lab gets nothing.
    start, end = night_range(night)
    stack.azure.post("/reset-stats", {})
    skipped = run_backfill(stack.client, DAG_ID, start, end, reprocess_behavior="none", timeout=300)
    assert skipped.runs == [], "reprocess_behavior none must not create a run for a night that has one"
    assert stack.client.dag_run(DAG_ID, night["dag_run_id"])["run_type"] == "scheduled"
    assert lab_images(stack.azure.state())["NewLab"] == {}
    assert stack.azure.stats()["arm"]["writes"] == 0

    # The documented path: reprocess the completed night as a backfill.
    state_before = stack.azure.state()
    stack.azure.post("/reset-stats", {})
    outcome = backfill_completed_by_cli(stack, start, end)
    assert [r["dag_run_id"] for r in outcome.runs] == [night["dag_run_id"]], "the night's run is taken over"
    assert outcome.runs[0]["run_type"] == "backfill"
    assert outcome.succeeded, outcome.runs

    state = stack.azure.state()
    after = lab_images(state)
    new_lab = after["NewLab"]
    assert {img["tags"]["ImagePath"] for img in new_lab.values()} == NEW_LAB_PATHS
    assert {img["tags"]["ImageFactory.Version"] for img in new_lab.values()} == {version}
    assert all(img["provisioning_state"] == "Succeeded" for img in new_lab.values())
    for lab in OTHER_LABS:
        assert after[lab] == before[lab], f"{lab} must not change during the backfill"
    stats = stack.azure.stats()
    # Every ARM write of the backfill is one of NewLab's new custom images: the other labs saw none.
    assert stats["arm"]["writes"] == len(NEW_LAB_PATHS), stats["arm"]["requests"]
    assert stats["copies"]["started"] == len(NEW_LAB_PATHS), "a backfill never captures: only NewLab's copies"
    assert state["blobs"]["factorystore"] == state_before["blobs"]["factorystore"], "the catalogue is untouched"
    for account in ("devlabstore", "testlabstore", "qalabstore"):
        assert state["blobs"].get(account) == state_before["blobs"].get(account), account
