"""The delete operator's checks before a deletion (pure): the factory's marker, or an adopted PowerShell image."""

from __future__ import annotations

import dataclasses

from image_factory.configuration import FactorySettings
from image_factory.models import MANAGED_BY_VALUE, LabImage
from image_factory.retention.operator import REFUSED, _refusal, delete_one

OFF = FactorySettings(subscription_id="s", resource_group="r", lab_name="l")
ON = dataclasses.replace(OFF, adopt_powershell_images=True)
PS = LabImage("Win2016_Datacenter-Nov-1-2026", "Succeeded", image_path="Win2016\\Datacenter.json")
OURS = LabImage("x", "Succeeded", image_path="Win2016/Datacenter.json", managed=True, managed_by=MANAGED_BY_VALUE)
ADOPTED = {"kind": "custom_image", "image_path": "Win2016/Datacenter.json", "adopted": True}


def test_a_factory_image_must_still_carry_the_marker() -> None:
    assert _refusal({"kind": "custom_image"}, OURS, OFF) is None
    assert "marker" in (_refusal({"kind": "custom_image"}, PS, ON) or "")


def test_an_adopted_image_needs_the_switch_and_must_still_be_the_powershell_image_of_its_path() -> None:
    assert _refusal(ADOPTED, PS, ON) is None
    assert "AdoptPowerShellImages is off" in (_refusal(ADOPTED, PS, OFF) or "")
    assert "no longer" in (_refusal({**ADOPTED, "image_path": "Ubuntu/Ubuntu2204.json"}, PS, ON) or "")
    assert "no longer" in (_refusal(ADOPTED, dataclasses.replace(PS, name="renamed"), ON) or "")
    assert "no longer" in (_refusal(ADOPTED, OURS, ON) or "")


def test_an_adopted_catalogue_version_is_refused_once_the_switch_is_off() -> None:
    item = {
        "kind": "catalogue_version",
        "where": "(factory storage)",
        "name": "g",
        "adopted": True,
        "blobs": ["g.json"],
    }
    assert delete_one(item, OFF).startswith(REFUSED)
