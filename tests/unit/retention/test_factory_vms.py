"""Factory clean-up decisions (pure): which factory VMs were captured, which go and which stay."""

from __future__ import annotations

from datetime import UTC, datetime

from image_factory.models import FactoryVm
from image_factory.retention.factory_vms import captured_vms, cleanup_plan
from tests.unit.catalogued import image_version as version

SUB = "11111111-1111-4111-8111-111111111111"


def test_factory_cleanup_rules() -> None:
    vms = [
        FactoryVm("vm-captured", {"ImagePath": "Ubuntu/Ubuntu2204.json"}, "Succeeded"),
        FactoryVm("vm-pending", {"ImagePath": "Win2016/Datacenter.json"}, "Succeeded"),
        FactoryVm("vm-broken", {"ImagePath": "Win2016/Datacenter.json"}, "Failed"),
        FactoryVm("vm-keep", {"ImagePath": "Ubuntu/Ubuntu2204.json", "factoryignore": ""}, "Failed"),
        FactoryVm("vm-scratch", {}, "Succeeded"),
    ]
    plan = cleanup_plan(
        vms=vms, captured_vms=["VM-CAPTURED"], where="ImageFactory", subscription_id=SUB, resource_group="rg-f"
    )
    assert {d.name: d.error for d in plan.deletions} == {"vm-broken": True, "vm-captured": False}
    kept = {k.name: k.reason for k in plan.kept}
    assert set(kept) == {"vm-pending", "vm-keep", "vm-scratch"}
    assert "FactoryIgnore" in kept["vm-keep"] and "untagged" in kept["vm-scratch"]


def _vm(name: str, tags: dict[str, str], created: datetime | None) -> FactoryVm:
    return FactoryVm(name=name, tags=tags, created=created)


def test_captured_vms_need_a_sidecar_naming_them_for_their_path_written_after_they_were_created() -> None:
    created = datetime(2025, 1, 2, 12, 0, tzinfo=UTC)
    path = {"ImagePath": "Win2016/Datacenter.json"}
    vms = [
        _vm("vm-done", path, created),
        _vm("VM-Upper", path, None),
        _vm("vm-recreated", path, created),
        _vm("vm-other-path", {"imagepath": "Ubuntu/Ubuntu2204.json"}, created),
        _vm("vm-untagged", {}, created),
        _vm("vm-never", path, created),
    ]
    images = [
        version("Win2016/Datacenter.json", "2025-01-03", vm="vm-done", ts="2025-01-03T02:00:00+00:00"),
        version("Win2016/Datacenter.json", "2025-01-03", name="x", vm="vm-upper", ts=""),
        version("Win2016/Datacenter.json", "2025-01-01", name="y", vm="vm-recreated", ts="2025-01-01T02:00:00+00:00"),
        version("Win2016/Datacenter.json", "2025-01-03", name="z", vm="vm-other-path", ts="2025-01-03T02:00:00+00:00"),
        version("Win2016/Datacenter.json", "2025-01-03", name="w", vm="vm-untagged", ts="2025-01-03T02:00:00+00:00"),
    ]
    assert captured_vms(vms, images) == {"vm-done", "VM-Upper"}


def test_a_captured_vm_started_again_is_kept() -> None:
    vms = [
        FactoryVm("vm-running", {"ImagePath": "Ubuntu/Ubuntu2204.json"}, "Succeeded", "running"),
        FactoryVm("vm-idle", {"ImagePath": "Ubuntu/Ubuntu2204.json"}, "Succeeded", "deallocated"),
    ]
    plan = cleanup_plan(
        vms=vms, captured_vms=["vm-running", "vm-idle"], where="F", subscription_id=SUB, resource_group="rg"
    )
    assert [d.name for d in plan.deletions] == ["vm-idle"]
    assert [(k.name, "running" in k.reason) for k in plan.kept] == [("vm-running", True)]
