"""The ARM answer recorder: off unless asked for, one JSON line per answer, SAS signatures masked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from starlette.responses import JSONResponse, Response

from emulator.arm.recorder import RECORD_DIR_ENV, ResponseRecorder


def test_off_unless_an_option_or_the_environment_names_a_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(RECORD_DIR_ENV, raising=False)
    assert ResponseRecorder.from_option(None) is None
    monkeypatch.setenv(RECORD_DIR_ENV, "")
    assert ResponseRecorder.from_option(None) is None
    monkeypatch.setenv(RECORD_DIR_ENV, str(tmp_path / "env"))
    recorder = ResponseRecorder.from_option(None)
    assert recorder is not None and recorder.path.parent == tmp_path / "env"
    recorder.close()
    chosen = ResponseRecorder.from_option(tmp_path / "option")
    assert chosen is not None and chosen.path.parent == tmp_path / "option"
    chosen.close()


def test_one_line_per_answer_with_signatures_masked(tmp_path: Path) -> None:
    recorder = ResponseRecorder(tmp_path)
    sas = "https://a.blob/c/b?sv=2024&sp=r&sig=SECRET%2Bvalue&se=2026"
    granted = JSONResponse({"accessSAS": sas}, headers={"Retry-After": "1"})
    recorder.record(granted, operation="OperationResults_Get", method="GET", path="/p", api_version="v", lro_of="X")
    recorder.record(
        Response(status_code=204), operation="CustomImages_Delete", method="DELETE", path="/q", api_version=None
    )
    recorder.close()
    recorder.record(Response(status_code=200), operation="late", method="GET", path="/", api_version=None)
    text = recorder.path.read_text()
    assert "SECRET" not in text
    first, second = (json.loads(line) for line in text.splitlines())
    assert first["body"] == {"accessSAS": "https://a.blob/c/b?sv=2024&sp=r&sig=***&se=2026"}
    assert first["lro_of"] == "X" and first["status"] == 200 and first["headers"]["retry-after"] == "1"
    assert second == {
        "operation": "CustomImages_Delete",
        "lro_of": None,
        "method": "DELETE",
        "path": "/q",
        "api_version": None,
        "status": 204,
        "headers": {},
        "body": None,
    }
