"""Weeks in one run: the factory operated night after night on the real processes (the default PostgreSQL stack).

Each test is one night, in file order, on one stack and one world (``emulator/worlds/weeks.json``: the demo world
plus ``NewLab``). Between nights the test changes the local Azure (the emulator's control API) and the copied
``Configuration/`` as a lab administrator changes the real ones, then checks the night with the emulator's state and
stats: a quiet night costs nothing, a rebuilt VM is captured alone, a same-day rebuild gets ``<day>.2``, a new lab
catches up by the README's backfill, a deleted golden image and an unsubscribed path are retired, a lab deleted in
Azure fails the run naming it while the others complete, and after all of it every lab holds exactly what retention
keeps. Long (about ten minutes): ``make weeks``; its last result is in ``tests/e2e/WEEKS-RESULTS.md``.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from stack.__main__ import DAG_ID, Stack, follow_run, verify_report, wait_for_scheduled_run
from stack.backfill import run_backfill
from tests.e2e.conftest import catalogue_container, copy_configuration, e2e_stack, lab_images, uploads_blobs

pytestmark = [pytest.mark.e2e, pytest.mark.weeks]

REPO = Path(__file__).resolve().parents[2]
WEEKS_WORLD = REPO / "emulator" / "worlds" / "weeks.json"
FACTORY = {"subscription": "11111111-1111-4111-8111-111111111111", "resource_group": "rg-imagefactory"}
FACTORY_LAB = "ImageFactory"
IMAGES_TO_SAVE = 2
UBUNTU, DATACENTER, SQLEXPRESS = "Ubuntu/Ubuntu2204.json", "Win2016/Datacenter.json", "Win2016/SQLExpress.json"
NEW_LAB = {
    "SubscriptionId": "11111111-1111-4111-8111-111111111111",
    "LabName": "NewLab",
    "ResourceGroup": "rg-new",
    "ImagePaths": ["Win2016", "Ubuntu"],
}


@dataclass
class Weeks:
    """The stack, the configuration folder it reads, and what the nights so far have shown."""

    stack: Stack
    config: Path
    first_night: datetime | None = None
    days: dict[str, str] = field(default_factory=dict)

    def night(self, offset: timedelta) -> str:
        """Return the logical date ``offset`` after the first night (ISO)."""
        assert self.first_night is not None, "the first night has not run"
        return (self.first_night + offset).isoformat()

    def run(self, logical_date: str, *, expect: str = "success") -> dict[str, Any]:
        """Trigger one night through the REST API with fresh stats; wait for it; check how it ended."""
        self.stack.azure.post("/reset-stats", {})
        run = follow_run(self.stack, self.stack.client.trigger(DAG_ID, conf={}, logical_date=logical_date))
        assert run["state"] == expect, run
        return run

    def labs(self) -> dict[str, Any]:
        return lab_images(self.stack.azure.state())

    def versions(self, lab: str, image_path: str) -> list[str]:
        """Return the versions of ``image_path`` that ``lab`` holds, sorted."""
        return sorted(
            img["tags"]["ImageFactory.Version"]
            for img in self.labs()[lab].values()
            if img["tags"].get("ImagePath") == image_path
        )

    def edit_labs(self, change: Any) -> None:
        path = self.config / "labs.json"
        doc = json.loads(path.read_text(encoding="utf-8"))
        change(doc["Labs"])
        path.write_text(json.dumps(doc, indent=2), encoding="utf-8")

    def lab(self, labs: list[dict[str, Any]], name: str) -> dict[str, Any]:
        return next(lab for lab in labs if lab["LabName"] == name)

    def change_vm(self, change: str, vm: str) -> dict[str, Any]:
        body = {**FACTORY, "lab": FACTORY_LAB, "vm": vm}
        return dict(self.stack.azure.post(f"/vms/{change}", body))


def catalogue_entries(stack: Stack) -> list[tuple[str, str]]:
    """(ImagePath, version) of every sidecar in the factory catalogue, read through the emulator's storage."""
    container = catalogue_container(stack)
    entries = []
    for blob in container.list_blobs():
        if blob.name.endswith(".json"):
            doc = json.loads(container.download_blob(blob.name).readall().decode("utf-8-sig"))
            entries.append((str(doc["imagePath"]).replace("\\", "/"), str(doc["version"])))
    return entries


#: The nights are simulated in the past: Airflow's scheduler refuses runs whose logical date is in the future. With a
#: yearly slot (1 January, 02:00) unpausing runs the latest one, night 1; the following nights are manual runs with
#: the next days' logical dates, and the backfill reprocesses night 1's slot.
WEEKS_SCHEDULE = "0 2 1 1 *"


