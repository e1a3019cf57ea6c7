"""Region fan-out: each VHD crosses a region boundary once per region, then copies inside the region."""

from __future__ import annotations

import pytest

from image_factory.fanout import fanout_waves, region_fanout, region_key
from image_factory.models import Pair


def pair(lab: str, location: str, image: str = "Ubuntu-2026-11-26-abc", cross: bool = True) -> Pair:
    return Pair(
        lab_name=lab,
        subscription_id="sub",
        resource_group=f"rg-{lab}",
        location=location,
        image_name=image,
        image_path="Ubuntu/Ubuntu2204.json",
        version="2026-11-26",
        vhd_blob=f"{image}.vhd",
        os_type="Linux",
        sysprep=True,
        cross_region=cross,
    )


def test_home_region_and_lonely_cross_region_pairs_copy_from_the_factory() -> None:
    pairs = [pair("Dev", "westeurope", cross=False), pair("QA", "northeurope")]
    direct, regional = fanout_waves(pairs)
    assert direct == pairs and regional == []
    assert not any(p.keep_upload for p in direct)


def test_one_seed_per_region_and_image_the_rest_copy_from_it() -> None:
    pairs = [
        pair("QA2", "northeurope"),
        pair("QA1", "northeurope"),
        pair("QA3", "North Europe"),
        pair("US1", "eastus"),
        pair("US2", "eastus"),
        pair("QA1", "northeurope", image="Win-2026-11-26-def"),
        pair("Dev", "westeurope", cross=False),
    ]
    direct, regional = fanout_waves(pairs)
    seeds = {(p.lab_name, p.image_name) for p in direct if p.keep_upload}
    assert seeds == {("QA1", "Ubuntu-2026-11-26-abc"), ("US1", "Ubuntu-2026-11-26-abc")}
    assert {(p.lab_name, p.source_lab) for p in regional} == {("QA2", "QA1"), ("QA3", "QA1"), ("US2", "US1")}
    assert all(p.source_resource_group == f"rg-{p.source_lab}" for p in regional)
    # Every pair exactly once, the lonely Windows image and the home-region pair direct from the factory.
    assert len(direct) + len(regional) == len(pairs)
    assert {(p.lab_name, p.image_name) for p in direct} >= {
        ("Dev", "Ubuntu-2026-11-26-abc"),
        ("QA1", "Win-2026-11-26-def"),
    }


def test_cross_region_bytes_are_one_copy_per_region_and_version() -> None:
    pairs = [pair(f"{region}-{i}", region) for region in ("northeurope", "eastus", "westus") for i in range(5)]
    direct, regional = fanout_waves(pairs)
    assert len(direct) == 3 and len(regional) == 12
    assert all(p.source_lab is None for p in direct)


def test_region_fanout_of_nothing() -> None:
    assert region_fanout([]) == {}


@pytest.mark.parametrize(("a", "b"), [("West Europe", "westeurope"), (" westEurope ", "WESTEUROPE"), (None, "")])
def test_region_key(a: str | None, b: str) -> None:
    assert region_key(a) == region_key(b)
