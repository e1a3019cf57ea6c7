"""bench.worlds writes the catalogue capture would write, without importing the product: held to the product here."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.worlds import catalogue_entries, catalogue_name, generate_world, image_paths, labs_json, write_config
from image_factory import naming
from image_factory.catalogue import parse_sidecar, sidecar_json
from image_factory.models import ImageVersion

VERSION = "2026-12-01"
WHEN = "2026-12-01T03:04:05+00:00"


@pytest.mark.parametrize("path", ["Gen/Image000.json", "Gen/Image049.json", "Win2016/Datacenter.json"])
def test_catalogue_name_is_the_products_image_name(path: str) -> None:
    assert catalogue_name(path, VERSION) == naming.image_name(path, VERSION)


def test_sidecars_are_the_ones_capture_writes() -> None:
    world = generate_world(2, 4, 1)
    vms = {vm["name"]: vm for vm in world["labs"][0]["vms"]}
    entries = catalogue_entries(world, VERSION, WHEN)
    assert [e.sidecar["imagePath"] for e in entries] == image_paths(world)
    for index, entry in enumerate(entries):
        vm = vms[entry.sidecar["sourceVm"]]
        image = ImageVersion(
            image_name=naming.image_name(vm["tags"]["ImagePath"], VERSION),
            image_path=vm["tags"]["ImagePath"],
            version=VERSION,
            vhd_blob=naming.vhd_blob(entry.name),
            os_type=vm["os_type"],
            sysprep=True,
            description=f"{vm['tags']['ImagePath']} captured for the benchmark",
            timestamp=WHEN,
            size_bytes=1024 * 1024 + 512,
            source_vm=vm["name"],
        )
        written = (json.dumps(entry.sidecar, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
        assert written == sidecar_json(image)
        assert parse_sidecar(entry.sidecar_blob, written) == image
        assert (entry.vhd_blob, entry.sidecar_blob) == (naming.vhd_blob(entry.name), naming.sidecar_blob(entry.name))
        assert entry.disk_seed == index + 1


def test_only_captured_vms_are_catalogued() -> None:
    world = generate_world(1, 3, 1)
    vms = world["labs"][0]["vms"]
    vms[0]["power_state"] = "running"
    vms[1]["provisioning_state"] = "Failed"
    assert [e.sidecar["sourceVm"] for e in catalogue_entries(world, VERSION, WHEN)] == [vms[2]["name"]]


def test_config_folder_matches_the_world(tmp_path: Path) -> None:
    world = generate_world(3, 2, 1)
    folder = write_config(tmp_path / "config", world, max_concurrent_jobs=7)
    factory = json.loads((folder / "factory.json").read_text(encoding="utf-8"))
    assert factory["MaxConcurrentJobs"] == 7
    assert factory["Factory"]["LabName"] == "ImageFactory"
    assert json.loads((folder / "labs.json").read_text(encoding="utf-8")) == labs_json(world)
    assert [lab["ImagePaths"] for lab in labs_json(world)["Labs"]] == [["Gen"]] * 3
    assert all((folder / "GoldenImages" / path).is_file() for path in image_paths(world))
