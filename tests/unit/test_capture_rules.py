"""Tests of image_factory.capture_rules: which factory VMs a run captures, and every reason to skip one."""

from __future__ import annotations

import pytest

from image_factory import naming
from image_factory.capture_rules import CaptureJob, SkippedVm, select_candidates
from image_factory.catalogue import Catalogue
from image_factory.models import FactoryVm, ImageVersion

VERSION = "2024-05-01"
GOLDEN = [
    "Win2012R2/VS2017.json",
    "Win2016/Datacenter.json",
    "Win2016/SQLExpress.json",
    "Ubuntu/Ubuntu2204.json",
]


def vm(name: str, path: str | None = "Win2016/Datacenter.json", **kwargs: object) -> FactoryVm:
    tags = dict(kwargs.pop("tags", {}))  # type: ignore[call-overload]
    if path is not None:
        tags["ImagePath"] = path
    return FactoryVm(name=name, tags=tags, os_disk_id=f"/disks/{name}-os", **kwargs)  # type: ignore[arg-type]


def select(vms: list[FactoryVm], catalogue: Catalogue | None = None) -> tuple[list[CaptureJob], dict[str, str]]:
    jobs, skipped = select_candidates(vms, catalogue or Catalogue(), VERSION, GOLDEN)
    assert all(isinstance(s, SkippedVm) for s in skipped)
    return jobs, dict(skipped)


def test_demo_world_factory() -> None:
    vms = [
        vm("vm-vs2017", "Win2012R2/VS2017.json"),
        vm("vm-datacenter", "Win2016/Datacenter.json"),
        vm("vm-sqlexpress", "Win2016/SQLExpress.json", tags={"ImageType": "Specialized"}),
        vm("vm-ubuntu", "Ubuntu/Ubuntu2204.json", os_type="Linux"),
        vm("vm-datacenter-wip", "Win2016/Datacenter.json", power_state="running"),
        vm("vm-scratch", None),
        vm("vm-broken", "Win2016/Datacenter.json", provisioning_state="Failed", power_state="running"),
    ]
    jobs, skipped = select(vms)
    assert {j.vm_name: (j.image_path, j.os_type, j.sysprep) for j in jobs} == {
        "vm-vs2017": ("Win2012R2/VS2017.json", "Windows", True),
        "vm-datacenter": ("Win2016/Datacenter.json", "Windows", True),
        "vm-sqlexpress": ("Win2016/SQLExpress.json", "Windows", False),
        "vm-ubuntu": ("Ubuntu/Ubuntu2204.json", "Linux", True),
    }
    assert set(skipped) == {"vm-datacenter-wip", "vm-scratch", "vm-broken"}
    assert "not deallocated" in skipped["vm-datacenter-wip"]
    assert "not generalized or still running" in skipped["vm-datacenter-wip"]
    assert skipped["vm-scratch"].startswith("untagged")
    assert "provisioning Failed" in skipped["vm-broken"]
    for job in jobs:
        assert job.version == VERSION
        assert job.image_name == naming.image_name(job.image_path, VERSION)
        assert job.os_disk_id == f"/disks/{job.vm_name}-os"


def test_job_uses_the_golden_file_spelling() -> None:
    jobs, _ = select([vm("a", "win2016\\DATACENTER.json")])
    assert jobs[0].image_path == "Win2016/Datacenter.json"
    assert jobs[0].image_name == naming.image_name("Win2016/Datacenter.json", VERSION)


@pytest.mark.parametrize(
    ("machine", "needle", "warning"),
    [
        (vm("x", None, tags={"Other": "1"}), "untagged", False),
        (vm("x", "  "), "untagged", False),
        (vm("x", power_state="running"), "not deallocated (running)", False),
        (vm("x", power_state="PowerState/stopped"), "not deallocated (stopped)", False),
        (vm("x", provisioning_state="Failed"), "provisioning Failed", False),
        (vm("x", provisioning_state="Creating"), "provisioning Creating", False),
        (vm("x", "Win2016"), "names no golden image file", True),
        (vm("x", "Win2016/Missing.json"), "names no golden image file", True),
        (vm("x", tags={"ImageType": "Sysprepped"}), "ImageType tag 'Sysprepped'", True),
        (vm("x", os_type="Solaris"), "neither Windows nor Linux", True),
    ],
)
def test_skip_reasons(machine: FactoryVm, needle: str, warning: bool) -> None:
    jobs, skipped = select_candidates([machine], Catalogue(), VERSION, GOLDEN)
    assert jobs == []
    assert len(skipped) == 1
    assert skipped[0].vm_name == "x"
    assert needle in skipped[0].reason
    assert skipped[0].is_warning is warning


@pytest.mark.parametrize(
    ("tags", "sysprep"),
    [
        ({}, True),
        ({"ImageType": "Generalized"}, True),
        ({"imagetype": "specialized"}, False),
        ({"ImageType": " Specialized "}, False),
    ],
)
def test_image_type_tag(tags: dict[str, str], sysprep: bool) -> None:
    jobs, skipped = select([vm("x", tags=tags)])
    assert skipped == {}
    assert jobs[0].sysprep is sysprep


def test_tag_names_are_case_insensitive_and_power_state_prefix_is_ignored() -> None:
    machine = FactoryVm(
        name="x", tags={"imagepath": "Ubuntu/Ubuntu2204.json"}, power_state="PowerState/deallocated", os_type="linux"
    )
    jobs, skipped = select([machine])
    assert skipped == {}
    assert jobs[0].os_type == "Linux"
    assert jobs[0].os_disk_id is None


def test_already_captured_for_this_version() -> None:
    name = naming.image_name("Win2016/Datacenter.json", VERSION)
    image = ImageVersion(name, "Win2016/Datacenter.json", VERSION, naming.vhd_blob(name), "Windows", True)
    older = ImageVersion("old", "Win2012R2/VS2017.json", "2024-04-30", "old.vhd", "Windows", True)
    jobs, skipped = select([vm("a"), vm("b", "Win2012R2/VS2017.json")], Catalogue(images=[image, older]))
    assert [j.vm_name for j in jobs] == ["b"]
    assert skipped == {"a": f"already captured for {VERSION} as {name}"}


def test_two_deallocated_vms_for_one_path_capture_the_first_by_name() -> None:
    vms = [vm("vm-z"), vm("VM-b", "win2016/datacenter.json"), vm("vm-a", power_state="running"), vm("vm-c")]
    for order in (vms, list(reversed(vms))):
        jobs, skipped = select(order)
        assert [j.vm_name for j in jobs] == ["VM-b"]
        assert set(skipped) == {"vm-a", "vm-c", "vm-z"}
        assert "VM-b has the same ImagePath" in skipped["vm-z"]
        assert "VM-b has the same ImagePath" in skipped["vm-c"]
        assert "not deallocated" in skipped["vm-a"]


def test_capture_job_dict_round_trip() -> None:
    jobs, _ = select([vm("x", tags={"ImageType": "Specialized"})])
    assert CaptureJob.from_dict(jobs[0].to_dict()) == jobs[0]


def test_no_vms() -> None:
    assert select_candidates([], Catalogue(), VERSION, GOLDEN) == ([], [])
