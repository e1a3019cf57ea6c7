"""Tests of image_factory.configuration.labs: labs.json (or Labs.json) checked and loaded on its own."""

from __future__ import annotations

from pathlib import Path

import pytest

from image_factory import imagepaths
from image_factory.configuration import (
    find_labs_file,
    golden_images,
    load_configuration,
    load_labs,
    validate_configuration,
)
from image_factory.exceptions import ConfigurationError
from tests.unit.configuration.conftest import LAB, only, with_case, write_labs

LABS_CASES = [
    # (fixture, location, line, message fragment)
    ("not_json", "", 6, "is not valid JSON: Expecting value (line 6, column 32)"),
    ("empty", "", None, "is empty"),
    ("duplicate_key", "Labs[0].labName", 7, "key 'labName' appears more than once"),
    ("wrong_type", "Labs[0].ImagePaths", 6, 'must be an array, not a string ("Win2016")'),
    ("wrong_type", "Labs[1].LabName", 10, "must be a string, not a number (42)"),
    ("missing_field", "Labs[0]", 3, "missing required field 'LabName'"),
    ("misspelt_top", "", 1, "missing required field 'Labs'; the unknown key 'Lab' looks like a misspelling of it"),
    ("misspelt_required", "Labs[0]", 3, "field 'LabName'; the unknown key 'LabNmae' looks like a misspelling of it"),
    ("bad_subscription", "Labs[0].SubscriptionId", 4, '"1111-not-a-guid" is not a valid subscription ID'),
    ("bad_lab_name", "Labs[0].LabName", 5, '"Dev Lab" is not a valid DevTest Lab name'),
    ("bad_lab_name", "Labs[1].LabName", 10, "is not a valid DevTest Lab name (expected 1 to 50"),
    ("bad_resource_group", "Labs[0].ResourceGroup", 6, '"rg-dev." is not a valid resource group name'),
    ("bad_resource_group", "Labs[1].ResourceGroup", 12, '"rg/test" is not a valid resource group name'),
    ("duplicate_lab", "Labs[1]", 8, "lab 'devlab' in subscription 11111111-1111-4111-8111-111111111111 is already"),
    ("image_path_absolute", "Labs[0].ImagePaths[0]", 7, "'/Win2016' is absolute"),
    ("image_path_absolute", "Labs[0].ImagePaths[1]", 8, "is absolute"),
    ("image_path_dotdot", "Labs[0].ImagePaths[0]", 6, "contains '..'"),
]


@pytest.mark.parametrize(("case", "location", "line", "fragment"), LABS_CASES)
def test_labs_errors(cfg: Path, case: str, location: str, line: int | None, fragment: str) -> None:
    labs_file = with_case(cfg, "labs", case)
    report = validate_configuration(cfg)
    assert not report.ok
    finding = only(report.errors, location)
    assert finding.file == str(labs_file)
    assert finding.line == line
    assert fragment in finding.message
    assert finding.severity == "error"
    assert fragment in str(finding) and location in str(finding) and "labs.json" in str(finding)


@pytest.mark.parametrize("case", sorted({c[0] for c in LABS_CASES}))
def test_load_labs_raises_with_the_findings(cfg: Path, case: str) -> None:
    with_case(cfg, "labs", case)
    expected = [c for c in LABS_CASES if c[0] == case]
    with pytest.raises(ConfigurationError) as raised:
        load_labs(cfg)
    for _, location, _, fragment in expected:
        assert any(location in f and fragment in f for f in raised.value.findings), raised.value.findings


def test_lab_without_image_paths_is_a_warning(cfg: Path) -> None:
    labs_file = with_case(cfg, "labs", "no_image_paths")
    report = validate_configuration(cfg)
    assert report.ok, [str(f) for f in report.errors]
    warning = only(report.warnings, "Labs[1].ImagePaths")
    assert (warning.file, warning.line, warning.severity) == (str(labs_file), 11, "warning")
    assert "lab 'EmptyLab' has no ImagePaths" in warning.message


def test_powershell_casing_of_keys_and_paths_is_accepted(cfg: Path) -> None:
    with_case(cfg, "labs", "powershell_casing")
    report = validate_configuration(cfg)
    assert report.ok, [str(f) for f in report.errors]
    (lab,) = load_labs(cfg)
    assert (lab.lab_name, lab.resource_group) == ("DevLab", "rg-dev")
    assert lab.image_paths == ("WIN2016", "ubuntu\\ubuntu2204.json", "Win2016Core/")
    assert imagepaths.selected(lab.image_paths, golden_images(cfg)) == golden_images(cfg)


def test_resource_group_may_be_absent_or_null(cfg: Path) -> None:
    write_labs(cfg, [LAB, dict(LAB, LabName="TestLab", ResourceGroup=None)])
    assert [lab.resource_group for lab in load_labs(cfg)] == [None, None]


