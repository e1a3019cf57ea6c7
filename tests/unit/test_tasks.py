"""The DAG's steps on a run context whose hooks are fakes: params checked, waves handed over by XCom, verify."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException

from image_factory import naming, tasks, uploads_left
from image_factory.capture_rules import CaptureJob, source_of
from image_factory.catalogue import sidecar_json
from image_factory.exceptions import ImageFactoryError
from image_factory.models import (
    CaptureSource,
    DiskFingerprint,
    FactoryVm,
    ImageVersion,
    LabImage,
    LabInventory,
    LabRef,
    Pair,
)
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
        if isinstance(task_ids, list):  # several tasks: the store holds each task's values (one per map index)
            return [value for t in task_ids for value in self.store.get((t, key), [])]
        return self.store.get((task_ids, key))


@dataclass
class FakeArm:
    """The DevTest Labs hook as the steps use it: every lab in the factory's region, holding ``images``."""

    images: dict[str, tuple[LabImage, ...]] = field(default_factory=dict)
    inventoried: list[str] = field(default_factory=list)
    listed: list[str] = field(default_factory=list)
    #: The factory lab's VMs.
    vms: list[FactoryVm] = field(default_factory=list)

    def list_vms(self, subscription_id: str, resource_group: str, lab_name: str) -> list[FactoryVm]:
        return list(self.vms)

    #: lab name → (status, message) for labs Azure does not let the factory read.
    unreadable: dict[str, tuple[str, str]] = field(default_factory=dict)

    def get_lab(self, subscription_id: str, resource_group: str, lab_name: str) -> Any:
        return SimpleNamespace(location="westeurope")

    def list_labs(self, subscription_id: str) -> list[Any]:
        self.listed.append(subscription_id)
        return []  # nothing listed: each lab is read alone

    def inventory(self, lab: LabRef, *, locate: bool = True, found: Any = None) -> LabInventory:
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


@dataclass
class FakeStorage:
    """The factory catalogue with one version of the Datacenter image (captured from ``source``)."""

    source: CaptureSource | None = None

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
            source=self.source,
        )
        return [(naming.sidecar_blob(name), sidecar_json(image))], {naming.vhd_blob(name)}


@dataclass
class FakeCompute:
    """The compute hook's disk read: every disk reads the same, each read is counted."""

    read: list[str] = field(default_factory=list)

    def disk_fingerprint(self, disk_id: str) -> DiskFingerprint:
        self.read.append(disk_id)
        return DiskFingerprint(f"uid-{disk_id}", "2026-11-01T00:00:00+00:00", "2026-11-30T03:00:00+00:00")


class FakeRun(RunContext):
    arm: FakeArm
    disks: FakeCompute
    catalogue: FakeStorage

    def devtestlabs(self) -> Any:
        return self.arm

    def storage(self) -> Any:
        return self.catalogue

    def compute(self) -> Any:
        return self.disks


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
    run.disks = FakeCompute()
    run.catalogue = FakeStorage()
    return run


def test_params_that_name_no_lab_or_image_are_refused_by_name() -> None:
    run = _run(labs=["DevLab", "NoSuchLab"], image_paths=["Win2019"], copy_poll_seconds=0)
    problems = tasks.check_params(run.params, run.config)
    assert problems[0].startswith("param copy_poll_seconds: 0")
    assert "'NoSuchLab' is not a lab in labs.json (known: DevLab, QALab, TestLab)" in problems[1]
    assert "'Win2019' selects no golden image" in problems[2]
    assert len(problems) == 3


def test_recapture_must_select_a_golden_image() -> None:
    run = _run(recapture=["Win2016/Datacenter.json", "Win2019"], image_paths=["Ubuntu"])
    assert tasks.check_params(run.params, run.config) == [
        "param recapture: 'Win2019' selects no golden image under GoldenImages/"
    ]
    with pytest.raises(AirflowFailException, match="param recapture: 'Win2019'"):
        tasks.validate_config(run)


def test_validate_config_fails_at_once_naming_the_problem() -> None:
    with pytest.raises(AirflowFailException, match="NoSuchLab"):
        tasks.validate_config(_run(labs=["NoSuchLab"]))
    assert tasks.validate_config(_run())["labs"] == ["DevLab", "TestLab", "QALab"]


