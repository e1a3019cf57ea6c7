"""Tests of image_factory.configuration.schema: the shipped JSON Schemas and the messages of their errors."""

from __future__ import annotations

import json
import time
from importlib import resources
from pathlib import Path

import pytest

from image_factory.configuration import (
    schema,
    validate_configuration,
)
from tests.unit.configuration.conftest import LAB, only, write_labs


@pytest.mark.parametrize("name", ["labs.schema.json", "factory.schema.json"])
def test_shipped_schemas_are_valid_draft_2020_12(name: str) -> None:
    from jsonschema import Draft202012Validator

    shipped = resources.files("image_factory.configuration").joinpath("schemas", name)
    document = json.loads(shipped.read_text(encoding="utf-8"))
    assert document["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(document)


def test_resource_group_with_trailing_newline_is_refused(cfg: Path) -> None:
    write_labs(cfg, [dict(LAB, ResourceGroup="rg-dev\n")])
    finding = only(validate_configuration(cfg).errors, "Labs[0].ResourceGroup")
    assert "is not a valid resource group name" in finding.message


def test_hundred_thousand_labs_are_refused_by_max_items_quickly(cfg: Path) -> None:
    labs = [dict(LAB, LabName=f"Lab{i:06d}") for i in range(100_000)]
    labs_file = write_labs(cfg, labs)
    started = time.monotonic()
    report = validate_configuration(cfg)
    elapsed = time.monotonic() - started
    assert [f.location for f in report.errors] == ["Labs"]
    (finding,) = report.errors
    assert (finding.file, finding.line) == (str(labs_file), 2)
    assert "has 100,000 items; at most 5,000 are allowed" in finding.message
    assert elapsed < 10, f"took {elapsed:.1f}s"


def test_schema_errors_are_capped(cfg: Path) -> None:
    write_labs(cfg, [dict(LAB, LabName=f"bad name {i}") for i in range(200)])
    errors = validate_configuration(cfg).errors
    assert len([e for e in errors if e.location.endswith(".LabName")]) == schema.MAX_SCHEMA_ERRORS
    assert any("stopped checking" in e.message for e in errors)
