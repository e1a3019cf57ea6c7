"""Tests of image_factory.configuration.validator: a whole configuration folder, validated or loaded."""

from __future__ import annotations

from pathlib import Path

import pytest

from image_factory import imagepaths
from image_factory.configuration import (
    find_labs_file,
    golden_images,
    load_configuration,
    validate_configuration,
)
from image_factory.exceptions import ConfigurationError
from tests.unit.configuration.conftest import FIXTURES, REPO, with_case


def test_repository_configuration_is_valid_without_warnings() -> None:
    report = validate_configuration(REPO / "Configuration")
    assert report.ok, [str(f) for f in report.errors]
    assert report.warnings == ()


def test_repository_configuration_is_the_demo_world() -> None:
    conf = load_configuration(REPO / "Configuration")
    assert conf.factory.lab_name == "ImageFactory"
    assert conf.factory.resource_group == "rg-imagefactory"
    assert conf.factory.subscription_id == "11111111-1111-4111-8111-111111111111"
    assert conf.factory.max_concurrent_jobs == 3
    assert conf.golden_images == (
        "Ubuntu/Ubuntu2204.json",
        "Win2012R2/VS2017.json",
        "Win2016/Datacenter.json",
        "Win2016/SQLExpress.json",
    )
    per_lab = {
        (lab.lab_name, lab.resource_group, lab.subscription_id[:4]): imagepaths.selected(
            lab.image_paths, conf.golden_images
        )
        for lab in conf.labs
    }
    assert per_lab == {
        ("DevLab", "rg-dev", "1111"): ["Ubuntu/Ubuntu2204.json", "Win2016/Datacenter.json", "Win2016/SQLExpress.json"],
        ("TestLab", "rg-test", "1111"): ["Win2012R2/VS2017.json", "Win2016/Datacenter.json"],
        ("QALab", "rg-qa", "2222"): ["Ubuntu/Ubuntu2204.json", "Win2016/SQLExpress.json"],
    }
    assert sum(len(v) for v in per_lab.values()) == 7


def test_load_configuration(cfg: Path) -> None:
    conf = load_configuration(cfg)
    assert conf.config_dir == cfg and conf.labs_file == cfg / "labs.json"
    assert [lab.key for lab in conf.labs] == [
        "11111111-1111-4111-8111-111111111111/devlab",
        "22222222-2222-4222-8222-222222222222/qalab",
    ]
    assert conf.factory.max_concurrent_jobs == 3
    assert conf.golden_images == tuple(golden_images(cfg))
    assert conf.warnings == ()


def test_load_configuration_raises_listing_every_error(cfg: Path) -> None:
    with_case(cfg, "labs", "bad_lab_name")
    with_case(cfg, "factory", "bad_cron")
    with pytest.raises(ConfigurationError) as raised:
        load_configuration(cfg)
    assert len(raised.value.findings) == 3
    assert any("Labs[1].LabName" in f for f in raised.value.findings)
    assert any("factory.json:7: Schedule:" in f for f in raised.value.findings)


def test_missing_files_are_reported(tmp_path: Path) -> None:
    (tmp_path / "GoldenImages").mkdir()
    with pytest.raises(ConfigurationError, match=r"No labs\.json"):
        find_labs_file(tmp_path)
    report = validate_configuration(tmp_path)
    assert {Path(f.file).name for f in report.errors} == {"labs.json", "factory.json"}
    assert any("No factory.json" in f.message for f in report.errors)


def test_missing_folder_is_reported(tmp_path: Path) -> None:
    report = validate_configuration(tmp_path / "nope")
    (finding,) = report.errors
    assert finding.file == str(tmp_path / "nope") and "is not a folder" in finding.message
    with pytest.raises(ConfigurationError):
        load_configuration(tmp_path / "nope")


POWERSHELL = FIXTURES / "powershell"


def test_a_configuration_shaped_like_the_powershell_factorys_validates_with_warnings() -> None:
    """Its Labs.json (UTF-8 BOM, CRLF, backslashes, stem-only paths, extra keys) and spaced file names."""
    report = validate_configuration(POWERSHELL)
    assert report.ok, [str(f) for f in report.errors]
    labs_file = str(POWERSHELL / "Labs.json")
    found = [(Path(w.file).name, w.line, w.location, w.message.split(":")[0]) for w in report.warnings]
    assert found == [
        ("Labs.json", 2, "Comment", "unknown top-level key 'Comment' is ignored (known keys"),
        ("Labs.json", 7, "Labs[0].Owner", "unknown key 'Owner' is ignored (known keys"),
        ("Labs.json", 10, "Labs[0].ImagePaths[1]", "'Win2016\\\\Datacenter' has no '.json'"),
        ("Labs.json", 19, "Labs[1].ImagePaths[1]", "'Win10\\\\Enterprise N' has no '.json'"),
        (
            "Labs.json",
            27,
            "Labs[2].ImagePaths[1]",
            "'Win2012R2\\\\VS2013 Ultimate.json' selects no golden image file under GoldenImages (folders and files"
            " match whole path segments)",
        ),
        ("factory.json", 2, "Comment", "unknown top-level key 'Comment' is ignored (known keys"),
    ]
    assert all(w.file == labs_file for w in report.warnings[:5])
    assert "write 'Win2016/Datacenter.json' (the canonical spelling)" in report.warnings[2].message
    assert "lab 'QALab' gets nothing for it, its other ImagePaths still run" in report.warnings[4].message


def test_the_powershell_shaped_configuration_loads_with_canonical_image_paths() -> None:
    conf = load_configuration(POWERSHELL)
    assert conf.labs_file == POWERSHELL / "Labs.json"
    assert conf.golden_images == (
        "Win10/Enterprise N.json",
        "Win2012R2/VS2015 Enterprise with Azure SDK.json",
        "Win2016/Datacenter.json",
        "Win2016/SQL 2016 Developer.json",
    )
    assert {lab.lab_name: lab.image_paths for lab in conf.labs} == {
        "DevLab": ("Win2012R2\\VS2015 Enterprise with Azure SDK.json", "Win2016/Datacenter.json"),
        "TestLab": ("Win2016", "Win10/Enterprise N.json"),
        "QALab": ("Win2016\\SQL 2016 Developer.json", "Win2012R2\\VS2013 Ultimate.json"),
    }
    assert len(conf.warnings) == 6
