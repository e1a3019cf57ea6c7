"""Tests of image_factory.capture_rules: which factory VMs a run captures, every reason to skip one, and the
fingerprint rule (only a disk that changed since the newest catalogued version is captured, as ``<day>.N``)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from image_factory import naming
from image_factory.capture_rules import (
    CaptureDecision,
    CaptureJob,
    SkippedVm,
    decide_captures,
    select_candidates,
    source_of,
)
from image_factory.catalogue import Catalogue
from image_factory.models import CaptureSource, DiskFingerprint, FactoryVm, ImageVersion

VERSION = "2024-05-01"
DC = "Win2016/Datacenter.json"
LAB_VMS = (
    "/subscriptions/s/resourcegroups/rg-imagefactory/providers/microsoft.devtestlab/labs/imagefactory/virtualmachines"
)
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
    kwargs.setdefault("resource_id", f"{LAB_VMS}/{name}")
    return FactoryVm(name=name, tags=tags, os_disk_id=f"/disks/{name}-os", **kwargs)  # type: ignore[arg-type]


def disk(
    name: str, *, unique: str = "", created: str = "2024-04-01T00:00:00+00:00", owned: str = ""
) -> DiskFingerprint:
    """The fingerprint of ``name``'s OS disk as the compute hook returns it."""
    return DiskFingerprint(unique or f"uid-{name}", created, owned or "2024-04-30T22:00:00+00:00")


def decide(
    vms: list[FactoryVm],
    catalogue: Catalogue | None = None,
    disks: dict[str, DiskFingerprint | None] | None = None,
    **kwargs: object,
) -> CaptureDecision:
    """Both steps as the run takes them: candidates, one disk read each (``disks``, default: ``disk(name)``)."""
    candidates, skipped = select_candidates(vms, GOLDEN)
    found = disks or {}
    sources = {c.vm.name: source_of(c.vm, found.get(c.vm.name, disk(c.vm.name))) for c in candidates}
    decided = decide_captures(candidates, sources, catalogue or Catalogue(), VERSION, **kwargs)  # type: ignore[arg-type]
    return CaptureDecision(decided.jobs, skipped + decided.skipped, decided.summaries)


def select(vms: list[FactoryVm], catalogue: Catalogue | None = None) -> tuple[list[CaptureJob], dict[str, str]]:
    decided = decide(vms, catalogue)
    assert all(isinstance(s, SkippedVm) for s in decided.skipped)
    return decided.jobs, dict(decided.skipped)


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
    candidates, skipped = select_candidates([machine], GOLDEN)
    assert candidates == []
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


def test_already_captured_from_this_disk_is_unchanged() -> None:
    name = naming.image_name("Win2016/Datacenter.json", VERSION)
    image = replace(catalogued(DC, VERSION), source=source(vm("a")))
    older = ImageVersion("old", "Win2012R2/VS2017.json", "2024-04-30", "old.vhd", "Windows", True)
    jobs, skipped = select([vm("a"), vm("b", "Win2012R2/VS2017.json")], Catalogue(images=[image, older]))
    assert [j.vm_name for j in jobs] == ["b"]
    assert skipped == {"a": f"unchanged since {VERSION} ({name})"}


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
    assert select_candidates([], GOLDEN) == ([], [])
    assert decide([]) == CaptureDecision([], [], [])


# --- fingerprints: capture only what changed --------------------------------------------------------------


def catalogued(path: str, version: str, *, src: CaptureSource | None = None, run_id: str | None = None) -> ImageVersion:
    name = naming.image_name(path, version)
    return ImageVersion(
        name, path, version, naming.vhd_blob(name), "Windows", True, source_vm="vm-dc", source=src, run_id=run_id
    )


def source(machine: FactoryVm, fingerprint: DiskFingerprint | None = None) -> CaptureSource:
    found = source_of(machine, fingerprint or disk(machine.name))
    assert found is not None
    return found


