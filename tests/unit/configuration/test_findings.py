"""Tests of image_factory.configuration.findings: how a finding reads and when a report is ok."""

from __future__ import annotations

from pathlib import Path

from image_factory.configuration import (
    Finding,
    Report,
)


def test_report_ok_and_finding_text() -> None:
    finding = Finding("Configuration/labs.json", "Labs[2].ImagePaths[0]", "bad", 12)
    assert str(finding) == "Configuration/labs.json:12: Labs[2].ImagePaths[0]: bad"
    assert str(Finding("f.json", "", "is empty")) == "f.json: (whole file): is empty"
    assert Report(Path("x")).ok and not Report(Path("x"), errors=(finding,)).ok