def test_validate_config_logs_every_configuration_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    folder = tmp_path / "Configuration"
    shutil.copytree(CONFIG, folder)
    labs = json.loads((folder / "labs.json").read_text(encoding="utf-8"))
    labs["Comment"] = "kept from the PowerShell factory"
    labs["Labs"][0]["ImagePaths"] = ["Win2016/Datacenter", "Win2016/Gone.json"]
    (folder / "labs.json").write_text(json.dumps(labs, indent=2), encoding="utf-8")
    run = _run()
    run.folder = folder
    with caplog.at_level("INFO"):
        summary = tasks.validate_config(run)
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warned == summary["warnings"] and len(warned) == 3
    assert any("unknown top-level key 'Comment' is ignored" in w for w in warned)
    assert any("selects the file 'Win2016/Datacenter.json' by its stem" in w for w in warned)
    assert any("'Win2016/Gone.json' selects no golden image file" in w for w in warned)
    assert "3 warning(s)" in caplog.text


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


def _planned() -> FakeTi:
    """Return the XCom of a run whose plan step ran (verify reads the plan from it)."""
    ti = FakeTi()
    tasks.plan_distribution(_run(ti))
    ti.store[(tasks.PLAN_TASK_ID, tasks.PLAN_XCOM_KEY)] = ti.pushed[tasks.PLAN_XCOM_KEY]
    return ti


def test_verify_without_a_plan_says_so() -> None:
    with pytest.raises(ImageFactoryError, match="verify found no plan"):
        tasks.verify(_run())


def test_verify_names_what_is_missing_and_writes_the_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAGE_FACTORY_REPORT_DIR", str(tmp_path))
    ti = _planned()
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


VM_IDS = (
    "/subscriptions/s/resourcegroups/rg-imagefactory/providers/microsoft.devtestlab/labs/imagefactory/virtualmachines"
)


def _factory_vm(name: str, path: str, power: str = "deallocated") -> FactoryVm:
    return FactoryVm(
        name=name,
        tags={"ImagePath": path},
        power_state=power,
        os_disk_id=f"/subscriptions/s/resourceGroups/f-{name}/providers/Microsoft.Compute/disks/{name}",
        resource_id=f"{VM_IDS}/{name}",
    )


FACTORY_VMS = [
    _factory_vm("vm-datacenter", DATACENTER),
    _factory_vm("vm-ubuntu", "Ubuntu/Ubuntu2204.json"),
    _factory_vm("vm-wip", DATACENTER, power="running"),
]


def test_capture_lists_changed_vms_and_hands_verify_a_summary_per_image_path() -> None:
    ti = FakeTi()
    run = _run(ti)
    run.arm.vms = FACTORY_VMS
    jobs = [CaptureJob.from_dict(j) for j in tasks.list_capture_jobs(run)]
    # The catalogued Datacenter version has no source (an older sidecar): captured again, as the day's second.
    assert [(j.vm_name, j.version) for j in jobs] == [("vm-datacenter", f"{VERSION}.2"), ("vm-ubuntu", VERSION)]
    assert all(j.source is not None and j.run_id == "manual__1" for j in jobs)
    assert run.disks.read == [FACTORY_VMS[0].os_disk_id, FACTORY_VMS[1].os_disk_id], "one read per candidate"
    assert ti.pushed[tasks.CAPTURE_SUMMARY_XCOM_KEY] == {
        DATACENTER: f"captured {VERSION}.2 from vm-datacenter",
        "Ubuntu/Ubuntu2204.json": f"captured {VERSION} from vm-ubuntu",
    }


def test_an_unchanged_vm_is_not_captured_and_image_paths_narrow_the_disk_reads() -> None:
    ti = FakeTi()
    run = _run(ti, image_paths=["Win2016"])
    run.arm.vms = FACTORY_VMS
    run.catalogue = FakeStorage(
        source=source_of(FACTORY_VMS[0], FakeCompute().disk_fingerprint(FACTORY_VMS[0].os_disk_id or ""))
    )
    assert tasks.list_capture_jobs(run) == []
    assert run.disks.read == [FACTORY_VMS[0].os_disk_id]
    assert ti.pushed[tasks.CAPTURE_SUMMARY_XCOM_KEY] == {DATACENTER: f"unchanged since {VERSION}"}
    forced = _run(FakeTi(), recapture=["Win2016"], image_paths=["Win2016"])
    forced.arm.vms, forced.catalogue = FACTORY_VMS, run.catalogue
    assert [j["version"] for j in tasks.list_capture_jobs(forced)] == [f"{VERSION}.2"]


def test_a_run_that_must_not_capture_reads_no_vm() -> None:
    ti = FakeTi()
    run = _run(ti, dry_run=True)
    run.arm.vms = FACTORY_VMS
    assert tasks.list_capture_jobs(run) == []
    assert run.disks.read == []
    assert ti.pushed[tasks.CAPTURE_SUMMARY_XCOM_KEY] == {}