def test_a_disk_unchanged_since_the_newest_version_is_skipped_saying_since_when() -> None:
    machine = vm("vm-dc")
    catalogue = Catalogue(
        images=[catalogued(DC, "2024-04-30.2", src=source(machine)), catalogued(DC, "2024-04-30", src=None)]
    )
    decided = decide([machine], catalogue)
    assert decided.jobs == []
    assert dict(decided.skipped) == {"vm-dc": f"unchanged since 2024-04-30.2 ({naming.image_name(DC, '2024-04-30.2')})"}
    assert decided.summary() == {DC: "unchanged since 2024-04-30.2"}


@pytest.mark.parametrize(
    "changed",
    [
        {"unique": "uid-rebuilt"},  # a rebuilt VM has a new disk
        {"created": "2024-04-30T23:00:00+00:00"},
        {"owned": "2024-05-01T01:00:00+00:00"},  # someone started the VM (and deallocated it again)
    ],
)
def test_a_changed_disk_is_captured(changed: dict[str, str]) -> None:
    machine = vm("vm-dc")
    catalogue = Catalogue(images=[catalogued(DC, "2024-04-30", src=source(machine))])
    decided = decide([machine], catalogue, {"vm-dc": disk("vm-dc", **changed)})
    assert [(j.vm_name, j.version) for j in decided.jobs] == [("vm-dc", VERSION)]
    assert decided.jobs[0].source == source(machine, disk("vm-dc", **changed))
    assert decided.summary() == {DC: f"captured {VERSION} from vm-dc"}


def test_another_os_disk_or_another_vm_is_a_change() -> None:
    machine = vm("vm-dc")
    newest = catalogued(DC, "2024-04-30", src=source(machine))
    for other in (replace(machine, os_disk_id="/disks/swapped"), replace(machine, resource_id=f"{LAB_VMS}/vm-new")):
        assert [j.vm_name for j in decide([other], Catalogue(images=[newest])).jobs] == ["vm-dc"]


def test_ids_compare_without_case_and_times_as_instants() -> None:
    machine = vm("vm-dc")
    recorded = replace(
        source(machine),
        vm_id=source(machine).vm_id.upper(),
        disk_unique_id="UID-VM-DC",
        disk_last_ownership_update_time="2024-04-30T23:00:00.000+01:00",
    )
    decided = decide([machine], Catalogue(images=[catalogued(DC, "2024-04-30", src=recorded)]))
    assert decided.jobs == []


@pytest.mark.parametrize(
    ("machine", "fingerprint"),
    [
        (vm("vm-dc"), None),  # the disk could not be read
        (vm("vm-dc"), DiskFingerprint(None, None, None)),  # ARM said nothing that identifies it
        (vm("vm-dc", resource_id=None), disk("vm-dc")),
    ],
)
def test_a_disk_that_cannot_be_compared_counts_as_changed(
    machine: FactoryVm, fingerprint: DiskFingerprint | None
) -> None:
    recorded = source(vm("vm-dc"), DiskFingerprint(None, None, None))
    catalogue = Catalogue(images=[catalogued(DC, "2024-04-30", src=recorded)])
    assert [j.vm_name for j in decide([machine], catalogue, {"vm-dc": fingerprint}).jobs] == ["vm-dc"]


def test_a_version_without_source_counts_as_changed_and_is_captured_once() -> None:
    machine = vm("vm-dc")
    old = catalogued(DC, "2024-04-30", src=None)  # an older sidecar, or the PowerShell factory's
    first = decide([machine], Catalogue(images=[old]))
    assert [j.version for j in first.jobs] == [VERSION]
    captured = catalogued(DC, VERSION, src=first.jobs[0].source)
    assert decide([machine], Catalogue(images=[captured, old])).jobs == []


