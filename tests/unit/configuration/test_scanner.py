"""Tests of image_factory.configuration.scanner: repeated keys and the lines of JSON paths in the text."""

from __future__ import annotations

from pathlib import Path

from image_factory.configuration import (
    validate_configuration,
)
from tests.unit.configuration.conftest import only


def test_duplicate_key_in_a_nested_template_object_is_located(cfg: Path) -> None:
    image = cfg / "GoldenImages" / "Ubuntu" / "Ubuntu2204.json"
    text = image.read_text(encoding="utf-8").replace('"sku": ', '"SKU": "x",\n          "sku": ', 1)
    image.write_text(text, encoding="utf-8")
    line = text.splitlines().index('          "sku": "22_04-lts-gen2",') + 1
    finding = only(validate_configuration(cfg).errors, "resources[0].properties.galleryImageReference.sku")
    assert (finding.file, finding.line) == (str(image), line)
    assert "key 'sku' appears more than once" in finding.message
