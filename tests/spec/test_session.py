"""The session-wide check: a session whose local Azure answered off the specification fails, even if its tests pass."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.spec.arm_spec import ROOT

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = next(ROOT.glob("specification/devtestlabs/**/examples/Labs_GenerateUploadUri.json"))
GOOD = json.loads(EXAMPLE.read_text(encoding="utf-8"))["responses"]["200"]["body"]
TEST = """
import json, os, pathlib

def test_an_emulator_answered() -> None:
    headers = {{"x-ms-request-id": "r", "content-type": "application/json"}}
    record = {{"operation": "Labs_GenerateUploadUri", "status": 200, "headers": headers, "body": {body}}}
    folder = pathlib.Path(os.environ["LOCAL_AZURE_RECORD_DIR"])
    (folder / "arm-1.jsonl").write_text(json.dumps(record) + "\\n")
"""


def _session(tmp_path: Path, body: dict[str, str]) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_one.py").write_text(TEST.format(body=json.dumps(body)))
    env = {**os.environ, "PYTHONPATH": str(REPO), "LOCAL_AZURE_RECORD_DIR": str(tmp_path / "answers")}
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "tests.spec.session", "-c"]
    argv += [os.devnull, "--rootdir", str(tmp_path), str(tmp_path / "test_one.py")]
    return subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False)


def test_answers_as_specified_keep_the_session_green(tmp_path: Path) -> None:
    done = _session(tmp_path, GOOD)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ARM answers checked against the specification: 1 (1 operations)" in done.stdout


def test_a_drifted_answer_fails_a_session_whose_tests_pass(tmp_path: Path) -> None:
    done = _session(tmp_path, {"UploadUri": GOOD["uploadUri"]})
    assert done.returncode == 1, done.stdout + done.stderr
    assert "1 passed" in done.stdout
    assert "casing: UploadUri is spelt 'uploadUri' in the specification (GenerateUploadUriResponse)" in done.stdout
    assert f"DRIFT from the specification: the session fails; the answers are kept in {tmp_path / 'answers'}" in (
        done.stdout
    )