def test_a_same_day_rebuild_is_the_days_next_version() -> None:
    machine = vm("vm-dc")
    today = catalogued(DC, VERSION, src=source(machine))
    decided = decide([machine], Catalogue(images=[today]), {"vm-dc": disk("vm-dc", unique="uid-rebuilt")})
    job = decided.jobs[0]
    assert job.version == f"{VERSION}.2"
    assert job.image_name == naming.image_name(DC, f"{VERSION}.2") != today.image_name
    assert decided.summary() == {DC: f"captured {VERSION}.2 from vm-dc"}
    # .10 is newer than .9 (as text it would not be): its source decides, and the next is .11.
    nine, ten = catalogued(DC, f"{VERSION}.9"), catalogued(DC, f"{VERSION}.10")
    assert decide([machine], Catalogue(images=[today, nine, replace(ten, source=source(machine))])).jobs == []
    later = decide([machine], Catalogue(images=[today, replace(nine, source=source(machine)), ten])).jobs
    assert [j.version for j in later] == [f"{VERSION}.11"]


def test_a_copy_started_but_not_catalogued_gets_the_same_version_and_name_again() -> None:
    machine = vm("vm-dc")
    today = catalogued(DC, VERSION, src=source(machine))
    rebuilt = {"vm-dc": disk("vm-dc", unique="uid-rebuilt")}
    first = decide([machine], Catalogue(images=[today]), rebuilt).jobs[0]
    # The retry reads the same catalogue (no sidecar was written yet): the operator adopts the copy by its name.
    again = decide([machine], Catalogue(images=[today]), rebuilt).jobs[0]
    assert again == first
    # Once the sidecar exists, the fingerprint says unchanged.
    done = catalogued(DC, first.version, src=first.source)
    assert decide([machine], Catalogue(images=[today, done], all_images=[today, done]), rebuilt).jobs == []


def test_a_sidecar_without_its_vhd_still_takes_its_version() -> None:
    machine = vm("vm-dc")
    broken = catalogued(DC, VERSION, src=source(machine))
    job = decide([machine], Catalogue(images=[], all_images=[broken])).jobs[0]
    assert job.version == f"{VERSION}.2"


def test_recapture_forces_the_paths_it_selects_once_per_run() -> None:
    dc, ub = vm("vm-dc"), vm("vm-ub", "Ubuntu/Ubuntu2204.json", os_type="Linux")
    images = [
        catalogued(DC, "2024-04-30", src=source(dc)),
        catalogued("Ubuntu/Ubuntu2204.json", "2024-04-30", src=source(ub)),
    ]
    decided = decide([dc, ub], Catalogue(images=images), recapture=["win2016"], run_id="manual__1")
    assert [(j.vm_name, j.version, j.run_id) for j in decided.jobs] == [("vm-dc", VERSION, "manual__1")]
    assert decided.summary() == {
        DC: f"captured {VERSION} from vm-dc",
        "Ubuntu/Ubuntu2204.json": "unchanged since 2024-04-30",
    }
    # A retry or re-run of that run finds its own capture and does not capture a .2.
    mine = catalogued(DC, VERSION, src=decided.jobs[0].source, run_id="manual__1")
    again = decide([dc], Catalogue(images=[mine, *images]), recapture=["win2016"], run_id="manual__1")
    assert again.jobs == []
    assert again.summary() == {DC: f"captured {VERSION} from vm-dc"}
    # Another run that asks again gets the day's next version.
    other = decide([dc], Catalogue(images=[mine, *images]), recapture=[DC], run_id="manual__2")
    assert [j.version for j in other.jobs] == [f"{VERSION}.2"]


def test_two_vms_for_one_path_compare_only_the_first_by_name() -> None:
    first, second = vm("vm-a"), vm("vm-b")
    catalogue = Catalogue(images=[catalogued(DC, "2024-04-30", src=source(first))])
    decided = decide([second, first], catalogue, {"vm-b": disk("vm-b", unique="uid-other")})
    assert decided.jobs == []
    assert "vm-a has the same ImagePath" in dict(decided.skipped)["vm-b"]
    assert dict(decided.skipped)["vm-a"].startswith("unchanged since 2024-04-30")


def test_a_capture_job_carries_its_source_through_xcom() -> None:
    job = decide([vm("vm-dc")], run_id="scheduled__x").jobs[0]
    assert job.source is not None and job.run_id == "scheduled__x"
    assert CaptureJob.from_dict(job.to_dict()) == job
