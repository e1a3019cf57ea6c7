"""bench.regions: which copies cross a region."""

from __future__ import annotations

from bench.regions import cross_region_bytes
from bench.worlds import generate_world


def test_only_successful_copies_between_regions_count() -> None:
    world = generate_world(2, 1, 2)  # Lab000 in the factory's region, Lab001 in another
    accounts = {lab["name"]: lab["storage_account"] for lab in world["labs"]}
    factory, near, far = accounts["ImageFactory"], accounts["Lab000"], accounts["Lab001"]
    transfers = [
        {"status": "success", "bytes": 1, "source_account": factory, "destination_account": near},
        {"status": "success", "bytes": 10, "source_account": factory, "destination_account": far},
        {"status": "success", "bytes": 100, "source_account": None, "destination_account": far},
        {"status": "success", "bytes": 1000, "source_account": far, "destination_account": near},
        {"status": "failed", "bytes": 10000, "source_account": factory, "destination_account": far},
    ]
    assert cross_region_bytes(world, {"copies": {"transfers": transfers}}) == 1110
    assert cross_region_bytes(world, {}) == 0
