"""The retire group's pure parts: catalogue blobs per version, what must survive, captured VMs, the report."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from image_factory.capture_rules import FactoryVm
from image_factory.catalogue import sidecar_json
from image_factory.exceptions import ImageFactoryError
from image_factory.models import ImageVersion, LabInventory, LabRef, Pair, Plan
from image_factory.retention import Decision, RetentionPlan, VmFacts, cleanup_plan
from image_factory.retire import (
    ALREADY_GONE,
    DELETED,
    artifact_path,
    captured_vms,
    catalogue_blobs,
    deletion_item,
    limit_to_paths,
    planned_versions,
    report,
    upload_checks,
)

SUB = "11111111-1111-4111-8111-111111111111"


def version(path: str, day: str, *, name: str | None = None, vm: str | None = None, ts: str = "") -> ImageVersion:
    stem = name or f"{path.replace('/', '_').removesuffix('.json')}-{day}"
    return ImageVersion(
        image_name=stem,
        image_path=path,
        version=day,
        vhd_blob=f"{stem}.vhd",
        os_type="Windows",
        sysprep=True,
        source_vm=vm,
        timestamp=ts,
    )


def test_catalogue_blobs_lists_sidecar_then_vhd_of_every_copy_of_a_version() -> None:
    a = version("Win2016/Datacenter.json", "2025-01-01", ts="2025-01-01T02:00:00+00:00")
    dup = version("win2016\\DATACENTER.json", "2025-01-01", name="old-copy", ts="2025-01-01T01:00:00+00:00")
    b = version("Ubuntu/Ubuntu2204.json", "2025-01-02")
    sidecars = [(f"{i.image_name}.json", sidecar_json(i)) for i in (a, dup, b)]
    sidecars.append(("junk.json", b"not json"))
    found = catalogue_blobs(sidecars, {a.vhd_blob, dup.vhd_blob, b.vhd_blob, "orphan.vhd"})
    assert [i.image_name for i in found.images] == [b.image_name, a.image_name]
    assert {i.image_name for i in found.all_images} == {a.image_name, dup.image_name, b.image_name}
    blobs = found.blobs_of("WIN2016/Datacenter.json", "2025-01-01")
    assert sorted(blobs[:2]) == sorted([f"{a.image_name}.json", "old-copy.json"])
    assert sorted(blobs[2:]) == sorted([a.vhd_blob, dup.vhd_blob])
    assert found.blobs_of("Ubuntu/Ubuntu2204.json", "2025-01-01") == []
    assert any("orphan.vhd" in p for p in found.problems)
    item = deletion_item(
        Decision("delete", "catalogue_version", "(factory storage)", a.image_name, "old", a.image_path, a.version),
        found,
    )
    assert item["blobs"] == blobs and item["name"] == a.image_name


def test_planned_versions_are_the_pairs_and_the_expectations() -> None:
    pair = Pair(
        "DevLab", SUB, "rg-dev", "westeurope", "n", "Ubuntu/Ubuntu2204.json", "2025-01-03", "n.vhd", "Linux", True
    )
    plan = Plan(pairs=(pair,), expected=(("TestLab", "Win2016/Datacenter.json", "2025-01-02"),))
    assert planned_versions(plan) == {
        ("Ubuntu/Ubuntu2204.json", "2025-01-03"),
        ("Win2016/Datacenter.json", "2025-01-02"),
    }


def _lab(name: str, paths: tuple[str, ...]) -> LabRef:
    return LabRef(SUB, name, paths, f"rg-{name.lower()}")


def test_upload_checks_cover_the_image_lab_and_every_subscribing_lab_of_a_catalogue_version() -> None:
    dev, test, down = _lab("DevLab", ("Win2016",)), _lab("TestLab", ("Ubuntu",)), _lab("Down", ("Win2016",))
    inventories = {
        dev.key: LabInventory(dev, "ok", resource_group="rg-dev-real"),
        test.key: LabInventory(test, "ok", resource_group="rg-test"),
        down.key: LabInventory(down, "forbidden"),
    }
    deletions = [
        Decision("delete", "catalogue_version", "(factory storage)", "dc-1", "old", "Win2016/Datacenter.json", "d1"),
        Decision("delete", "custom_image", "TestLab", "ub-1", "old", "Ubuntu/Ubuntu2204.json", "d1", SUB, "rg-test"),
        Decision("delete", "factory_vm", "ImageFactory", "vm-x", "captured", "Ubuntu/Ubuntu2204.json", None, SUB, "rg"),
    ]
    checks = upload_checks(deletions, [dev, test, down], inventories)
    assert {(c.lab_name, c.resource_group, c.blob, c.version) for c in checks} == {
        ("DevLab", "rg-dev-real", "dc-1.vhd", "d1"),
        ("TestLab", "rg-test", "ub-1.vhd", "d1"),
    }


def _vm(name: str, tags: dict[str, str]) -> FactoryVm:
    return FactoryVm(name=name, tags=tags)


def test_captured_vms_need_a_sidecar_naming_them_for_their_path_written_after_they_were_created() -> None:
    created = datetime(2025, 1, 2, 12, 0, tzinfo=UTC)
    path = {"ImagePath": "Win2016/Datacenter.json"}
    vms = [
        (_vm("vm-done", path), created),
        (_vm("VM-Upper", path), None),
        (_vm("vm-recreated", path), created),
        (_vm("vm-other-path", {"imagepath": "Ubuntu/Ubuntu2204.json"}), created),
        (_vm("vm-untagged", {}), created),
        (_vm("vm-never", path), created),
    ]
    images = [
        version("Win2016/Datacenter.json", "2025-01-03", vm="vm-done", ts="2025-01-03T02:00:00+00:00"),
        version("Win2016/Datacenter.json", "2025-01-03", name="x", vm="vm-upper", ts=""),
        version("Win2016/Datacenter.json", "2025-01-01", name="y", vm="vm-recreated", ts="2025-01-01T02:00:00+00:00"),
        version("Win2016/Datacenter.json", "2025-01-03", name="z", vm="vm-other-path", ts="2025-01-03T02:00:00+00:00"),
        version("Win2016/Datacenter.json", "2025-01-03", name="w", vm="vm-untagged", ts="2025-01-03T02:00:00+00:00"),
    ]
    assert captured_vms(vms, images) == {"vm-done", "VM-Upper"}


def test_a_captured_vm_started_again_is_kept() -> None:
    vms = [
        VmFacts("vm-running", {"ImagePath": "Ubuntu/Ubuntu2204.json"}, "Succeeded", "running"),
        VmFacts("vm-idle", {"ImagePath": "Ubuntu/Ubuntu2204.json"}, "Succeeded", "deallocated"),
    ]
    plan = cleanup_plan(
        vms=vms, captured_vms=["vm-running", "vm-idle"], where="F", subscription_id=SUB, resource_group="rg"
    )
    assert [d.name for d in plan.deletions] == ["vm-idle"]
    assert [(k.name, "running" in k.reason) for k in plan.kept] == [("vm-running", True)]


def test_limit_to_paths_drops_decisions_outside_the_filter_and_says_so() -> None:
    keep = Decision("delete", "custom_image", "DevLab", "a", "old", "Win2016/Datacenter.json", "d1")
    other = Decision("delete", "custom_image", "DevLab", "b", "old", "Ubuntu/Ubuntu2204.json", "d1")
    untagged = Decision("delete", "factory_vm", "F", "vm-broken", "failed to provision", None, None, error=True)
    plan = RetentionPlan(deletions=(keep, other, untagged))
    assert limit_to_paths(plan, []) is plan
    limited = limit_to_paths(plan, ["win2016"])
    assert limited.deletions == (keep,)
    assert limited.notes == ("2 deletion(s) left for a run without an image_paths filter",)


@pytest.fixture
def reports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("IMAGE_FACTORY_REPORT_DIR", str(tmp_path))
    return tmp_path


def _artifact(run_id: str, deletions: list[dict[str, object]], *, dry_run: bool = False) -> Path:
    path = artifact_path("2025-01-03", run_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"dag_run_id": run_id, "dry_run": dry_run, "deletions": deletions}))
    return path


def test_report_records_outcomes_and_fails_after_deleting_a_failed_vm(reports: Path) -> None:
    broken = Decision("delete", "factory_vm", "F", "vm-broken", "failed to provision", error=True).to_dict()
    image = Decision("delete", "custom_image", "DevLab", "a", "old").to_dict()
    path = _artifact("manual__1", [image, broken])
    assert path.parent == reports and path.name.endswith(".retire.json")
    outcomes = [{"name": "a", "outcome": DELETED}, {"name": "vm-broken", "outcome": ALREADY_GONE}]
    with pytest.raises(ImageFactoryError, match="vm-broken: failed to provision"):
        report(outcomes, version="2025-01-03", run_id="manual__1")
    assert json.loads(path.read_text())["outcomes"] == outcomes


def test_report_of_a_dry_run_never_fails_and_needs_the_decisions(reports: Path) -> None:
    broken = Decision("delete", "factory_vm", "F", "vm-broken", "failed to provision", error=True).to_dict()
    _artifact("manual__2", [broken], dry_run=True)
    summary = report(None, version="2025-01-03", run_id="manual__2")
    assert summary["dry_run"] is True and summary["decided"] == 1 and summary["outcomes"] == {}
    with pytest.raises(ImageFactoryError, match="wrote no decisions"):
        report([], version="2025-01-03", run_id="manual__missing")


def test_the_dag_retires_last_in_the_pool_and_offers_the_params() -> None:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(Path(__file__).resolve().parents[2] / "dags"))
    assert bag.import_errors == {}
    dag = bag.dags["image_factory"]
    decide, delete, summary = (dag.task_dict[f"retire.{t}"] for t in ("decide", "delete", "report"))
    assert decide.upstream_task_ids == {"verify"} and decide.trigger_rule == "all_done"
    assert delete.upstream_task_ids == {"retire.decide"} and delete.pool == "image_distribution"
    assert summary.upstream_task_ids == {"retire.delete"} and summary.trigger_rule == "all_done"
    assert summary.retries == 0
    assert dag.params["retire"] is True and dag.params["clean_factory"] is False
    for name in ("retire", "clean_factory"):
        param = dag.params.get_param(name)
        assert param.schema["type"] == "boolean" and param.schema["title"] and param.description


def test_retire_and_clean_factory_off_decide_nothing_and_report_succeeds(reports: Path) -> None:
    from image_factory.retire import decide, report

    params = {"retire": False, "clean_factory": False}
    assert decide(params, plan_doc=None, version="2026-11-26", run_id="run-off") == []
    result = report([], version="2026-11-26", run_id="run-off")
    assert result["decided"] == 0 and result["outcomes"] == {}