@pytest.fixture(scope="module")
def weeks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Weeks]:
    config = copy_configuration(tmp_path_factory, "weeks-config")
    factory_file = config / "factory.json"
    factory = json.loads(factory_file.read_text(encoding="utf-8"))
    factory["Schedule"] = WEEKS_SCHEDULE
    factory_file.write_text(json.dumps(factory, indent=2), encoding="utf-8")
    with e2e_stack(tmp_path_factory.mktemp("weeks-stack"), WEEKS_WORLD, config) as stack:
        yield Weeks(stack, config)


def test_night_1_captures_every_golden_image_vm_and_distributes_every_pair(weeks: Weeks) -> None:
    weeks.stack.azure.post("/reset-stats", {})
    weeks.stack.client.unpause(DAG_ID)
    nightly = wait_for_scheduled_run(weeks.stack)
    assert nightly, "unpausing the nightly DAG runs its latest slot"
    run = follow_run(weeks.stack, nightly)
    assert run["state"] == "success", run
    weeks.first_night = datetime.fromisoformat(str(run["logical_date"]).replace("Z", "+00:00"))
    day1 = weeks.first_night.date().isoformat()
    weeks.days["1"] = day1
    stats = weeks.stack.azure.stats()
    assert stats["copies"]["started"] == 4 + 7, "4 captures, 7 (lab, image) pairs"
    assert sorted(catalogue_entries(weeks.stack)) == sorted(
        [(p, day1) for p in ("Win2012R2/VS2017.json", DATACENTER, SQLEXPRESS, UBUNTU)]
    )
    assert weeks.versions("DevLab", UBUNTU) == [day1]
    assert weeks.labs()["NewLab"] == {}, "NewLab is not in labs.json yet"


def test_night_2_nothing_changed_costs_no_copy_and_no_write(weeks: Weeks) -> None:
    before = weeks.stack.azure.state()["labs"]
    run = weeks.run(weeks.night(timedelta(days=1)))
    stats = weeks.stack.azure.stats()
    assert stats["copies"]["started"] == 0
    assert stats["arm"]["writes"] == 0 and stats["arm"]["actions"] == 0, stats["arm"]["requests"]
    assert weeks.stack.azure.state()["labs"] == before
    report = verify_report(weeks.stack, run["dag_run_id"])
    assert report is not None and report["problems"] == []
    capture = report["capture"]
    assert sorted(capture) == sorted(["Win2012R2/VS2017.json", DATACENTER, SQLEXPRESS, UBUNTU]), capture
    assert all(text.startswith(f"unchanged since {weeks.days['1']}") for text in capture.values()), capture


def test_night_3_a_rebuilt_vm_alone_is_captured_and_distributed_to_the_labs_that_want_it(weeks: Weeks) -> None:
    weeks.change_vm("rebuild", "vm-ubuntu")
    others = {lab: imgs for lab, imgs in weeks.labs().items() if lab in ("TestLab", "ImageFactory")}
    weeks.run(weeks.night(timedelta(days=2)))
    day3 = weeks.night(timedelta(days=2))[:10]
    weeks.days["3"] = day3
    stats = weeks.stack.azure.stats()
    assert stats["copies"]["started"] == 1 + 2, "Ubuntu captured once, copied into DevLab and QALab"
    for lab in ("DevLab", "QALab"):
        assert weeks.versions(lab, UBUNTU) == [weeks.days["1"], day3], lab
    assert weeks.versions("DevLab", DATACENTER) == [weeks.days["1"]], "an unchanged VM is not captured again"
    assert {lab: imgs for lab, imgs in weeks.labs().items() if lab in others} == others


def test_night_3_again_a_same_day_rebuild_is_the_days_second_version(weeks: Weeks) -> None:
    weeks.change_vm("cycle", "vm-ubuntu")
    weeks.run(weeks.night(timedelta(days=2, hours=1)))
    second = f"{weeks.days['3']}.2"
    assert weeks.stack.azure.stats()["copies"]["started"] == 1 + 2
    for lab in ("DevLab", "QALab"):
        # ImagesToSave 2: the day's two versions stay, night 1's goes.
        assert weeks.versions(lab, UBUNTU) == [weeks.days["3"], second], lab
    assert sorted(v for p, v in catalogue_entries(weeks.stack) if p == UBUNTU) == [weeks.days["3"], second]


