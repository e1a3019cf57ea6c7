"""Tests of image_factory.configuration.factory: factory.json, the FactorySettings model, the parse-time read."""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path
from typing import Any

import pytest

from image_factory.configuration import (
    FactorySettings,
    load_factory_settings,
    parse_time_settings,
    schema,
    validate_configuration,
)
from image_factory.configuration.factory import FACTORY_FIELDS
from image_factory.exceptions import ConfigurationError
from tests.unit.configuration.conftest import REPO, only, with_case

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
    ("misspelt_required", "Factory", 2, "missing required field 'LabName'; the unknown key 'Lab_Name' looks like a"),
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


#: (fixture, location, line, message) of the unknown keys factory.json may hold: warnings, the key is ignored.
FACTORY_WARNINGS = [
    ("unknown_key", "MaxConcurentJobs", 7, "unknown top-level key 'MaxConcurentJobs' is ignored; did you mean"
     " 'MaxConcurrentJobs'?"),
    ("misspelt_required", "Factory.Lab_Name", 5, "unknown key 'Lab_Name' is ignored; did you mean 'LabName'?"),
    ("misspelt_required", "Comment", 7, "unknown top-level key 'Comment' is ignored (known keys: $schema, Factory,"),
    ("misspelt_required", "Timeouts.ImageMinute", 8, "unknown key 'ImageMinute' is ignored; did you mean"
     " 'ImageMinutes'?"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "location", "line", "fragment"), FACTORY_WARNINGS)
def test_factory_warnings(cfg: Path, case: str, location: str, line: int, fragment: str) -> None:
    factory_file = with_case(cfg, "factory", case)
    warning = only(validate_configuration(cfg).warnings, location)
    assert (warning.file, warning.line, warning.severity) == (str(factory_file), line, "warning")
    assert fragment in warning.message


def test_unknown_keys_are_ignored_and_the_settings_load(cfg: Path) -> None:
    with_case(cfg, "factory", "unknown_key")
    report = validate_configuration(cfg)
    assert report.ok, [str(f) for f in report.errors]
    settings = load_factory_settings(cfg)
    assert settings.max_concurrent_jobs == FactorySettings("", "", "").max_concurrent_jobs
    assert parse_time_settings(cfg) == settings


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
        "Timeouts": {"CopyMinutes": 30, "ImageMinutes": 20}, "ReadSasHours": 2, "DiskAccessSeconds": 1800.0,
        "AdoptPowerShellImages": True, "FreshnessDays": 14,
        "ArmBudget": {"ReadsPerSecond": 15, "WritesPerSecond": 5, "DeletesPerSecond": 4, "Burst": 50,
                      "Concurrency": 3},
        "Notifications": {"Arguments": {"to": "ops@example.com"}},
        "Build": {"Enabled": True, "VmSize": "Standard_B2s", "AdminUser": "builder", "PasswordConnection": "pw",
                  "DeployMinutes": 90, "StopMinutes": 30},
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
        "disk_access_seconds": 1800,
        "notifications": {"Arguments": {"to": "ops@example.com"}},
        "adopt_powershell_images": True,
        "freshness_days": 14,
        "arm_reads_per_second": 15,
        "arm_writes_per_second": 5,
        "arm_deletes_per_second": 4,
        "arm_burst": 50,
        "arm_concurrency": 3,
        "build_enabled": True,
        "build_vm_size": "Standard_B2s",
        "build_admin_user": "builder",
        "build_password_conn_id": "pw",
        "build_deploy_minutes": 90,
        "build_stop_minutes": 30,
    }
    assert settings.arm_budget.rate("writes") == 5 and settings.arm_budget.concurrency == 3
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
        # An optional key without a default (None) documents none.
        name: default
        for name, default in model.items()
        if default is not dataclasses.MISSING and default is not None
    }
    assert set(FACTORY_FIELDS.values()) == set(model), "every FactorySettings field is read from factory.json"


# --- parse time and run time read the same factory.json -------------------------------------------------

#: A factory.json the validator accepts but a plain ``json.loads`` of ``factory.json`` misses: another file name,
#: a byte order mark, keys in another casing.
POWERSHELL_FACTORY = {
    "factory": {"SubscriptionId": "11111111-1111-4111-8111-111111111111", "resourceGroup": "rg-f", "LabName": "F"},
    "Schedule": "0 3 * * *",
    "pool": "nightly_copies",
}
WRITTEN_AS = [("Factory.json", "utf-8-sig"), ("FACTORY.JSON", "utf-16"), ("factory.json", "utf-8-sig")]


def write_factory(cfg: Path, name: str, encoding: str, doc: dict[str, Any] = POWERSHELL_FACTORY) -> Path:
    (cfg / "factory.json").unlink()
    path = cfg / name
    path.write_bytes(json.dumps(doc, indent=2).encode(encoding))
    return path


