"""Tests of image_factory.configuration.golden: the GoldenImages templates and the ImagePaths selecting them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from image_factory import imagepaths
from image_factory.configuration import (
    golden_images,
    load_configuration,
    validate_configuration,
)
from tests.unit.configuration.conftest import LAB, REPO, VALID, only, with_case, write_labs


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


def test_symlink_cycle_in_golden_images_terminates(cfg: Path) -> None:
    (cfg / "GoldenImages" / "Win2016" / "Loop").symlink_to(cfg / "GoldenImages", target_is_directory=True)
    # a link back to a folder being walked is not followed: the loop adds nothing
    assert golden_images(cfg) == golden_images(VALID)
    assert len(golden_images(cfg)) == 4


def test_image_path_matching_is_segment_wise(cfg: Path) -> None:
    with_case(cfg, "labs", "unused_golden")
    report = validate_configuration(cfg)
    assert report.ok
    # 'Win2016' selects Win2016/* but not Win2016Core/*: Win2016Core is unused
    (warning,) = report.warnings
    assert warning.file == str(cfg / "GoldenImages" / "Win2016Core" / "Datacenter.json")
    assert "golden image 'Win2016Core/Datacenter.json' is used by no lab" in warning.message


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


def test_stem_only_image_path_selects_its_file_with_a_warning_naming_the_canonical_spelling(cfg: Path) -> None:
    write_labs(cfg, [dict(LAB, ImagePaths=["win2016\\DATACENTER", "Ubuntu/Ubuntu2204.json"])])
    report = validate_configuration(cfg)
    assert report.ok, [str(f) for f in report.errors]
    warning = only(report.warnings, "Labs[0].ImagePaths[0]")
    assert warning.message == (
        "'win2016\\\\DATACENTER' has no '.json': it selects the file 'Win2016/Datacenter.json' by its stem;"
        " write 'Win2016/Datacenter.json' (the canonical spelling)"
    )
    (lab,) = load_configuration(cfg).labs
    assert lab.image_paths == ("Win2016/Datacenter.json", "Ubuntu/Ubuntu2204.json")
    # the stem selected the file: it is not reported as used by no lab
    assert not [w for w in report.warnings if "Win2016/Datacenter.json' is used by no lab" in w.message]


def test_stem_matching_is_segment_wise(cfg: Path) -> None:
    write_labs(cfg, [dict(LAB, ImagePaths=["Win2016/Data", "Win2016Core/Datacenter", "Win2016/Datacenter/"])])
    report = validate_configuration(cfg)
    assert report.ok
    assert "selects no golden image file" in only(report.warnings, "Labs[0].ImagePaths[0]").message
    assert "'Win2016Core/Datacenter.json' by its stem" in only(report.warnings, "Labs[0].ImagePaths[1]").message
    # a trailing separator names a folder, never a file by its stem
    assert "selects no golden image file" in only(report.warnings, "Labs[0].ImagePaths[2]").message


def test_stem_naming_a_folder_and_a_file_is_an_error_saying_which(cfg: Path) -> None:
    folder = cfg / "GoldenImages" / "Win2016" / "Datacenter"
    folder.mkdir()
    shutil.copyfile(cfg / "GoldenImages" / "Win2016" / "SQLExpress.json", folder / "Core.json")
    write_labs(cfg, [dict(LAB, ImagePaths=["Win2016/Datacenter", "Win2016/Datacenter/", "Win2016/Datacenter.json"])])
    report = validate_configuration(cfg)
    error = only(report.errors, "Labs[0].ImagePaths[0]")
    assert error.message == (
        "'Win2016/Datacenter' is ambiguous: it names the folder 'Win2016/Datacenter' and, by its stem, the file"
        " 'Win2016/Datacenter.json'; write 'Win2016/Datacenter/' for the folder or 'Win2016/Datacenter.json' for"
        " the file"
    )
    assert [f.location for f in report.errors] == ["Labs[0].ImagePaths[0]"]


def test_stem_naming_two_files_is_an_error_naming_both(cfg: Path) -> None:
    shutil.copyfile(
        cfg / "GoldenImages" / "Ubuntu" / "Ubuntu2204.json", cfg / "GoldenImages" / "Ubuntu" / "UBUNTU2204.JSON"
    )
    write_labs(cfg, [dict(LAB, ImagePaths=["ubuntu/ubuntu2204"])])
    report = validate_configuration(cfg)
    error = only(report.errors, "Labs[0].ImagePaths[0]")
    assert error.message == (
        "'ubuntu/ubuntu2204' is ambiguous: it names 2 files by their stem: 'Ubuntu/UBUNTU2204.JSON',"
        " 'Ubuntu/Ubuntu2204.json'"
    )


def test_removed_golden_image_file_is_a_warning_for_that_lab_only(cfg: Path) -> None:
    (cfg / "GoldenImages" / "Win2016" / "SQLExpress.json").unlink()
    other = dict(LAB, LabName="QALab", ImagePaths=["Ubuntu"])
    write_labs(cfg, [dict(LAB, ImagePaths=["Win2016/SQLExpress.json", "Win2016Core"]), other])
    report = validate_configuration(cfg)
    assert report.ok, [str(f) for f in report.errors]
    warning = only(report.warnings, "Labs[0].ImagePaths[0]")
    assert warning.message.startswith(
        "'Win2016/SQLExpress.json' selects no golden image file under GoldenImages (folders and files match whole"
        " path segments): lab 'DevLab' gets nothing for it, its other ImagePaths still run"
    )
    assert [w.location for w in report.warnings if w.location.startswith("Labs")] == ["Labs[0].ImagePaths[0]"]
    conf = load_configuration(cfg)
    assert [lab.image_paths for lab in conf.labs] == [("Win2016/SQLExpress.json", "Win2016Core"), ("Ubuntu",)]
    assert "Win2016/SQLExpress.json" not in conf.golden_images
    assert not imagepaths.selected(["Win2016/SQLExpress.json"], conf.golden_images)


def test_stem_of_a_file_linked_from_outside_is_refused(cfg: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside.json"
    shutil.copyfile(VALID / "GoldenImages" / "Win2016" / "Datacenter.json", outside)
    (cfg / "GoldenImages" / "Win2016" / "Stolen.json").symlink_to(outside)
    write_labs(cfg, [dict(LAB, ImagePaths=["Win2016/Stolen"])])
    report = validate_configuration(cfg)
    assert "leads outside GoldenImages" in only(report.errors, "Labs[0].ImagePaths[0]").message
