"""Shared by the configuration tests: a writable copy of the valid fixture folder and helpers to break it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from image_factory.configuration import Finding

REPO = Path(__file__).resolve().parents[3]


FIXTURES = Path(__file__).parent / "fixtures"


VALID = FIXTURES / "valid"


TARGETS = {
    "labs": "labs.json",
    "factory": "factory.json",
    "golden": "GoldenImages/Win2016/Datacenter.json",
}


@pytest.fixture
def cfg(tmp_path: Path) -> Path:
    """A writable copy of the valid fixture configuration."""
    target = tmp_path / "Configuration"
    shutil.copytree(VALID, target)
    return target


def with_case(cfg: Path, kind: str, case: str) -> Path:
    """Replace one file of ``cfg`` by the fixture ``<kind>/<case>.json``; return the replaced file."""
    target = cfg / TARGETS[kind]
    shutil.copyfile(FIXTURES / kind / f"{case}.json", target)
    return target


def only(findings: tuple[Finding, ...], location: str) -> Finding:
    """The single finding at ``location``."""
    found = [f for f in findings if f.location == location]
    assert len(found) == 1, f"expected one finding at {location!r}, got {[str(f) for f in findings]}"
    return found[0]


def write_labs(cfg: Path, labs: list[dict[str, object]], name: str = "labs.json") -> Path:
    path = cfg / name
    path.write_text(json.dumps({"Labs": labs}, indent=2), encoding="utf-8")
    return path


LAB = {"SubscriptionId": "11111111-1111-4111-8111-111111111111", "LabName": "DevLab", "ImagePaths": ["Win2016"]}
