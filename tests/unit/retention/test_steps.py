"""The retire group's task steps: the deletions decide hands on, the report, and the DAG's retire group."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from image_factory.catalogue import build_catalogue, sidecar_json
from image_factory.exceptions import ImageFactoryError
from image_factory.retention.decisions import Decision
from image_factory.retention.operator import ALREADY_GONE, DELETED
from image_factory.retention.steps import artifact_path, decide, deletion_item, report
from tests.unit.catalogued import image_version

SUB = "11111111-1111-4111-8111-111111111111"


def test_a_catalogue_deletion_carries_the_blobs_of_every_copy_of_its_version() -> None:
    a = image_version("Win2016/Datacenter.json", "2025-01-01")
    dup = image_version("win2016\\DATACENTER.json", "2025-01-01", name="old-copy")
    sidecars = [(f"{i.image_name}.json", sidecar_json(i)) for i in (a, dup)]
    found = build_catalogue(sidecars, {a.vhd_blob, dup.vhd_blob})
    blobs = found.blobs_of("WIN2016/Datacenter.json", "2025-01-01")
    item = deletion_item(
        Decision("delete", "catalogue_version", "(factory storage)", a.image_name, "old", a.image_path, a.version),
        found,
    )
    assert item["blobs"] == blobs and len(blobs) == 4 and item["name"] == a.image_name
    lab_item = deletion_item(Decision("delete", "custom_image", "DevLab", "x", "old", a.image_path, "d1"), found)
    assert "blobs" not in lab_item and lab_item["where"] == "DevLab"


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

    bag = DagBag(dag_folder=str(Path(__file__).resolve().parents[3] / "dags"))
    assert bag.import_errors == {}
    dag = bag.dags["image_factory"]
    decide_task, delete, summary = (dag.task_dict[f"retire.{t}"] for t in ("decide", "delete", "report"))
    assert decide_task.upstream_task_ids == {"verify"} and decide_task.trigger_rule == "all_done"
    assert delete.upstream_task_ids == {"retire.decide"} and delete.pool == "image_distribution"
    assert summary.upstream_task_ids == {"retire.delete"} and summary.trigger_rule == "all_done"
    assert summary.retries == 0
    assert dag.params["retire"] is True and dag.params["clean_factory"] is False
    for name in ("retire", "clean_factory"):
        param = dag.params.get_param(name)
        assert param.schema["type"] == "boolean" and param.schema["title"] and param.description


def test_retire_and_clean_factory_off_decide_nothing_and_report_succeeds(reports: Path) -> None:
    params = {"retire": False, "clean_factory": False}
    assert decide(params, plan_doc=None, version="2026-11-26", run_id="run-off") == []
    result = report([], version="2026-11-26", run_id="run-off")
    assert result["decided"] == 0 and result["outcomes"] == {}