def test_verify_reports_and_logs_what_capture_did(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("IMAGE_FACTORY_REPORT_DIR", str(tmp_path))
    ti = _planned()
    summary = {DATACENTER: f"unchanged since {VERSION}"}
    ti.store[(tasks.CAPTURE_JOBS_TASK_ID, tasks.CAPTURE_SUMMARY_XCOM_KEY)] = summary
    run = _run(ti)
    run.arm.images = {lab: (_held(lab),) for lab in ("DevLab", "TestLab")}
    with caplog.at_level("INFO", logger="image_factory.tasks"):
        done = tasks.verify(run)
    report = json.loads(Path(done["report"]).read_text())
    assert report["capture"] == summary
    assert f"{DATACENTER}: unchanged since {VERSION}" in caplog.text


def _pair(lab: str) -> dict[str, Any]:
    name = naming.image_name(DATACENTER, VERSION)
    return Pair(
        lab, "sub", f"rg-{lab}", "westeurope", name, DATACENTER, VERSION, naming.vhd_blob(name), "Windows", True
    ).to_dict()


def _seed_run(ti: FakeTi) -> FakeRun:
    run = _run(ti)
    run.arm = SimpleNamespace(  # type: ignore[assignment]
        generate_upload_uri=lambda *args: f"https://h/{args[2].lower()}store/uploads/{args[3]}?sp=rcw&sig=S",
        clients=SimpleNamespace(credential="the connection's credential"),
        settings=SimpleNamespace(connection_verify=True, principal="app-1"),
    )
    return run


def test_seed_uploads_are_deleted_by_token_and_a_refused_one_is_handed_to_verify(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from image_factory.hooks import uploads  # the step imports it when it runs, not at DAG parse

    seeds = [
        {**_pair("DevLab"), "keep_upload": True},
        {**_pair("QALab"), "keep_upload": True},
        _pair("TestLab"),
    ]
    ti = FakeTi()
    ti.store[(tasks.PLAN_TASK_ID, "return_value")] = seeds
    calls: list[tuple[str, Any, str]] = []

    def delete(url: str, credential: Any, *, lab: str, verify: Any) -> uploads.DeleteOutcome:
        calls.append((url.split("?", maxsplit=1)[0], credential, lab))
        if lab == "QALab":
            refused = uploads_left.UploadLeft(lab, "qalabstore", "x.vhd", 512, "AuthorizationPermissionMismatch")
            return uploads.DeleteOutcome("left", refused)
        return uploads.DeleteOutcome("deleted")

    monkeypatch.setattr(uploads, "delete_upload", delete)
    assert tasks.cleanup_seed_uploads(_seed_run(ti)) == 1
    assert [c[2] for c in calls] == ["DevLab", "QALab"]
    assert {c[1] for c in calls} == {"the connection's credential"}
    assert ti.pushed[uploads_left.XCOM_KEY] == [
        {
            "lab": "QALab",
            "account": "qalabstore",
            "blob": "x.vhd",
            "size": 512,
            "reason": "AuthorizationPermissionMismatch",
        }
    ]


def test_verify_reports_uploads_left_once_per_lab_and_does_not_fail_for_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("IMAGE_FACTORY_REPORT_DIR", str(tmp_path))
    ti = _planned()
    upload = {"lab": "DevLab", "account": "devlabstore", "size": 3 * 2**30, "reason": "AuthorizationPermissionMismatch"}
    ti.store[("distribute", "return_value")] = [
        {"lab": "DevLab", "action": "created", "upload_left": {**upload, "blob": "a.vhd"}},
        {"lab": "TestLab", "action": "created"},
    ]
    ti.store[("distribute_regional", "return_value")] = [
        {"lab": "DevLab", "action": "created", "upload_left": {**upload, "blob": "b.vhd"}}
    ]
    run = _run(ti)
    run.arm.images = {lab: (_held(lab),) for lab in ("DevLab", "TestLab")}
    run.arm.settings = SimpleNamespace(principal="app-1")  # type: ignore[attr-defined]
    with caplog.at_level("INFO", logger="image_factory.tasks"):
        done = tasks.verify(run)
    assert done["uploads_left"] == {"DevLab": 6 * 2**30}
    report = json.loads(Path(done["report"]).read_text())
    assert report["problems"] == []
    (devlab,) = report["uploads_left"]
    assert devlab["blobs"] == ["a.vhd", "b.vhd"] and devlab["role"] == "Storage Blob Data Contributor"
    lines = [r for r in caplog.records if r.levelname == "WARNING" and "upload(s) left" in r.getMessage()]
    assert len(lines) == 1 and "6.00 GiB" in lines[0].getMessage() and "app-1" in lines[0].getMessage()
