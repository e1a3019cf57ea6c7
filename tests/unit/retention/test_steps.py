"""The retire group's task steps: the deletions decide hands on, the report, and the DAG's retire group.

BUG 2: ``retire.report`` must not need the file ``retire.decide`` wrote on its own host. On Celery two workers on
two hosts share no ``IMAGE_FACTORY_REPORT_DIR``: the only thing the DAG's tasks share is XCom. The handover test
runs the DAG's own ``retire.decide`` and ``retire.report`` callables as two hosts would, each with its own empty
report folder, handing over nothing but what they push to and pull from XCom.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException

from image_factory.catalogue import build_catalogue, sidecar_json
from image_factory.exceptions import ImageFactoryError
from image_factory.retention.decisions import Decision
from image_factory.retention.operator import ALREADY_GONE, DELETED
from image_factory.retention.steps import artifact_path, decisions_of, deletion_item, record
from image_factory.run_context import RunContext, RunParams
from tests.unit.catalogued import image_version

DAGS = Path(__file__).resolve().parents[3] / "dags"
SUB = "11111111-1111-4111-8111-111111111111"
RUN_ID = "manual__2026-11-26T03:00:00+00:00"
RETURN_VALUE = "return_value"


class XComStore:
    """What Airflow's metadata database holds between tasks: the one thing two hosts share."""

    def __init__(self) -> None:
        self.values: dict[tuple[str, str], Any] = {}

    def ti(self, task_id: str) -> Any:
        store = self

        class TaskInstance:
            def xcom_push(self, key: str, value: Any) -> None:
                store.values[(task_id, key)] = json.loads(json.dumps(value))

            def xcom_pull(self, task_ids: str, key: str = RETURN_VALUE, **kwargs: Any) -> Any:
                if kwargs.get("map_indexes") is not None:
                    return [store.values.get((f"{task_ids}[{i}]", key)) for i in kwargs["map_indexes"]]
                return store.values.get((task_ids, key))

        return TaskInstance()


@pytest.fixture(scope="module")
def dag() -> Any:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS))
    assert bag.import_errors == {}
    return bag.dags["image_factory"]


def run_task(dag: Any, task_id: str, store: XComStore, params: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Any:
    """Run one ``@task`` of the DAG as a worker would: its context, its XCom, its return value pushed."""
    task = dag.task_dict[task_id]
    context = {
        "params": params,
        "ti": store.ti(task_id),
        "task_instance": store.ti(task_id),
        "logical_date": datetime(2026, 11, 26, 3, 0, tzinfo=UTC),
        "dag_run": SimpleNamespace(run_id=RUN_ID, run_after=datetime(2026, 11, 26, 3, 0, tzinfo=UTC)),
    }
    # The task body reads Airflow's context through airflow.sdk.get_current_context, wherever it calls it from.
    monkeypatch.setattr("airflow.sdk.get_current_context", lambda: context)
    if "get_current_context" in task.python_callable.__globals__:
        monkeypatch.setitem(task.python_callable.__globals__, "get_current_context", lambda: context)
    result = task.python_callable()
    store.ti(task_id).xcom_push(RETURN_VALUE, result)
    return result


def test_report_runs_on_a_host_whose_report_folder_is_empty(
    dag: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    params = {"retire": False, "clean_factory": False, "dry_run": False, "labs": [], "image_paths": []}
    store = XComStore()
    host_a, host_b = tmp_path / "host-a", tmp_path / "host-b"
    host_a.mkdir()
    host_b.mkdir()

    monkeypatch.setenv("IMAGE_FACTORY_REPORT_DIR", str(host_a))
    assert run_task(dag, "retire.decide", store, params, monkeypatch) == []

    # The report runs on another host: decide's folder is not there.
    monkeypatch.setenv("IMAGE_FACTORY_REPORT_DIR", str(host_b))
    summary = run_task(dag, "retire.report", store, params, monkeypatch)

    assert summary["decided"] == 0 and summary["outcomes"] == {} and summary["dry_run"] is False
    written = list(host_b.glob("*.retire.json"))
    assert len(written) == 1, "report writes the decisions and outcomes for people on its own host"
    document = json.loads(written[0].read_text(encoding="utf-8"))
    assert document["notes"] == ["retire and clean_factory are both off"]
    assert document["deletions"] == [] and document["outcomes"] == []


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


def _decisions(run_id: str, deletions: list[dict[str, object]], *, dry_run: bool = False) -> dict[str, Any]:
    return {"dag_run_id": run_id, "version": "2025-01-03", "dry_run": dry_run, "deletions": deletions}


def test_report_records_outcomes_and_fails_after_deleting_a_failed_vm(reports: Path) -> None:
    broken = Decision("delete", "factory_vm", "F", "vm-broken", "failed to provision", error=True).to_dict()
    image = Decision("delete", "custom_image", "DevLab", "a", "old").to_dict()
    path = artifact_path("2025-01-03", "manual__1")
    assert path.parent == reports and path.name.endswith(".retire.json")
    outcomes = [{"name": "a", "outcome": DELETED}, {"name": "vm-broken", "outcome": ALREADY_GONE}]
    with pytest.raises(ImageFactoryError, match="vm-broken: failed to provision"):
        record(_decisions("manual__1", [image, broken]), outcomes)
    written = json.loads(path.read_text())
    assert written["outcomes"] == outcomes and written["deletions"] == [image, broken]


def test_report_of_a_dry_run_never_fails_and_needs_the_decisions(reports: Path) -> None:
    broken = Decision("delete", "factory_vm", "F", "vm-broken", "failed to provision", error=True).to_dict()
    summary = record(_decisions("manual__2", [broken], dry_run=True), None)
    assert summary["dry_run"] is True and summary["decided"] == 1 and summary["outcomes"] == {}
    with pytest.raises(ImageFactoryError, match="no decisions"):
        record(None, [])


def test_the_dag_retires_last_in_the_pool_and_offers_the_params(dag: Any) -> None:
    decide_task, delete, summary = (dag.task_dict[f"retire.{t}"] for t in ("decide", "delete", "report"))
    assert decide_task.upstream_task_ids == {"verify"} and decide_task.trigger_rule == "all_done"
    assert delete.upstream_task_ids == {"retire.decide"} and delete.pool == "image_distribution"
    assert summary.upstream_task_ids == {"retire.delete"} and summary.trigger_rule == "all_done"
    assert summary.retries == 0
    assert dag.params["retire"] is True and dag.params["clean_factory"] is False
    for name in ("retire", "clean_factory"):
        param = dag.params.get_param(name)
        assert param.schema["type"] == "boolean" and param.schema["title"] and param.description


def _run(params: dict[str, Any], run_id: str) -> RunContext:
    return RunContext(params=RunParams.from_mapping(params), version="2026-11-26", run_id=run_id)


def test_retire_and_clean_factory_off_decide_nothing_and_report_succeeds(reports: Path) -> None:
    params = {"retire": False, "clean_factory": False}
    decided = decisions_of(_run(params, "run-off"), None)
    assert decided.deletions == [] and decided.decisions["deletions"] == []
    result = record(decided.decisions, [])
    assert result["decided"] == 0 and result["outcomes"] == {}


def test_without_this_runs_plan_decide_fails_at_once() -> None:
    with pytest.raises(AirflowFailException, match="plan"):
        decisions_of(_run({}, "no-plan"), None)
