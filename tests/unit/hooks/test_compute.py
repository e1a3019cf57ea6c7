"""Compute hook helpers: managed disk ids."""

from __future__ import annotations

from image_factory.hooks.compute import parse_disk_id


def test_ids_parse() -> None:
    assert parse_disk_id("/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/disks/d") == ("s", "g", "d")
