"""Tests of image_factory.configuration.reader: the one JSON reader (size limits, encodings, JSON syntax)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from image_factory.configuration import (
    load_labs,
    reader,
    validate_configuration,
)
from tests.unit.configuration.conftest import only


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


def test_fifty_megabyte_file_is_refused_by_size_without_parsing(cfg: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    labs_file = cfg / "labs.json"
    with labs_file.open("wb") as fh:
        fh.truncate(50 * 1024 * 1024)

    parse = reader.parse_text

    def no_parsing(col: Any, text: str) -> Any:
        assert col.file != labs_file, "a 50 MB file must be refused before it is parsed"
        return parse(col, text)

    monkeypatch.setattr(reader, "parse_text", no_parsing)
    started = time.monotonic()
    finding = only(validate_configuration(cfg).errors, "")
    assert time.monotonic() - started < 5
    assert finding.file == str(labs_file)
    assert "is 52,428,800 bytes; the limit is 16,777,216 bytes (refused without parsing)" in finding.message