def test_a_new_lab_catches_up_by_the_documented_backfill_and_no_other_lab_sees_a_write(weeks: Weeks) -> None:
    weeks.edit_labs(lambda labs: labs.append(dict(NEW_LAB)))
    before = weeks.labs()
    weeks.stack.azure.post("/reset-stats", {})
    first = weeks.first_night
    assert first is not None
    outcome = run_backfill(
        weeks.stack.client,
        DAG_ID,
        (first - timedelta(hours=1)).isoformat(),
        (first + timedelta(hours=1)).isoformat(),
        reprocess_behavior="completed",
    )
    assert outcome.succeeded and [r["run_type"] for r in outcome.runs] == ["backfill"], outcome.runs
    after = weeks.labs()
    got = sorted((img["tags"]["ImagePath"], img["tags"]["ImageFactory.Version"]) for img in after["NewLab"].values())
    day1, day3 = weeks.days["1"], weeks.days["3"]
    assert got == sorted([(DATACENTER, day1), (SQLEXPRESS, day1), (UBUNTU, day3), (UBUNTU, f"{day3}.2")])
    for lab, images in before.items():
        if lab != "NewLab":
            assert after[lab] == images, f"{lab} must not change during the backfill"
    stats = weeks.stack.azure.stats()
    assert stats["arm"]["writes"] == 4, "one custom image per version NewLab lacked, nothing else"
    assert stats["copies"]["started"] == 4, "a backfill never captures"


def test_night_4_a_deleted_golden_image_is_retired_from_the_catalogue_and_every_lab(weeks: Weeks) -> None:
    (weeks.config / "GoldenImages" / SQLEXPRESS).unlink()
    # The validator refuses a selector that names nothing: the administrator drops QALab's explicit entry too.
    weeks.edit_labs(lambda labs: weeks.lab(labs, "QALab")["ImagePaths"].remove(SQLEXPRESS))
    weeks.run(weeks.night(timedelta(days=3)))
    assert [v for p, v in catalogue_entries(weeks.stack) if p == SQLEXPRESS] == []
    for lab, images in weeks.labs().items():
        assert not [i for i in images.values() if i["tags"].get("ImagePath") == SQLEXPRESS], lab
    assert weeks.versions("DevLab", DATACENTER) == [weeks.days["1"]], "the folder's other image stays"


def test_night_5_a_path_a_lab_unsubscribes_is_retired_there_only(weeks: Weeks) -> None:
    weeks.edit_labs(lambda labs: weeks.lab(labs, "QALab")["ImagePaths"].remove(UBUNTU))
    weeks.run(weeks.night(timedelta(days=4)))
    assert weeks.versions("QALab", UBUNTU) == []
    kept = [weeks.days["3"], f"{weeks.days['3']}.2"]
    assert weeks.versions("DevLab", UBUNTU) == kept
    assert weeks.versions("NewLab", UBUNTU) == kept


def test_night_6_a_lab_deleted_in_azure_fails_the_run_naming_it_and_the_others_complete(weeks: Weeks) -> None:
    weeks.stack.azure.post("/labs/delete", {**FACTORY, "resource_group": "rg-test", "lab": "TestLab"})
    weeks.change_vm("rebuild", "vm-datacenter")
    run = weeks.run(weeks.night(timedelta(days=5)), expect="failed")
    day6 = weeks.night(timedelta(days=5))[:10]
    for lab in ("DevLab", "NewLab"):
        assert weeks.versions(lab, DATACENTER) == [weeks.days["1"], day6], f"{lab} still gets the new version"
    report = verify_report(weeks.stack, run["dag_run_id"])
    assert report is not None
    problems = report["problems"]
    assert any(p.startswith("TestLab: lab not found") and "labs.json" in p for p in problems), problems
    assert all(p.startswith("TestLab") for p in problems), problems


def test_after_the_weeks_every_lab_holds_what_retention_keeps_and_nothing_else(weeks: Weeks) -> None:
    state = weeks.stack.azure.state()
    assert uploads_blobs(state) == [], "no orphan upload"
    labs = lab_images(state)
    catalogue = Counter(p for p, _ in catalogue_entries(weeks.stack))
    assert all(count <= IMAGES_TO_SAVE for count in catalogue.values()), catalogue
    labs_json = json.loads((weeks.config / "labs.json").read_text(encoding="utf-8"))["Labs"]
    for entry in labs_json:
        name = entry["LabName"]
        if name == "TestLab":
            continue  # deleted in Azure
        images = labs[name].values()
        assert all(i["provisioning_state"] == "Succeeded" for i in images), name
        versions = Counter((i["tags"]["ImagePath"], i["tags"]["ImageFactory.Version"]) for i in images)
        assert all(n == 1 for n in versions.values()), f"{name} holds a version twice: {versions}"
        per_path = Counter(path for path, _ in versions)
        for path, count in per_path.items():
            assert count == min(IMAGES_TO_SAVE, catalogue[path]), (name, path, count)
