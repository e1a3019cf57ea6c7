"""Tests of image_factory.config: loading and validating Configuration/ (labs.json, factory.json, GoldenImages)."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from image_factory import config, imagepaths
from image_factory.config import (
    Finding,
    Report,
    find_labs_file,
    golden_images,
    load_configuration,
    load_factory_settings,
    load_labs,
    validate_configuration,
)
from image_factory.exceptions import ConfigurationError
from image_factory.models import FactorySettings

REPO = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).parent / "fixtures" / "config"
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


# --- the repository's own configuration ------------------------------------------------------------------


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


def test_repository_golden_images_are_dtl_vm_templates_without_secrets() -> None:
    root = REPO / "Configuration" / "GoldenImages"
    for rel in golden_images(REPO / "Configuration"):
        doc = json.loads((root / rel).read_text(encoding="utf-8"))
        assert "2015-01-01/deploymentTemplate.json" in doc["$schema"]
        (vm,) = [r for r in doc["resources"] if r["type"] == "Microsoft.DevTestLab/labs/virtualmachines"]
        assert vm["properties"]["galleryImageReference"]["osType"] in ("Windows", "Linux")
        assert doc["parameters"]["password"] == {
            "type": "securestring",
            "metadata": doc["parameters"]["password"]["metadata"],
        }
        assert "defaultValue" not in doc["parameters"]["userName"]


@pytest.mark.parametrize("name", ["labs.schema.json", "factory.schema.json"])
def test_shipped_schemas_are_valid_draft_2020_12(name: str) -> None:
    from jsonschema import Draft202012Validator

    schema = json.loads((REPO / "Configuration" / name).read_text(encoding="utf-8"))
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema)


# --- labs.json errors, one fixture each ------------------------------------------------------------------

LABS_CASES = [
    # (fixture, location, line, message fragment)
    ("not_json", "", 6, "is not valid JSON: Expecting value (line 6, column 32)"),
    ("empty", "", None, "is empty"),
    ("duplicate_key", "Labs[0].labName", 7, "key 'labName' appears more than once"),
    ("wrong_type", "Labs[0].ImagePaths", 6, 'must be an array, not a string ("Win2016")'),
    ("wrong_type", "Labs[1].LabName", 10, "must be a string, not a number (42)"),
    ("missing_field", "Labs[0]", 3, "missing required field 'LabName'"),
    ("unknown_top_key", "Lab", 3, "unknown top-level key 'Lab'; did you mean 'Labs'?"),
    ("bad_subscription", "Labs[0].SubscriptionId", 4, '"1111-not-a-guid" is not a valid subscription ID'),
    ("bad_lab_name", "Labs[0].LabName", 5, '"Dev Lab" is not a valid DevTest Lab name'),
    ("bad_lab_name", "Labs[1].LabName", 10, "is not a valid DevTest Lab name (expected 1 to 50"),
    ("bad_resource_group", "Labs[0].ResourceGroup", 6, '"rg-dev." is not a valid resource group name'),
    ("bad_resource_group", "Labs[1].ResourceGroup", 12, '"rg/test" is not a valid resource group name'),
    ("duplicate_lab", "Labs[1]", 8, "lab 'devlab' in subscription 11111111-1111-4111-8111-111111111111 is already"),
    ("image_path_absolute", "Labs[0].ImagePaths[0]", 7, "'/Win2016' is absolute"),
    ("image_path_absolute", "Labs[0].ImagePaths[1]", 8, "is absolute"),
    ("image_path_dotdot", "Labs[0].ImagePaths[0]", 6, "contains '..'"),
    ("image_path_no_match", "Labs[0].ImagePaths[1]", 8, "'Win201' matches no golden image file"),
    ("image_path_no_match", "Labs[0].ImagePaths[2]", 9, "did you mean 'Win2016/Datacenter.json'?"),
    ("image_path_no_match", "Labs[0].ImagePaths[3]", 10, "'Ubuntu/Ubuntu2204.json/extra' matches no golden"),
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
    labs_file = with_case(cfg, "labs", case)
    expected = [c for c in LABS_CASES if c[0] == case and not c[0].startswith("image_path_no")]
    if not expected:
        # matching ImagePaths against GoldenImages is the whole folder's check, not the file's
        assert load_labs(labs_file)
        return
    with pytest.raises(ConfigurationError) as raised:
        load_labs(cfg)
    for _, location, _, fragment in expected:
        assert any(location in f and fragment in f for f in raised.value.findings), raised.value.findings


def test_image_path_matching_is_segment_wise(cfg: Path) -> None:
    with_case(cfg, "labs", "unused_golden")
    report = validate_configuration(cfg)
    assert report.ok
    # 'Win2016' selects Win2016/* but not Win2016Core/*: Win2016Core is unused
    (warning,) = report.warnings
    assert warning.file == str(cfg / "GoldenImages" / "Win2016Core" / "Datacenter.json")
    assert "golden image 'Win2016Core/Datacenter.json' is used by no lab" in warning.message


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


def test_utf8_bom_is_accepted(cfg: Path) -> None:
    labs_file = cfg / "labs.json"
    labs_file.write_bytes(b"\xef\xbb\xbf" + labs_file.read_bytes())
    assert validate_configuration(cfg).ok
    assert [lab.lab_name for lab in load_labs(labs_file)] == ["DevLab", "QALab"]


def test_utf16_with_bom_from_windows_powershell_is_accepted(cfg: Path) -> None:
    labs_file = cfg / "labs.json"
    labs_file.write_bytes(labs_file.read_text(encoding="utf-8").encode("utf-16"))
    assert [lab.lab_name for lab in load_labs(labs_file)] == ["DevLab", "QALab"]


def test_not_utf8_is_refused(cfg: Path) -> None:
    (cfg / "labs.json").write_bytes(b'{"Labs": [\n{"LabName": "D\xe9vLab"}]}')
    finding = only(validate_configuration(cfg).errors, "")
    assert finding.file.endswith("labs.json") and finding.line == 2
    assert "is not UTF-8 text" in finding.message


def test_nan_is_refused(cfg: Path) -> None:
    (cfg / "factory.json").write_text('{"Factory": {}, "MaxConcurrentJobs": NaN}', encoding="utf-8")
    finding = only(validate_configuration(cfg).errors, "")
    assert finding.file.endswith("factory.json")
    assert "is not valid JSON: NaN is not allowed" in finding.message


def test_resource_group_with_trailing_newline_is_refused(cfg: Path) -> None:
    write_labs(cfg, [dict(LAB, ResourceGroup="rg-dev\n")])
    finding = only(validate_configuration(cfg).errors, "Labs[0].ResourceGroup")
    assert "is not a valid resource group name" in finding.message


def test_resource_group_may_be_absent_or_null(cfg: Path) -> None:
    write_labs(cfg, [LAB, dict(LAB, LabName="TestLab", ResourceGroup=None)])
    assert [lab.resource_group for lab in load_labs(cfg)] == [None, None]


def test_fifty_megabyte_file_is_refused_by_size_without_parsing(cfg: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    labs_file = cfg / "labs.json"
    with labs_file.open("wb") as fh:
        fh.truncate(50 * 1024 * 1024)

    parse = config._parse

    def no_parsing(col: Any, text: str) -> Any:
        assert col.file != labs_file, "a 50 MB file must be refused before it is parsed"
        return parse(col, text)

    monkeypatch.setattr(config, "_parse", no_parsing)
    started = time.monotonic()
    finding = only(validate_configuration(cfg).errors, "")
    assert time.monotonic() - started < 5
    assert finding.file == str(labs_file)
    assert "is 52,428,800 bytes; the limit is 16,777,216 bytes (refused without parsing)" in finding.message


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
    assert len([e for e in errors if e.location.endswith(".LabName")]) == config.MAX_SCHEMA_ERRORS
    assert any("stopped checking" in e.message for e in errors)


def test_image_path_escaping_through_a_symlink_is_refused(cfg: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    shutil.copyfile(VALID / "GoldenImages" / "Win2016" / "Datacenter.json", outside / "Evil.json")
    (cfg / "GoldenImages" / "Linked").symlink_to(outside, target_is_directory=True)
    (cfg / "GoldenImages" / "Win2016" / "Stolen.json").symlink_to(outside / "Evil.json")
    write_labs(cfg, [dict(LAB, ImagePaths=["Win2016", "linked", "Linked/Evil.json"])])
    report = validate_configuration(cfg)
    assert "Linked/Evil.json" not in golden_images(cfg)
    assert "Win2016/Stolen.json" not in golden_images(cfg)
    assert "leads outside GoldenImages" in only(report.errors, "Labs[0].ImagePaths[1]").message
    assert "leads outside GoldenImages" in only(report.errors, "Labs[0].ImagePaths[2]").message
    outside_files = {f.file for f in report.errors if "resolves outside GoldenImages" in f.message}
    assert outside_files == {
        str(cfg / "GoldenImages" / "Linked"),
        str(cfg / "GoldenImages" / "Win2016" / "Stolen.json"),
    }


def test_symlink_inside_golden_images_is_allowed(cfg: Path) -> None:
    (cfg / "GoldenImages" / "Alias").symlink_to(cfg / "GoldenImages" / "Ubuntu", target_is_directory=True)
    write_labs(cfg, [dict(LAB, ImagePaths=["Win2016", "Win2016Core", "Ubuntu", "Alias"])])
    report = validate_configuration(cfg)
    assert report.ok and report.warnings == ()
    assert "Alias/Ubuntu2204.json" in golden_images(cfg)


# --- file discovery --------------------------------------------------------------------------------------


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


# --- factory.json ----------------------------------------------------------------------------------------

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
    assert settings.to_dict() == {
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


# --- golden images ---------------------------------------------------------------------------------------

GOLDEN_CASES = [
    ("not_json", "", 6, "is not valid JSON: Expecting ',' delimiter"),
    ("not_a_template", "", 1, "'$schema' must name a deploymentTemplate.json schema"),
    ("no_dtl_vm", "resources", 4, "has no 'Microsoft.DevTestLab/labs/virtualmachines' resource"),
    ("secret_default", "parameters.password.defaultValue", 7, "must not have a default value"),
]


@pytest.mark.parametrize(("case", "location", "line", "fragment"), GOLDEN_CASES)
def test_golden_image_errors(cfg: Path, case: str, location: str, line: int, fragment: str) -> None:
    image = with_case(cfg, "golden", case)
    report = validate_configuration(cfg)
    found = [f for f in report.errors if f.location == location and fragment in f.message]
    assert len(found) == 1, [str(f) for f in report.errors]
    assert (found[0].file, found[0].line) == (str(image), line)
    assert "P@ssw0rd" not in str(report)


def test_template_without_resources_is_refused(cfg: Path) -> None:
    with_case(cfg, "golden", "not_a_template")
    messages = [f.message for f in validate_configuration(cfg).errors]
    assert "is not an ARM template: 'resources' array missing" in messages


def test_golden_images_lists_normalized_sorted_paths(cfg: Path) -> None:
    (cfg / "GoldenImages" / "Win2016" / "README.md").write_text("not an image", encoding="utf-8")
    (cfg / "GoldenImages" / "Empty").mkdir()
    assert golden_images(cfg) == [
        "Ubuntu/Ubuntu2204.json",
        "Win2016/Datacenter.json",
        "Win2016/SQLExpress.json",
        "Win2016Core/Datacenter.json",
    ]


# --- the whole folder ------------------------------------------------------------------------------------


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


def test_report_ok_and_finding_text() -> None:
    finding = Finding("Configuration/labs.json", "Labs[2].ImagePaths[0]", "bad", 12)
    assert str(finding) == "Configuration/labs.json:12: Labs[2].ImagePaths[0]: bad"
    assert str(Finding("f.json", "", "is empty")) == "f.json: (whole file): is empty"
    assert Report(Path("x")).ok and not Report(Path("x"), errors=(finding,)).ok


def test_symlink_cycle_in_golden_images_terminates(cfg: Path) -> None:
    (cfg / "GoldenImages" / "Win2016" / "Loop").symlink_to(cfg / "GoldenImages", target_is_directory=True)
    # a link back to a folder being walked is not followed: the loop adds nothing
    assert golden_images(cfg) == golden_images(VALID)
    assert len(golden_images(cfg)) == 4


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


def test_duplicate_key_in_a_nested_template_object_is_located(cfg: Path) -> None:
    image = cfg / "GoldenImages" / "Ubuntu" / "Ubuntu2204.json"
    text = image.read_text(encoding="utf-8").replace('"sku": ', '"SKU": "x",\n          "sku": ', 1)
    image.write_text(text, encoding="utf-8")
    line = text.splitlines().index('          "sku": "22_04-lts-gen2",') + 1
    finding = only(validate_configuration(cfg).errors, "resources[0].properties.galleryImageReference.sku")
    assert (finding.file, finding.line) == (str(image), line)
    assert "key 'sku' appears more than once" in finding.message
