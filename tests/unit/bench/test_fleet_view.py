"""P8's snapshot, written by the bench from the documented format, is what the product's fleet model reads."""

from __future__ import annotations

from datetime import UTC, datetime

from bench.fleet_view import fleet_snapshot
from image_factory.fleet.model import build_fleet


def test_the_bench_snapshot_makes_the_fleet_it_says() -> None:
    now = datetime(2026, 12, 1, 12, tzinfo=UTC)
    fleet = build_fleet([fleet_snapshot(20, 15, now=now)], now=now)
    assert (len(fleet.labs), len(fleet.image_paths)) == (20, 15)
    assert fleet.counts()["behind"] == 2 * 15, "one lab in ten holds the older version only"
    assert fleet.counts()["current"] == 18 * 15
    assert all(len(versions) == 2 for versions in fleet.catalogue.values())
