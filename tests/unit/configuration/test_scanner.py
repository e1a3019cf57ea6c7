"""Tests of image_factory.configuration.scanner: repeated keys and the lines of JSON paths in the text."""

from __future__ import annotations

from pathlib import Path

from image_factory.configuration import validate_configuration
from image_factory.configuration.scanner import Locator, duplicate_keys, line_at
from tests.unit.configuration.conftest import only


def test_duplicate_key_in_a_nested_template_object_is_located(cfg: Path) -> None:
    image = cfg / "GoldenImages" / "Ubuntu" / "Ubuntu2204.json"
    text = image.read_text(encoding="utf-8").replace('"sku": ', '"SKU": "x",\n          "sku": ', 1)
    image.write_text(text, encoding="utf-8")
    line = text.splitlines().index('          "sku": "22_04-lts-gen2",') + 1
    finding = only(validate_configuration(cfg).errors, "resources[0].properties.galleryImageReference.sku")
    assert (finding.file, finding.line) == (str(image), line)
    assert "key 'sku' appears more than once" in finding.message


TEXT = """{
  "Labs": [
    {"LabName": "A",
     "ImagePaths": ["x", "y"]},
    {"labname": "B", "LABNAME": "C"}
  ],
  "labs": 1
}"""


def test_repeated_keys_are_found_case_insensitively_with_their_object_and_offset() -> None:
    found = [(path, key, line_at(TEXT, offset)) for path, key, offset in duplicate_keys(TEXT)]
    assert found == [(("Labs", 1), "LABNAME", 5), ((), "labs", 7)]


def test_the_line_of_a_json_path_is_found_case_insensitively() -> None:
    locator = Locator(TEXT)
    assert locator.line_of(()) == 1
    assert locator.line_of(("labs", 0, "imagepaths", 1)) == 4
    assert locator.line_of(("Labs", 1, "LabName")) == 5  # the first of the repeated keys
    assert locator.line_of(("Labs", 2)) is None
    assert locator.line_of(("Labs", 0, "LabName", "deeper")) is None