def test_labs_json_capitalised_like_the_original_is_found(cfg: Path) -> None:
    (cfg / "labs.json").rename(cfg / "Labs.json")
    assert find_labs_file(cfg) == cfg / "Labs.json"
    assert validate_configuration(cfg).ok
    assert len(load_configuration(cfg).labs) == 2


def test_labs_json_is_preferred_and_any_casing_is_found(cfg: Path) -> None:
    write_labs(cfg, [LAB], name="Labs.json")
    assert find_labs_file(cfg) == cfg / "labs.json"
    (cfg / "labs.json").unlink()
    (cfg / "Labs.json").rename(cfg / "LABS.JSON")
    assert find_labs_file(cfg) == cfg / "LABS.JSON"
    assert [lab.lab_name for lab in load_labs(cfg)] == ["DevLab"]


def test_empty_labs_list_is_a_warning(cfg: Path) -> None:
    labs_file = write_labs(cfg, [])
    report = validate_configuration(cfg)
    assert report.ok
    (warning,) = report.warnings
    assert (warning.file, warning.location, warning.line) == (str(labs_file), "Labs", 2)
    assert "lists no labs" in warning.message


def test_same_lab_name_in_another_subscription_is_not_a_duplicate(cfg: Path) -> None:
    other = dict(LAB, SubscriptionId="22222222-2222-4222-8222-222222222222", ImagePaths=["Ubuntu", "Win2016Core"])
    write_labs(cfg, [LAB, other])
    report = validate_configuration(cfg)
    assert report.ok and report.warnings == ()
    assert [lab.key.split("/")[0][:4] for lab in load_configuration(cfg).labs] == ["1111", "2222"]


def test_image_path_naming_nothing_is_refused(cfg: Path) -> None:
    write_labs(cfg, [dict(LAB, ImagePaths=["Win2016", "./", "Win2016/./Datacenter.json"])])
    report = validate_configuration(cfg)
    assert [f.location for f in report.errors] == ["Labs[0].ImagePaths[1]"]
    assert "names no folder or file under GoldenImages" in report.errors[0].message


#: (fixture, location, line, message fragment) of what labs.json is lenient about, with a warning.
LABS_WARNINGS = [
    ("unknown_top_key", "Lab", 3, "unknown top-level key 'Lab' is ignored; did you mean 'Labs'?"),
    ("unknown_lab_key", "Comment", 2, "unknown top-level key 'Comment' is ignored (known keys: $schema, Labs"),
    ("unknown_lab_key", "Labs[0].Owner", 8, "unknown key 'Owner' is ignored (known keys: SubscriptionId, LabName,"),
    ("unknown_lab_key", "Labs[1].ImagePath", 14, "unknown key 'ImagePath' is ignored; did you mean 'ImagePaths'?"),
    ("image_path_no_match", "Labs[0].ImagePaths[1]", 8, "'Win201' selects no golden image file under GoldenImages"),
    ("image_path_no_match", "Labs[0].ImagePaths[1]", 8, "lab 'DevLab' gets nothing for it, its other ImagePaths"),
    ("image_path_no_match", "Labs[0].ImagePaths[1]", 8, "still run; did you mean 'Win2016'?"),
    ("image_path_no_match", "Labs[0].ImagePaths[2]", 9, "selects the file 'Win2016/Datacenter.json' by its stem"),
    ("image_path_no_match", "Labs[0].ImagePaths[2]", 9, "write 'Win2016/Datacenter.json' (the canonical spelling)"),
    ("image_path_no_match", "Labs[0].ImagePaths[3]", 10, "'Ubuntu/Ubuntu2204.json/extra' selects no golden image"),
]


@pytest.mark.parametrize(("case", "location", "line", "fragment"), LABS_WARNINGS)
def test_labs_warnings(cfg: Path, case: str, location: str, line: int, fragment: str) -> None:
    labs_file = with_case(cfg, "labs", case)
    report = validate_configuration(cfg)
    assert report.ok, [str(f) for f in report.errors]
    warning = only(report.warnings, location)
    assert (warning.file, warning.line, warning.severity) == (str(labs_file), line, "warning")
    assert fragment in warning.message
    assert load_configuration(cfg).warnings == report.warnings


def test_unknown_keys_are_ignored_and_the_labs_load(cfg: Path) -> None:
    with_case(cfg, "labs", "unknown_lab_key")
    labs = load_configuration(cfg).labs
    assert [(lab.lab_name, lab.image_paths) for lab in labs] == [("DevLab", ("Win2016",)), ("QALab", ("Ubuntu",))]
    assert [lab.lab_name for lab in load_labs(cfg)] == ["DevLab", "QALab"]


def test_misspelt_required_key_is_an_error_and_a_warning(cfg: Path) -> None:
    with_case(cfg, "labs", "misspelt_required")
    report = validate_configuration(cfg)
    assert "did you mean 'LabName'?" in only(report.warnings, "Labs[0].LabNmae").message
    with_case(cfg, "labs", "misspelt_top")
    report = validate_configuration(cfg)
    assert "did you mean 'Labs'?" in only(report.warnings, "Lab").message
