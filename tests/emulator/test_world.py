"""Reading a world file: creation times of labs, VMs and their OS disks."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from emulator.world import DEFAULT_CREATED, WorldError, parse_world
from tests.emulator.conftest import DEMO_WORLD


def _demo() -> dict[str, Any]:
    return dict(json.loads(DEMO_WORLD.read_text(encoding="utf-8")))


def test_creation_times_default_to_a_fixed_past_time() -> None:
    world = parse_world(_demo())
    assert {lab.created for lab in world.labs} == {DEFAULT_CREATED}
    assert {vm.created for lab in world.labs for vm in lab.vms} == {DEFAULT_CREATED}


def test_creation_times_cascade_from_world_to_lab_to_vm() -> None:
    data = copy.deepcopy(_demo())
    data["created"] = "2026-03-01T08:00:00Z"
    factory = data["labs"][0]
    factory["vms"][0]["created"] = "2026-04-02T10:30:00+02:00"
    data["labs"][1]["created"] = "2026-05-01T00:00:00"
    world = parse_world(data)
    assert world.labs[0].created == datetime(2026, 3, 1, 8, tzinfo=UTC)
    assert world.labs[0].vms[0].created == datetime(2026, 4, 2, 8, 30, tzinfo=UTC)
    assert world.labs[0].vms[1].created == datetime(2026, 3, 1, 8, tzinfo=UTC)
    assert world.labs[1].created == datetime(2026, 5, 1, tzinfo=UTC), "a time without offset is UTC"


def test_a_bad_creation_time_is_refused() -> None:
    data = copy.deepcopy(_demo())
    data["labs"][0]["vms"][0]["created"] = "last Tuesday"
    with pytest.raises(WorldError, match="vm-vs2017: 'created' must be an ISO 8601 time"):
        parse_world(data)
