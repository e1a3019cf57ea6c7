"""The ported DistributeImages (bench/baseline.py) against the local Azure: a tiny world, tiny timings."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bench.baseline import (
    LISTKEYS_SUBSTITUTE,
    BaselineSettings,
    DistributeImages,
    Endpoints,
    resource_group_of,
    should_copy_image_to_lab,
)
from bench.worlds import generate_world, image_paths, seed_catalogue, write_world

REPO = Path(__file__).resolve().parents[3]
FACTORY_SUB = "11111111-1111-4111-8111-111111111111"


def test_prefix_match_is_raw_and_case_sensitive() -> None:
    lab = {"ImagePaths": ["Win2016"]}
    assert should_copy_image_to_lab(lab, "Win2016/Datacenter.json")
    assert should_copy_image_to_lab(lab, "Win2016Core/Datacenter.json")  # the original's weakness, kept
    assert should_copy_image_to_lab(lab, "Win2016\\Datacenter.json")
    assert not should_copy_image_to_lab(lab, "win2016/Datacenter.json")
    assert not should_copy_image_to_lab({"ImagePaths": []}, "Win2016/Datacenter.json")


def test_resource_group_of_lower_case_id() -> None:
    rid = "/subscriptions/s/resourcegroups/rg-dev/providers/microsoft.devtestlab/labs/devlab"
    assert resource_group_of(rid) == "rg-dev"
    with pytest.raises(ValueError, match="no resource group"):
        resource_group_of("/subscriptions/s")


@pytest.fixture(scope="module")
def world() -> dict[str, Any]:
    # Lab000 westeurope, Lab001 northeurope (refused), Lab002 westeurope; two images.
    return generate_world(3, 2, 2, copy_seconds=0.5, lro_seconds=0.3)


@pytest.fixture(scope="module")
def azure(tmp_path_factory: pytest.TempPathFactory, world: dict[str, Any]) -> Iterator[Any]:
    if not (REPO / "node_modules" / "azurite").is_dir() or shutil.which("node") is None:
        pytest.skip("Azurite (node_modules/azurite) is needed for the local Azure")
    from stack.localazure import start_local_azure

    tmp = tmp_path_factory.mktemp("baseline")
    path = write_world(tmp / "world.json", world)
    local = start_local_azure(world=path, state_dir=tmp / "state", log_dir=tmp / "logs")
    try:
        yield local
    finally:
        local.stop()


def _settings(world: dict[str, Any]) -> BaselineSettings:
    labs = {lab["name"]: lab for lab in world["labs"]}
    entries = [
        {"SubscriptionId": labs["Lab000"]["subscription"], "LabName": "Lab000", "ImagePaths": ["Gen"]},
        {"SubscriptionId": labs["Lab001"]["subscription"], "LabName": "Lab001", "ImagePaths": ["Gen"]},
        # "Gen/Image001" is no whole file name: the raw prefix still selects Gen/Image001.json.
        {"SubscriptionId": labs["Lab002"]["subscription"], "LabName": "lab002", "ImagePaths": ["Gen/Image001"]},
        {"SubscriptionId": FACTORY_SUB, "LabName": "NoSuchLab", "ImagePaths": ["Gen/Image000.json"]},
    ]
    return BaselineSettings(
        factory_subscription_id=FACTORY_SUB,
        factory_lab_name="ImageFactory",
        labs=entries,
        max_concurrent_jobs=1,
        throttle_seconds=0.2,
        copy_poll_seconds=0.2,
    )


def test_baseline_distributes_like_the_original(azure: Any, world: dict[str, Any]) -> None:
    names = dict(zip(image_paths(world), seed_catalogue(azure.info, world), strict=True))
    img0, img1 = names["Gen/Image000.json"], names["Gen/Image001.json"]
    azure.post("/reset-stats", {})

    result = DistributeImages(Endpoints.from_emulator(azure.info), _settings(world)).run()

    assert sorted(result.created) == sorted([("Lab000", img0), ("Lab000", img1), ("lab002", img1)])
    assert result.source_images == 2
    assert result.pairs_matched == 6
    assert result.refused_region == 2
    assert result.lab_not_found == 1
    assert result.throttle_waits >= 1  # one job at a time, three copies
    assert any("Lab001" in e and "northeurope" in e for e in result.errors)

    state = azure.state()
    images = {lab["name"]: {i["name"]: i for i in lab["images"]} for lab in state["labs"]}
    assert set(images["Lab000"]) == {img0, img1}
    assert set(images["Lab002"]) == {img1}
    assert images["Lab001"] == {}
    made = images["Lab000"][img0]
    assert made["provisioning_state"] == "Succeeded"
    assert made["tags"] == {"ImagePath": "Gen/Image000.json"}
    assert made["vhd"]["sysPrep"] is True
    vm_os = {vm["tags"]["ImagePath"]: vm["os_type"] for vm in world["labs"][0]["vms"]}
    assert made["vhd"]["osType"] == vm_os["Gen/Image000.json"]

    stats = azure.stats()
    requests = stats["arm"]["requests"]
    # listKeys substitute: factory twice, once per pair whose lab was found (5), once per copy at the end (3).
    assert result.cmdlets[LISTKEYS_SUBSTITUTE] == 10
    assert requests["Labs_GenerateUploadUri"] == 10
    assert requests["CustomImages_CreateOrUpdate"] == 3
    assert requests["Labs_ListBySubscription"] == result.cmdlets["Find-AzureRmResource"]
    assert stats["copies"]["completed"] == 3
    assert stats["copies"]["max_pending"] == 1
    arm_calls = [c for c in result.calls if c.service == "arm"]
    assert len(arm_calls) >= sum(requests.values())  # the client saw (at least) what the server counted
    # The copied VHDs are deleted once their image exists.
    uploads = [
        b
        for acct, containers in state["blobs"].items()
        if acct.startswith("lab")
        for name, blobs in containers.items()
        if name == "uploads"
        for b in blobs
    ]
    assert uploads == []


def test_second_run_skips_existing_images(azure: Any, world: dict[str, Any]) -> None:
    azure.post("/reset-stats", {})
    result = DistributeImages(Endpoints.from_emulator(azure.info), _settings(world)).run()
    assert result.jobs == []
    assert result.skipped_existing == 3
    assert azure.stats()["copies"]["started"] == 0
