"""The image_factory DAG parses without errors or network access and has the documented structure."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest

DAGS = Path(__file__).resolve().parents[2] / "dags"


@pytest.fixture(scope="module")
def dag() -> Any:
    from airflow.dag_processing.dagbag import DagBag

    real_connect = socket.socket.connect

    def guard(self: socket.socket, address: Any) -> None:
        raise AssertionError(f"DAG parsing tried to connect to {address}")

    socket.socket.connect = guard  # type: ignore[method-assign]
    try:
        bag = DagBag(dag_folder=str(DAGS))
    finally:
        socket.socket.connect = real_connect  # type: ignore[method-assign]
    assert bag.import_errors == {}
    return bag.dags["image_factory"]


def test_schedule_and_defaults(dag: Any) -> None:
    assert dag.catchup is False
    assert dag.max_active_runs == 1
    assert dag.doc_md and "Image Factory" in dag.doc_md
    assert dag.default_args["retries"] == 3
    assert dag.default_args["retry_exponential_backoff"] is True
    assert callable(dag.default_args["on_failure_callback"])
    assert "image-factory" in dag.tags


def test_structure(dag: Any) -> None:
    ids = set(dag.task_dict)
    assert {"validate_config", "capture.list_factory_vms", "capture.capture_vm", "plan", "distribute", "verify"} <= ids
    assert "capture" in dag.task_group.children
    assert dag.task_dict["plan"].upstream_task_ids >= {"capture.capture_vm"}
    # direct wave → region fan-out wave → clean-up of the uploads seeds kept → verify
    assert "distribute" in dag.task_dict["regional_pairs"].upstream_task_ids
    assert "regional_pairs" in dag.task_dict["distribute_regional"].upstream_task_ids
    assert "distribute_regional" in dag.task_dict["cleanup_uploads"].upstream_task_ids
    assert "cleanup_uploads" in dag.task_dict["verify"].upstream_task_ids
    assert dag.task_dict["distribute_regional"].pool == dag.task_dict["distribute"].pool
    assert dag.task_dict["verify"].trigger_rule == "all_done"


def test_distribute_is_mapped_in_the_pool(dag: Any) -> None:
    distribute = dag.task_dict["distribute"]
    assert type(distribute).__name__ == "MappedOperator"
    assert distribute.pool == "image_distribution"
    assert distribute.map_index_template == "{{ task.pair['lab_name'] }} / {{ task.pair['image_name'] }}"
    assert distribute.retries == 3


def test_params(dag: Any) -> None:
    params = dag.params
    assert params["labs"] == [] and params["image_paths"] == []
    assert params["capture"] is True and params["dry_run"] is False
    assert params["copy_poll_seconds"] == 15
    assert params.get_param("copy_poll_seconds").schema["minimum"] == 1
