"""bench.nights: the P7 world, which copies are captures, what the original's capture copies, and the figures."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from bench import worlds
from bench.nights import (
    NIGHTS,
    REBUILT_VM,
    CopyTally,
    Night,
    capture_everything,
    copy_tally,
    night_dates,
    night_figures,
    night_goals,
    nights_labs_json,
    nights_world,
    selectors_for,
    vhd_bytes,
    wanted_by,
)

MIB = worlds.MIB


def _transfer(account: str, container: str, copied: int, status: str = "success") -> dict[str, Any]:
    return {"destination_account": account, "container": container, "bytes": copied, "copied": copied, "status": status}


def test_labs_want_different_images_and_the_rebuilt_one_is_wanted_by_three() -> None:
    world = nights_world()
    labs = nights_labs_json(world)
    paths = worlds.image_paths(world)
    assert [lab["ImagePaths"] for lab in labs["Labs"]] == [["Gen"], ["Gen"], paths[:2], paths[2:]]
    assert [wanted_by(labs, path) for path in paths] == [3, 3, 3]
    assert [vm["disk_size_mib"] for vm in worlds.factory_lab(world)["vms"]] == [1, 2, 3]
    assert vhd_bytes(world, REBUILT_VM) == 2 * MIB + 512
    assert selectors_for(6, paths) == paths[:2], "the pattern repeats every four labs"


def test_nights_are_one_day_apart_at_two_and_all_before_today() -> None:
    dates = night_dates(3, datetime(2026, 12, 1, 11, 41, tzinfo=UTC))
    assert dates == ["2026-11-28T02:00:00+00:00", "2026-11-29T02:00:00+00:00", "2026-11-30T02:00:00+00:00"]


def test_copies_into_the_factory_catalogue_are_captures_the_rest_distributions() -> None:
    stats = {
        "copies": {
            "transfers": [
                _transfer("factorystore", "imagefactoryvhds", 100),
                _transfer("lab000store", "uploads", 10),
                _transfer("lab001store", "uploads", 1),
                _transfer("factorystore", "uploads", 1000),  # a lab of the factory's own account would be a target
                _transfer("lab002store", "uploads", 4, status="failed"),  # the part it moved before failing
            ]
        }
    }
    tally = copy_tally(stats)
    assert tally == CopyTally(capture_copies=1, capture_bytes=100, distribution_copies=4, distribution_bytes=1015)
    assert (tally.copies, tally.bytes) == (5, 1115)
    assert copy_tally({}) == CopyTally()


def test_the_originals_capture_copies_every_capturable_vms_disk_blob() -> None:
    def vm(name: str, size: int, **state: str) -> dict[str, Any]:
        blob = f"diskstore/disks/{name}.vhd"
        return {
            "name": name,
            "tags": {"ImagePath": f"Gen/{name}.json"},
            "power_state": state.get("power", "deallocated"),
            "provisioning_state": state.get("provisioning", "Succeeded"),
            "os_disk": {"blob": blob, "size_bytes": size},
        }

    state = {
        "labs": [
            {"name": "Lab000", "vms": [vm("elsewhere", MIB)]},
            {
                "name": worlds.FACTORY_LAB,
                "vms": [
                    vm("a", MIB),
                    vm("b", 2 * MIB),
                    vm("running", MIB, power="running"),
                    vm("failed", MIB, provisioning="Failed"),
                    {**vm("untagged", MIB), "tags": {}},
                ],
            },
        ],
        "blobs": {"diskstore": {"disks": [{"name": "a.vhd", "size": MIB + 512}]}},
    }
    # b's blob is not listed: its disk size plus the footer stands in.
    assert capture_everything(state) == CopyTally(capture_copies=2, capture_bytes=3 * MIB + 1024)


def _night(number: int, tally: CopyTally, writes: int, seconds: float = 10.04) -> Night:
    return Night(number, tally, writes, seconds)


def test_figures_put_ours_beside_the_baseline_night_by_night_with_the_goals() -> None:
    world = nights_world()
    goals = night_goals(world, nights_labs_json(world))
    everything = CopyTally(3, 300, 9, 900)
    baseline = [_night(n, everything, 9) for n in (1, 2, 3)]
    ours = [_night(1, everything, 9), _night(2, CopyTally(), 0), _night(3, CopyTally(1, 100, 3, 300), 3)]
    figures = {f.key: f for f in night_figures(ours, baseline, goals)}
    assert len(figures) == 7 * len(NIGHTS) + 1
    quiet = figures["night2_bytes"]
    assert (quiet.ours, quiet.baseline, quiet.goal, quiet.unit) == (0, 1200, "0", "B")
    assert (figures["night3_distribution_copies"].ours, figures["night3_distribution_copies"].goal) == (
        3,
        "= 3 (labs that want it)",
    )
    assert figures["night3_bytes"].goal == f"= {4 * (2 * MIB + 512)}"
    assert figures["night1_capture_copies"].goal == "= 3"
    assert figures["night1_seconds"].ours == 10.0
    assert figures["night2_arm_writes"].ratio() == 0.0
    total = figures["bytes_all_nights"]
    assert (total.ours, total.baseline) == (1200 + 0 + 400, 3600)


@pytest.mark.parametrize("ours", [None, []])
def test_without_ours_the_baseline_figures_stay_and_ours_are_empty(ours: list[Night] | None) -> None:
    baseline = [_night(n, CopyTally(3, 300, 9, 900), 9) for n in (1, 2, 3)]
    figures = night_figures(ours, baseline, {})
    assert all(f.ours is None for f in figures)
    assert figures[-1].baseline == 3600
