"""Run the image_factory DAG with dag.test() against the local Azure (demo world)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.conftest import LocalAzure, run_dag

pytestmark = [pytest.mark.emulator, pytest.mark.airflow]

FAST = {"copy_poll_seconds": 1}
DATE = "2025-03-01T02:00:00"


def _custom_images(state: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Map lab name → its custom images, from the emulator's /state document."""
    found: dict[str, list[dict[str, Any]]] = {}
    for lab in state.get("labs", []):
        found[lab["name"]] = list(lab.get("images", []))
    return found


@pytest.fixture(scope="module")
def env(local_azure: LocalAzure, airflow_home: dict[str, str]) -> dict[str, str]:
    return {**airflow_home, **local_azure.connection_env()}


def test_dry_run_changes_nothing(local_azure: LocalAzure, env: dict[str, str]) -> None:
    before = local_azure.state()
    result = run_dag(env, {**FAST, "dry_run": True}, "2025-02-27T02:00:00")
    assert result["state"] == "success", result["log"]
    assert local_azure.state() == before


def test_first_run_distributes_all_pairs_then_rerun_does_nothing(local_azure: LocalAzure, env: dict[str, str]) -> None:
    local_azure.reset_stats()
    result = run_dag(env, FAST, DATE)
    assert result["state"] == "success", result["log"]
    assert result["tasks"]["distribute"].count("success") == 7
    assert result["tasks"]["capture.capture_vm"].count("success") == 4

    images = _custom_images(local_azure.state())
    assert len(images["DevLab"]) == 3
    assert len(images["TestLab"]) == 2
    assert len(images["QALab"]) == 2
    flags = {}
    for lab in ("DevLab", "TestLab", "QALab"):
        for image in images[lab]:
            assert image["provisioning_state"] == "Succeeded"
            assert image["tags"]["ImageFactory.ManagedBy"] == "airflow-image-factory"
            assert image["tags"]["ImageFactory.Version"] == "2025-03-01"
            flags[image["tags"]["ImagePath"]] = (image["vhd"]["osType"], image["vhd"].get("sysPrep"))
    assert flags["Win2016/SQLExpress.json"] == ("Windows", False)
    assert flags["Ubuntu/Ubuntu2204.json"] == ("Linux", True)
    assert flags["Win2016/Datacenter.json"] == ("Windows", True)

    local_azure.reset_stats()
    again = run_dag(env, FAST, DATE)
    assert again["state"] == "success", again["log"]
    stats = local_azure.stats()
    assert stats["copies"]["started"] == 0
    assert stats["arm"]["writes"] == 0
