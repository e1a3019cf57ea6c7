"""Region fan-out with dag.test() on a local Azure: a VHD crosses into a region once, then copies inside it."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import REPO, LocalAzure, run_dag, running_local_azure

pytestmark = [pytest.mark.emulator, pytest.mark.airflow]

NORTH_LAB = {
    "name": "NorthLab",
    "subscription": "22222222-2222-4222-8222-222222222222",
    "resource_group": "rg-north",
    "location": "northeurope",
    "storage_account": "northlabstore",
}
NORTH_ACCOUNTS = {"qalabstore", "northlabstore"}


@pytest.fixture(scope="module")
def north_azure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalAzure]:
    """The demo world plus a second lab in QALab's region (northeurope)."""
    tmp = tmp_path_factory.mktemp("fanout-azure")
    world = json.loads((REPO / "emulator" / "worlds" / "demo.json").read_text())
    world["labs"].append(dict(NORTH_LAB))
    sub = next(s for s in world["subscriptions"] if s["id"] == NORTH_LAB["subscription"])
    sub["resource_groups"].append({"name": NORTH_LAB["resource_group"]})
    (tmp / "world.json").write_text(json.dumps(world))
    with running_local_azure(tmp / "world.json", tmp / "s") as azure:
        yield azure


@pytest.fixture(scope="module")
def north_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("fanout-config") / "Configuration"
    shutil.copytree(REPO / "Configuration", folder)
    labs = json.loads((folder / "labs.json").read_text())
    labs["Labs"].append(
        {
            "SubscriptionId": NORTH_LAB["subscription"],
            "LabName": NORTH_LAB["name"],
            "ResourceGroup": NORTH_LAB["resource_group"],
            "ImagePaths": ["Ubuntu"],
        }
    )
    (folder / "labs.json").write_text(json.dumps(labs))
    return folder


def test_a_version_crosses_into_a_region_once(
    north_azure: LocalAzure, north_config: Path, airflow_home: dict[str, str]
) -> None:
    env = {**airflow_home, **north_azure.connection_env(), "IMAGE_FACTORY_CONFIG_DIR": str(north_config)}
    result = run_dag(env, {"copy_poll_seconds": 1, "retire": False}, "2025-04-01T02:00:00")
    assert result["state"] == "success", result["log"]
    assert result["tasks"]["distribute_regional"].count("success") == 1

    state = north_azure.state()
    labs = {lab["name"]: lab.get("images", []) for lab in state["labs"]}
    assert [i["tags"]["ImagePath"] for i in labs["NorthLab"]] == ["Ubuntu/Ubuntu2204.json"]
    assert sorted(i["tags"]["ImagePath"] for i in labs["QALab"]) == [
        "Ubuntu/Ubuntu2204.json",
        "Win2016/SQLExpress.json",
    ]
    transfers = north_azure.stats()["copies"]["transfers"]
    ubuntu = [t for t in transfers if t["blob"].startswith("Ubuntu") and t["destination_account"] in NORTH_ACCOUNTS]
    from_factory = [t for t in ubuntu if t["source_account"] == "factorystore"]
    inside = [t for t in ubuntu if t["source_account"] in NORTH_ACCOUNTS]
    assert len(from_factory) == 1, "the Ubuntu VHD crosses into northeurope once"
    assert len(inside) == 1 and inside[0]["source_account"] == from_factory[0]["destination_account"]
    leftovers = [
        f"{account}/{blob['name']}"
        for account, containers in state["blobs"].items()
        for blob in containers.get("uploads", [])
    ]
    assert leftovers == [], "the seed's kept upload is cleaned up after the region's copies"
