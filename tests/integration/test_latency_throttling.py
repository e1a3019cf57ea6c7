"""A night against a local Azure as slow and as strict as Azure: ARM ~100 ms (p99 400 ms), storage ~20 ms, and
ARM's token-bucket throttling on. The factory's concurrent, paced reads and its writes stay within the budget."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import REPO, WORLD, LocalAzure, run_dag, running_local_azure

pytestmark = [pytest.mark.emulator, pytest.mark.airflow]

AZURE_LIKE = {
    "arm_latency": {"median_ms": 100, "p99_ms": 400},
    "storage_latency": {"median_ms": 20, "p99_ms": 60},
    "throttling": True,
}


@pytest.fixture(scope="module")
def slow_azure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalAzure]:
    """A local Azure of its own (the demo world), with Azure's latency and ARM's throttling."""
    with running_local_azure(REPO / WORLD, Path(tmp_path_factory.mktemp("slow-azure"))) as azure:
        azure.configure(**AZURE_LIKE)
        yield azure


def test_a_night_within_arms_budget(slow_azure: LocalAzure, airflow_home: dict[str, str]) -> None:
    env = {**airflow_home, **slow_azure.connection_env()}
    slow_azure.reset_stats()
    result = run_dag(env, {"copy_poll_seconds": 1}, "2025-04-01T02:00:00")
    assert result["state"] == "success", result["log"]
    assert result["tasks"]["distribute"].count("success") == 7

    stats: dict[str, Any] = slow_azure.stats()
    arm = stats["arm"]
    assert arm["throttling"]["enabled"] is True
    assert arm["throttling"]["refused"] == {}, "the factory's own requests never empty a bucket"
    assert arm["latency"]["arm"]["delayed"] >= sum(arm["requests"].values()), "every ARM request waited"
    assert arm["latency"]["storage"]["delayed"] > 0
    images = {lab["name"]: lab.get("images", []) for lab in slow_azure.state()["labs"]}
    assert (len(images["DevLab"]), len(images["TestLab"]), len(images["QALab"])) == (3, 2, 2)
    assert all(i["provisioning_state"] == "Succeeded" for lab in ("DevLab", "TestLab", "QALab") for i in images[lab])
