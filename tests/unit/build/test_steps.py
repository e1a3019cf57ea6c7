"""The clean-up after capture: the VMs this run built are deleted once catalogued, the others kept and named."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from image_factory import naming
from image_factory.build import steps
from image_factory.build.outcomes import BUILD_TASK_ID, LIST_TASK_ID, SUMMARY_XCOM_KEY
from image_factory.catalogue import sidecar_json
from image_factory.models import FactoryVm, ImageVersion
from tests.unit.test_tasks import DATACENTER, VERSION, FakeArm, FakeTi, _run

BUILT_AT = datetime(2026, 12, 1, 2, 5, tzinfo=UTC)


@dataclass
class DeletingArm(FakeArm):
    deleted: list[str] = field(default_factory=list)

    def delete_vm(self, subscription_id: str, resource_group: str, lab_name: str, vm_name: str) -> bool:
        self.deleted.append(vm_name)
        return True


@dataclass
class Catalogue:
    """One version of Datacenter, captured from ``Datacente-aaaaa`` after it was built."""

    def list_catalogue(self, container: str) -> tuple[list[tuple[str, bytes]], set[str]]:
        name = naming.image_name(DATACENTER, VERSION)
        image = ImageVersion(
            image_name=name,
            image_path=DATACENTER,
            version=VERSION,
            vhd_blob=naming.vhd_blob(name),
            os_type="Windows",
            sysprep=True,
            size_bytes=1024,
            source_vm="Datacente-aaaaa",
            timestamp="2026-12-01T02:30:00+00:00",
        )
        return [(naming.sidecar_blob(name), sidecar_json(image))], {naming.vhd_blob(name)}


def _vm(name: str, path: str) -> FactoryVm:
    return FactoryVm(name=name, tags={"ImagePath": path}, created=BUILT_AT)


def test_built_vms_are_deleted_once_captured_and_the_others_left_alone() -> None:
    ti = FakeTi()
    built = [
        {"image_path": DATACENTER, "vm_name": "Datacente-aaaaa", "action": "built"},
        {"image_path": "Ubuntu/Ubuntu2204.json", "vm_name": "Ubuntu2204-bbbbb", "action": "built"},
    ]
    ti.store[(LIST_TASK_ID, "return_value")] = [{}, {}, {}]
    ti.store[(LIST_TASK_ID, SUMMARY_XCOM_KEY)] = {"building": True}
    ti.store[(BUILD_TASK_ID, "return_value")] = [*built, None]  # the third build failed
    run = _run(ti)
    run.arm = DeletingArm(
        vms=[
            _vm("Datacente-aaaaa", DATACENTER),
            _vm("Ubuntu2204-bbbbb", "Ubuntu/Ubuntu2204.json"),  # its capture failed: kept for a look
            _vm("vm-datacenter", DATACENTER),  # built by hand: never this step's business
        ]
    )
    run.catalogue = Catalogue()  # type: ignore[assignment]
    assert steps.clean_built(run) == {"deleted": ["Datacente-aaaaa"], "kept": ["Ubuntu2204-bbbbb"]}
    assert run.arm.deleted == ["Datacente-aaaaa"]


def test_a_night_that_built_nothing_cleans_nothing() -> None:
    run = _run(FakeTi())
    run.arm = DeletingArm(vms=[_vm("vm-datacenter", DATACENTER)])
    assert steps.clean_built(run) == {"deleted": [], "kept": []}
    assert run.arm.deleted == []