@pytest.mark.parametrize(("name", "encoding"), WRITTEN_AS[:2])
def test_a_dag_parsed_from_a_valid_factory_json_has_its_schedule_and_pool(
    cfg: Path, monkeypatch: pytest.MonkeyPatch, name: str, encoding: str
) -> None:
    from airflow.dag_processing.dagbag import DagBag

    write_factory(cfg, name, encoding)
    assert validate_configuration(cfg).ok, [str(f) for f in validate_configuration(cfg).errors]
    at_run_time = load_factory_settings(cfg)
    assert (at_run_time.schedule, at_run_time.pool) == ("0 3 * * *", "nightly_copies")

    monkeypatch.setenv("IMAGE_FACTORY_CONFIG_DIR", str(cfg))
    bag = DagBag(dag_folder=str(REPO / "dags"))
    assert bag.import_errors == {}
    dag = bag.dags["image_factory"]
    assert dag.schedule == at_run_time.schedule
    assert dag.task_dict["distribute"].pool == at_run_time.pool
    assert {task.pool for task in dag.tasks} - {"default_pool"} == {at_run_time.pool}


def test_a_dag_parsed_from_an_invalid_factory_json_still_imports(cfg: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.dag_processing.dagbag import DagBag

    with_case(cfg, "factory", "bad_cron")
    monkeypatch.setenv("IMAGE_FACTORY_CONFIG_DIR", str(cfg))
    bag = DagBag(dag_folder=str(REPO / "dags"))
    assert bag.import_errors == {}
    dag = bag.dags["image_factory"]
    assert (dag.schedule, dag.task_dict["distribute"].pool) == ("0 2 * * *", "image_distribution")


@pytest.mark.parametrize(("name", "encoding"), WRITTEN_AS)
def test_parse_time_settings_are_the_run_time_settings(cfg: Path, name: str, encoding: str) -> None:
    write_factory(cfg, name, encoding)
    assert parse_time_settings(cfg) == load_factory_settings(cfg)
    assert parse_time_settings(cfg).pool == "nightly_copies"


def test_parse_time_settings_read_the_configured_folder(cfg: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_factory(cfg, "Factory.json", "utf-8-sig")
    monkeypatch.setenv("IMAGE_FACTORY_CONFIG_DIR", str(cfg))
    assert parse_time_settings().schedule == "0 3 * * *"


def _break_factory(cfg: Path, how: str) -> Path:
    if how == "missing file":
        (cfg / "factory.json").unlink()
    elif how == "invalid cron":
        with_case(cfg, "factory", "bad_cron")
    elif how == "not JSON":
        (cfg / "factory.json").write_bytes(b"\xef\xbb\xbf{")
    else:
        return cfg / "no-such-folder"
    return cfg


@pytest.mark.parametrize("how", ["missing file", "invalid cron", "not JSON", "missing folder"])
def test_parse_time_falls_back_to_the_defaults_with_a_warning(
    cfg: Path, caplog: pytest.LogCaptureFixture, how: str
) -> None:
    folder = _break_factory(cfg, how)
    with pytest.raises(ConfigurationError):
        load_factory_settings(folder)  # the tasks refuse it at run time
    with caplog.at_level(logging.WARNING, logger="image_factory.configuration.factory"):
        settings = parse_time_settings(folder)
    defaults = FactorySettings(subscription_id="", resource_group="", lab_name="")
    assert settings == defaults
    assert (settings.schedule, settings.pool) == ("0 2 * * *", "image_distribution")
    (record,) = caplog.records
    assert "Using the default schedule and pool" in record.getMessage() and str(folder) in record.getMessage()


@pytest.mark.parametrize(
    ("overrides", "location", "fragment"),
    [
        (
            {"DiskAccessSeconds": 3600},
            "DiskAccessSeconds",
            "3600 s is shorter than a capture's copy may run (a copy may take Timeouts.CopyMinutes = 240 min)",
        ),
        ({"ReadSasHours": 3}, "ReadSasHours", "set ReadSasHours to at least 4"),
        (
            {"Timeouts": {"CopyMinutes": 601}},
            "DiskAccessSeconds",
            "set DiskAccessSeconds to at least 36060",
        ),
    ],
)
def test_read_access_must_outlive_the_copy_it_serves(
    cfg: Path, overrides: dict[str, Any], location: str, fragment: str
) -> None:
    path = cfg / "factory.json"
    doc = json.loads(path.read_text(encoding="utf-8"))
    doc.pop("DiskAccessSeconds", None)
    doc.update(overrides)
    path.write_text(json.dumps(doc), encoding="utf-8")
    finding = only(validate_configuration(cfg).errors, location)
    assert fragment in finding.message
    with pytest.raises(ConfigurationError, match=location):
        load_factory_settings(cfg)


def test_the_default_disk_access_outlives_the_default_copy_deadline() -> None:
    defaults = FactorySettings(subscription_id="s", resource_group="r", lab_name="l")
    assert defaults.disk_access_seconds >= defaults.copy_timeout_minutes * 60
    assert defaults.read_sas_hours * 60 >= defaults.copy_timeout_minutes
