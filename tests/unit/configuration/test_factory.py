"""Tests of image_factory.configuration.factory: factory.json, the FactorySettings model, the parse-time read."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from image_factory.configuration import (
    FactorySettings,
    load_factory_settings,
    schema,
    validate_configuration,
)
from image_factory.configuration.factory import FACTORY_FIELDS
from image_factory.exceptions import ConfigurationError
from tests.unit.configuration.conftest import only, with_case

FACTORY_CASES = [
    ("bad_cron", "Schedule", 7, "'0 25 * * *' is not a valid five-field cron expression"),
    ("cron_seconds", "Schedule", 7, "'0 0 2 * * *' is not a valid five-field cron expression"),
    ("out_of_range", "MaxConcurrentJobs", 7, "0 is out of range: allowed 1..1000"),
    ("out_of_range", "ImagesToSave", 8, "101 is out of range: allowed 1..100"),
    ("too_many_jobs", "MaxConcurrentJobs", 7, "1001 is out of range: allowed 1..1000"),
    ("wrong_type", "MaxConcurrentJobs", 7, 'must be an integer, not a string ("20")'),
    ("wrong_type", "ImagesToSave", 8, "must be an integer, not a boolean (true)"),
    ("missing_factory", "", 1, "missing required field 'Factory'"),
    ("missing_factory_field", "Factory", 2, "missing required field 'ResourceGroup'"),
    ("unknown_key", "MaxConcurentJobs", 7, "unknown top-level key 'MaxConcurentJobs'; did you mean"),
    ("bad_factory_names", "Factory.SubscriptionId", 3, "is not a valid subscription ID"),
    ("bad_factory_names", "Factory.ResourceGroup", 4, '"rg imagefactory" is not a valid resource group name'),
    ("bad_factory_names", "Factory.LabName", 5, '"Image.Factory" is not a valid DevTest Lab name'),
    ("bad_factory_names", "Container", 7, '"ImageFactoryVHDs" is not a valid blob container name'),
]


@pytest.mark.parametrize(("case", "location", "line", "fragment"), FACTORY_CASES)
def test_factory_errors(cfg: Path, case: str, location: str, line: int, fragment: str) -> None:
    factory_file = with_case(cfg, "factory", case)
    finding = only(validate_configuration(cfg).errors, location)
    assert (finding.file, finding.line) == (str(factory_file), line)
    assert fragment in finding.message
    with pytest.raises(ConfigurationError) as raised:
        load_factory_settings(cfg)
    assert any(fragment in f for f in raised.value.findings)


def test_factory_settings_defaults(cfg: Path) -> None:
    with_case(cfg, "factory", "minimal")
    settings = load_factory_settings(cfg / "factory.json")
    assert settings == FactorySettings(
        subscription_id="11111111-1111-4111-8111-111111111111",
        resource_group="rg-imagefactory",
        lab_name="ImageFactory",
    )
    assert (settings.max_concurrent_jobs, settings.images_to_save, settings.schedule) == (20, 2, "0 2 * * *")


def test_factory_settings_every_key_is_mapped(cfg: Path) -> None:
    doc = {
        "Factory": {"SubscriptionId": "33333333-3333-4333-8333-333333333333", "ResourceGroup": "rg(x).y",
                    "LabName": "F_1"},
        "MaxConcurrentJobs": 7, "ImagesToSave": 5, "Schedule": "@daily", "Pool": "p.1", "Container": "c-1",
        "Connections": {"Arm": "arm2", "FactoryStorage": "st2"},
        "Timeouts": {"CopyMinutes": 30, "ImageMinutes": 20}, "ReadSasHours": 2, "DiskAccessSeconds": 900.0,
    }  # fmt: skip
    (cfg / "factory.json").write_text(json.dumps(doc), encoding="utf-8")
    settings = load_factory_settings(cfg)
    assert dataclasses.asdict(settings) == {
        "subscription_id": "33333333-3333-4333-8333-333333333333",
        "resource_group": "rg(x).y",
        "lab_name": "F_1",
        "max_concurrent_jobs": 7,
        "images_to_save": 5,
        "schedule": "@daily",
        "pool": "p.1",
        "container": "c-1",
        "arm_conn_id": "arm2",
        "storage_conn_id": "st2",
        "copy_timeout_minutes": 30,
        "image_timeout_minutes": 20,
        "read_sas_hours": 2,
        "disk_access_seconds": 900,
    }
    assert isinstance(settings.disk_access_seconds, int)


def _documented_defaults(node: dict[str, Any], path: tuple[str, ...] = ()) -> dict[tuple[str, ...], Any]:
    """Every ``default`` the factory schema documents, by the JSON path of its key."""
    found: dict[tuple[str, ...], Any] = {path: node["default"]} if "default" in node else {}
    for key, child in node.get("properties", {}).items():
        found.update(_documented_defaults(child, (*path, key)))
    return found


def test_schema_defaults_are_the_model_defaults() -> None:
    model = {f.name: f.default for f in dataclasses.fields(FactorySettings)}
    documented = _documented_defaults(schema.schema_doc(schema.FACTORY_SCHEMA))
    assert set(documented) <= set(FACTORY_FIELDS), "a documented default maps to no FactorySettings field"
    assert {FACTORY_FIELDS[path]: value for path, value in documented.items()} == {
        name: default for name, default in model.items() if default is not dataclasses.MISSING
    }
    assert set(FACTORY_FIELDS.values()) == set(model), "every FactorySettings field is read from factory.json"
