"""What must survive retention: this run's planned versions, and the uploads to look for before deleting."""

from __future__ import annotations

from image_factory.models import LabInventory, LabRef, Pair, Plan
from image_factory.retention.decisions import Decision
from image_factory.retention.in_flight import planned_versions, upload_checks

SUB = "11111111-1111-4111-8111-111111111111"


def test_planned_versions_are_the_pairs_and_the_expectations() -> None:
    pair = Pair(
        "DevLab", SUB, "rg-dev", "westeurope", "n", "Ubuntu/Ubuntu2204.json", "2025-01-03", "n.vhd", "Linux", True
    )
    plan = Plan(pairs=(pair,), expected=(("TestLab", "Win2016/Datacenter.json", "2025-01-02"),))
    assert planned_versions(plan) == {
        ("Ubuntu/Ubuntu2204.json", "2025-01-03"),
        ("Win2016/Datacenter.json", "2025-01-02"),
    }


def _lab(name: str, paths: tuple[str, ...]) -> LabRef:
    return LabRef(SUB, name, paths, f"rg-{name.lower()}")


def test_upload_checks_cover_the_image_lab_and_every_subscribing_lab_of_a_catalogue_version() -> None:
    dev, test, down = _lab("DevLab", ("Win2016",)), _lab("TestLab", ("Ubuntu",)), _lab("Down", ("Win2016",))
    inventories = {
        dev.key: LabInventory(dev, "ok", resource_group="rg-dev-real"),
        test.key: LabInventory(test, "ok", resource_group="rg-test"),
        down.key: LabInventory(down, "forbidden"),
    }
    deletions = [
        Decision("delete", "catalogue_version", "(factory storage)", "dc-1", "old", "Win2016/Datacenter.json", "d1"),
        Decision("delete", "custom_image", "TestLab", "ub-1", "old", "Ubuntu/Ubuntu2204.json", "d1", SUB, "rg-test"),
        Decision("delete", "factory_vm", "ImageFactory", "vm-x", "captured", "Ubuntu/Ubuntu2204.json", None, SUB, "rg"),
    ]
    checks = upload_checks(deletions, [dev, test, down], inventories)
    assert {(c.lab_name, c.resource_group, c.blob, c.version) for c in checks} == {
        ("DevLab", "rg-dev-real", "dc-1.vhd", "d1"),
        ("TestLab", "rg-test", "ub-1.vhd", "d1"),
    }
