"""The DAG's steps on a run context whose hooks are fakes: params checked, waves handed over by XCom, verify."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException

from image_factory import naming, tasks
from image_factory.catalogue import sidecar_json
from image_factory.exceptions import ImageFactoryError
from image_factory.models import ImageVersion, LabImage, LabInventory, LabRef
from image_factory.run_context import RunContext, RunParams

CONFIG = Path(__file__).resolve().parents[2] / "Configuration"
VERSION = "2026-12-01"
DATACENTER = "Win2016/Datacenter.json"


class FakeTi:
    """XCom of one task instance, keyed by (task id, key)."""

    def __init__(self) -> None:
        self.pushed: dict[str, Any] = {}
        self.store: dict[tuple[str, str], Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value

    def xcom_pull(self, task_ids: Any = None, key: str = "return_value", **_: Any) -> Any:
        return self.store.get((task_ids, key))


@dataclass
class FakeArm:
    """The DevTest Labs hook as the steps use it: every lab in the factory's region, holding ``images``."""

    images: dict[str, tuple[LabImage, ...]] = field(default_factory=dict)
    inventoried: list[str] = field(default_factory=list)
    #: lab name → (status, message) for labs Azure does not let the factory read.
    unreadable: dict[str, tuple[str, str]] = field(default_factory=dict)

    def get_lab(self, subscription_id: str, resource_group: str, lab_name: str) -> Any:
        return SimpleNamespace(location="westeurope")

    def inventory(self, lab: LabRef, *, locate: bool = True) -> LabInventory:
        self.inventoried.append(lab.lab_name)
        if lab.lab_name in self.unreadable:
            status, message = self.unreadable[lab.lab_name]
            return LabInventory(lab=lab, status=status, message=message)  # type: ignore[arg-type]
        return LabInventory(
            lab=lab,
            status="ok",
            resource_group=lab.resource_group,
            location="westeurope",
            images=self.images.get(lab.lab_name, ()),
        )


class FakeStorage:
    """The factory catalogue with one version of the Datacenter image."""

    def list_catalogue(self, container: str) -> tuple[list[tuple[str, bytes]], set[str]]:
        name = naming.image_name(DATACENTER, VERSION)
        image = ImageVersion(
            image_name=name,
            image_path=DATACENTER,
            version=VERSION,
            vhd_blob=naming.vhd_blob(name),
            os_type="Windows",
            sysprep=True,
            size_bytes=1024,
        )
        return [(naming.sidecar_blob(name), sidecar_json(image))], {naming.vhd_blob(name)}


class FakeRun(RunContext):
    arm: FakeArm

    def devtestlabs(self) -> Any:
        return self.arm

    def storage(self) -> Any:
        return FakeStorage()


def _run(ti: FakeTi | None = None, run_type: str = "manual", **params: Any) -> FakeRun:
    run = FakeRun(
        params=RunParams.from_mapping(params),
        day=VERSION,
        run_id="manual__1",
        run_type=run_type,
        folder=CONFIG,
        ti=ti or FakeTi(),
    )
    run.arm = FakeArm()
    return run


def test_params_that_name_no_lab_or_image_are_refused_by_name() -> None:
    run = _run(labs=["DevLab", "NoSuchLab"], image_paths=["Win2019"], copy_poll_seconds=0)
    problems = tasks.check_params(run.params, run.config)
    assert problems[0].startswith("param copy_poll_seconds: 0")
    assert "'NoSuchLab' is not a lab in labs.json (known: DevLab, QALab, TestLab)" in problems[1]
    assert "'Win2019' selects no golden image" in problems[2]
    assert len(problems) == 3


def test_validate_config_fails_at_once_naming_the_problem() -> None:
    with pytest.raises(AirflowFailException, match="NoSuchLab"):
        tasks.validate_config(_run(labs=["NoSuchLab"]))
    assert tasks.validate_config(_run())["labs"] == ["DevLab", "TestLab", "QALab"]


@pytest.mark.parametrize(
    ("params", "run_type", "reason"),
    [
        ({"capture": False}, "manual", "capture is off"),
        ({"dry_run": True}, "manual", "dry run"),
        ({}, "backfill", "a backfill never captures"),
        ({}, "scheduled", None),
    ],
)
def test_when_a_run_captures_nothing(params: dict[str, Any], run_type: str, reason: str | None) -> None:
    found = tasks.capture_skip_reason(_run(run_type=run_type, **params))
    assert (found is None) if reason is None else (reason in str(found))


