"""Tests of ``python -m image_factory.configuration`` run as a subprocess (exit status, stdout, stderr)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.unit.configuration.conftest import FIXTURES, REPO


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the validator the way ``make validate`` does."""
    environ = {k: v for k, v in os.environ.items() if k != "IMAGE_FACTORY_CONFIG_DIR"}
    environ["PYTHONPATH"] = str(REPO / "plugins")
    environ.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "image_factory.configuration", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=environ,
        timeout=120,
        check=False,
    )


def test_repository_configuration_passes() -> None:
    result = run_cli("Configuration")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert "Configuration: configuration valid: 0 error(s), 0 warning(s)" in result.stdout


def test_default_folder_is_the_repository_configuration() -> None:
    result = run_cli()
    assert result.returncode == 0, result.stderr
    assert f"{REPO / 'Configuration'}: configuration valid" in result.stdout


def test_default_folder_comes_from_the_environment(cfg: Path) -> None:
    shutil.copyfile(FIXTURES / "labs" / "empty.json", cfg / "labs.json")
    result = run_cli(env={"IMAGE_FACTORY_CONFIG_DIR": str(cfg)})
    assert result.returncode == 1
    assert f"error: {cfg / 'labs.json'}: (whole file): is empty" in result.stderr


def test_warnings_are_printed_but_pass(cfg: Path) -> None:
    shutil.copyfile(FIXTURES / "labs" / "no_image_paths.json", cfg / "labs.json")
    result = run_cli(str(cfg))
    assert result.returncode == 0, result.stderr
    assert f"warning: {cfg / 'labs.json'}:11: Labs[1].ImagePaths: lab 'EmptyLab' has no ImagePaths" in result.stderr
    assert "1 warning(s)" in result.stdout


def test_every_error_is_on_stderr_with_file_line_and_location(cfg: Path) -> None:
    shutil.copyfile(FIXTURES / "labs" / "image_path_no_match.json", cfg / "labs.json")
    shutil.copyfile(FIXTURES / "factory" / "out_of_range.json", cfg / "factory.json")
    result = run_cli(str(cfg))
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert errors == [
        f"error: {cfg / 'factory.json'}:7: MaxConcurrentJobs: 0 is out of range: allowed 1..1000",
        f"error: {cfg / 'factory.json'}:8: ImagesToSave: 101 is out of range: allowed 1..100",
    ]
    # ImagePaths that select nothing, or a file by its stem only, are warnings (the lab's other paths run)
    warnings = [line for line in result.stderr.splitlines() if line.startswith(f"warning: {cfg / 'labs.json'}")]
    assert warnings == [
        f"warning: {cfg / 'labs.json'}:8: Labs[0].ImagePaths[1]: 'Win201' selects no golden image file under "
        "GoldenImages (folders and files match whole path segments): lab 'DevLab' gets nothing for it, its other "
        "ImagePaths still run; did you mean 'Win2016'?",
        f"warning: {cfg / 'labs.json'}:9: Labs[0].ImagePaths[2]: 'Win2016/Datacenter' has no '.json': it selects "
        "the file 'Win2016/Datacenter.json' by its stem; write 'Win2016/Datacenter.json' (the canonical spelling)",
        f"warning: {cfg / 'labs.json'}:10: Labs[0].ImagePaths[3]: 'Ubuntu/Ubuntu2204.json/extra' selects no golden "
        "image file under GoldenImages (folders and files match whole path segments): lab 'DevLab' gets nothing "
        "for it, its other ImagePaths still run; did you mean 'Ubuntu/Ubuntu2204.json'?",
    ]
    assert "configuration INVALID: 2 error(s)" in result.stdout


def test_not_json_golden_image_fails(cfg: Path) -> None:
    shutil.copyfile(FIXTURES / "golden" / "not_json.json", cfg / "GoldenImages" / "Ubuntu" / "Ubuntu2204.json")
    result = run_cli(str(cfg))
    assert result.returncode == 1
    assert f"error: {cfg / 'GoldenImages' / 'Ubuntu' / 'Ubuntu2204.json'}:6: (whole file): is not valid JSON" in (
        result.stderr
    )


def test_missing_folder_fails(tmp_path: Path) -> None:
    result = run_cli(str(tmp_path / "nowhere"))
    assert result.returncode == 1
    assert f"error: {tmp_path / 'nowhere'}: (whole file): is not a folder" in result.stderr


def test_json_output(cfg: Path) -> None:
    shutil.copyfile(FIXTURES / "labs" / "duplicate_lab.json", cfg / "labs.json")
    result = run_cli("--json", str(cfg))
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["ok"] is False
    assert report["errors"] == [
        {
            "file": str(cfg / "labs.json"),
            "location": "Labs[1]",
            "message": "lab 'devlab' in subscription 11111111-1111-4111-8111-111111111111 is already listed at "
            "Labs[0] (labs are compared case-insensitively)",
            "line": 8,
            "severity": "error",
        }
    ]
    assert [w["location"] for w in report["warnings"]] == [""]
    assert "Labs[1]" in result.stderr


def test_usage_error_exits_2() -> None:
    result = run_cli("--no-such-option")
    assert result.returncode == 2
    assert "usage:" in result.stderr


def test_json_output_holds_the_warnings_and_stderr_prints_them(cfg: Path) -> None:
    shutil.copyfile(FIXTURES / "labs" / "unknown_lab_key.json", cfg / "labs.json")
    result = run_cli("--json", str(cfg))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is True and report["errors"] == []
    owner = next(w for w in report["warnings"] if w["location"] == "Labs[0].Owner")
    assert owner == {
        "file": str(cfg / "labs.json"),
        "location": "Labs[0].Owner",
        "message": "unknown key 'Owner' is ignored (known keys: SubscriptionId, LabName, ResourceGroup, ImagePaths)",
        "line": 8,
        "severity": "warning",
    }
    assert f"warning: {cfg / 'labs.json'}:8: Labs[0].Owner: unknown key 'Owner'" in result.stderr