def test_plan_hands_the_plan_and_the_regional_wave_over_by_xcom() -> None:
    ti = FakeTi()
    direct = tasks.plan_distribution(_run(ti))
    # DevLab (Win2016) and TestLab (Win2016/Datacenter.json) want the Datacenter image; QALab does not.
    assert sorted(p["lab_name"] for p in direct) == ["DevLab", "TestLab"]
    assert {p["image_name"] for p in direct} == {naming.image_name(DATACENTER, VERSION)}
    assert set(ti.pushed) == {tasks.PLAN_XCOM_KEY, tasks.REGIONAL_XCOM_KEY}
    assert ti.pushed[tasks.REGIONAL_XCOM_KEY] == []
    assert len(ti.pushed[tasks.PLAN_XCOM_KEY]["pairs"]) == 2


def test_a_dry_run_plans_but_maps_nothing() -> None:
    ti = FakeTi()
    assert tasks.plan_distribution(_run(ti, dry_run=True)) == []
    assert len(ti.pushed[tasks.PLAN_XCOM_KEY]["pairs"]) == 2


def test_plan_reads_only_the_selected_labs() -> None:
    run = _run(labs=["testlab"])
    direct = tasks.plan_distribution(run)
    assert [p["lab_name"] for p in direct] == ["TestLab"]
    assert run.arm.inventoried == ["TestLab"]


def test_verify_without_a_plan_says_so() -> None:
    with pytest.raises(ImageFactoryError, match="verify found no plan"):
        tasks.verify(_run())


def test_verify_names_what_is_missing_and_writes_the_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAGE_FACTORY_REPORT_DIR", str(tmp_path))
    ti = FakeTi()
    tasks.plan_distribution(_run(ti))
    ti.store[(tasks.PLAN_TASK_ID, tasks.PLAN_XCOM_KEY)] = ti.pushed[tasks.PLAN_XCOM_KEY]
    with pytest.raises(ImageFactoryError, match="Some labs cannot be read or miss images") as failed:
        tasks.verify(_run(ti))
    assert "DevLab" in str(failed.value)
    assert "TestLab" in str(failed.value)
    assert [p.name for p in tmp_path.iterdir()] == [f"{VERSION}__manual__1.json"]


def test_regional_pairs_come_from_plans_xcom() -> None:
    ti = FakeTi()
    ti.store[(tasks.PLAN_TASK_ID, tasks.REGIONAL_XCOM_KEY)] = [{"lab_name": "QALab"}]
    assert tasks.regional_pairs(_run(ti)) == [{"lab_name": "QALab"}]
    assert tasks.regional_pairs(_run()) == []


def _held(name: str) -> LabImage:
    image = naming.image_name(DATACENTER, VERSION)
    return LabImage(name=image, provisioning_state="Succeeded", image_path=DATACENTER, version=VERSION, managed=True)


@pytest.mark.parametrize(
    ("status", "fix"),
    [("not_found", "check LabName, ResourceGroup and SubscriptionId in labs.json"), ("forbidden", "DevTest Labs User")],
)
def test_a_lab_that_cannot_be_read_fails_the_run_naming_it_and_what_to_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, status: str, fix: str
) -> None:
    monkeypatch.setenv("IMAGE_FACTORY_REPORT_DIR", str(tmp_path))
    ti = FakeTi()
    run = _run(ti)
    run.arm.unreadable = {"DevLab": (status, "Azure said no")}
    direct = tasks.plan_distribution(run)
    assert [p["lab_name"] for p in direct] == ["TestLab"], "the other labs still get their images"
    ti.store[(tasks.PLAN_TASK_ID, tasks.PLAN_XCOM_KEY)] = ti.pushed[tasks.PLAN_XCOM_KEY]
    after = _run(ti)
    after.arm.unreadable = {"DevLab": (status, "Azure said no")}
    after.arm.images = {"TestLab": (_held("TestLab"),)}
    with pytest.raises(ImageFactoryError) as failed:
        tasks.verify(after)
    message = str(failed.value)
    assert "DevLab" in message and "Azure said no" in message and fix in message
    assert "TestLab" not in message


def test_a_dry_run_also_fails_on_a_lab_that_cannot_be_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAGE_FACTORY_REPORT_DIR", str(tmp_path))
    ti = FakeTi()
    tasks.plan_distribution(_run(ti, dry_run=True))
    ti.store[(tasks.PLAN_TASK_ID, tasks.PLAN_XCOM_KEY)] = ti.pushed[tasks.PLAN_XCOM_KEY]
    assert tasks.verify(_run(ti, dry_run=True))["would_distribute"] == 2
    run = _run(ti, dry_run=True)
    run.arm.unreadable = {"QALab": ("not_found", "no such lab")}
    with pytest.raises(ImageFactoryError, match="QALab: lab not found"):
        tasks.verify(run)
