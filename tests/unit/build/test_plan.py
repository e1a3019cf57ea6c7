"""The build plan and ``list_builds``: which templates a run builds, when it builds none, what a dry run shows."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from image_factory.build import steps
from image_factory.build.outcomes import SUMMARY_XCOM_KEY, build_summary, built_vm_names
from image_factory.build.plan import BuildJob, build_enabled, plan_builds, skip_reason, templates_to_build
from image_factory.configuration import FactorySettings
from image_factory.models import LabRef
from image_factory.run_context import RunParams
from tests.unit.test_tasks import CONFIG, FakeTi, _run

GOLDEN = ["Ubuntu/Ubuntu2204.json", "Unused/Nobody.json", "Win2016/Datacenter.json", "Win2016/SQLExpress.json"]
LABS = [
    LabRef("s", "DevLab", ("Win2016",)),
    LabRef("s", "QALab", ("Ubuntu/Ubuntu2204.json",)),
]
ON = FactorySettings(subscription_id="s", resource_group="rg", lab_name="F", build_enabled=True)
OFF = FactorySettings(subscription_id="s", resource_group="rg", lab_name="F")


def test_a_run_builds_what_some_lab_subscribes_to_not_every_file() -> None:
    assert templates_to_build(LABS, GOLDEN, RunParams()) == [
        "Ubuntu/Ubuntu2204.json",
        "Win2016/Datacenter.json",
        "Win2016/SQLExpress.json",
    ]


def test_the_params_narrow_the_build() -> None:
    assert templates_to_build(
        LABS, GOLDEN, RunParams(build_paths=("Win2016",), image_paths=("win2016/SQLExpress.json",))
    ) == ["Win2016/SQLExpress.json"]
    assert templates_to_build(LABS[1:], GOLDEN, RunParams()) == ["Ubuntu/Ubuntu2204.json"]  # the labs param's labs


def test_the_switch_and_its_override() -> None:
    assert not build_enabled(RunParams(), OFF) and build_enabled(RunParams(), ON)
    assert build_enabled(RunParams(build=True), OFF) and not build_enabled(RunParams(build=False), ON)
    assert "Build.Enabled" in str(skip_reason(RunParams(), OFF, is_backfill=False))
    assert "param build=off" in str(skip_reason(RunParams(build=False), ON, is_backfill=False))
    assert "capture" in str(skip_reason(RunParams(capture=False), ON, is_backfill=False))
    assert "backfill" in str(skip_reason(RunParams(), ON, is_backfill=True))
    assert skip_reason(RunParams(dry_run=True), ON, is_backfill=False) is None  # a dry run plans them


def test_a_template_that_cannot_be_built_is_a_job_that_says_why() -> None:
    def read(path: str) -> dict[str, Any]:
        if path.startswith("Bad"):
            return {"resources": []}
        return json.loads((CONFIG / "GoldenImages" / path).read_text(encoding="utf-8"))

    jobs = plan_builds(["Bad/x.json", "Win2016/Datacenter.json"], read, "run-1")
    bad, good = jobs
    assert bad.error and "Bad/x.json" in bad.error and "cannot be built" in bad.describe()
    assert good.error is None and good.appended == "windows-sysprep" and good.os_type == "Windows"
    assert good.deployment_name == f"Build-{good.vm_name}"
    assert BuildJob.from_dict(good.to_dict()) == good
    assert plan_builds(["Win2016/Datacenter.json"], read, "run-1") == [good]  # deterministic: a retry agrees


@pytest.fixture
def config(tmp_path: Path) -> Path:
    folder = tmp_path / "Configuration"
    shutil.copytree(CONFIG, folder)
    factory = json.loads((folder / "factory.json").read_text(encoding="utf-8"))
    factory["Build"] = {"Enabled": True}
    (folder / "factory.json").write_text(json.dumps(factory), encoding="utf-8")
    return folder


def test_list_builds_returns_one_job_per_subscribed_template_and_tells_capture(config: Path) -> None:
    ti = FakeTi()
    run = _run(ti)
    run.folder = config
    jobs = steps.list_builds(run)
    assert sorted(j["image_path"] for j in jobs) == [
        "Ubuntu/Ubuntu2204.json",
        "Win2012R2/VS2017.json",
        "Win2016/Datacenter.json",
        "Win2016/SQLExpress.json",
    ]
    summary = ti.pushed[SUMMARY_XCOM_KEY]
    assert summary["building"] and set(summary["jobs"]) == {j["image_path"] for j in jobs}
    # Capture and verify read it back: nothing built yet (no build_vm outcome) → capture takes nothing.
    ti.store[("build.list_builds", SUMMARY_XCOM_KEY)] = summary
    ti.store[("build.list_builds", "return_value")] = jobs
    assert built_vm_names(run) == set()
    ti.store[("build.build_vm", "return_value")] = [
        {"image_path": jobs[0]["image_path"], "vm_name": jobs[0]["vm_name"]},
        None,
    ]
    assert built_vm_names(run) == {jobs[0]["vm_name"].casefold()}
    lines = build_summary(run)
    assert lines[jobs[0]["image_path"]] == f"built as VM {jobs[0]['vm_name']}"
    assert "build failed" in lines[jobs[1]["image_path"]]


def test_a_dry_run_lists_what_would_be_built_and_builds_nothing(config: Path) -> None:
    ti = FakeTi()
    run = _run(ti, dry_run=True)
    run.folder = config
    assert steps.list_builds(run) == []
    ti.store[("build.list_builds", SUMMARY_XCOM_KEY)] = ti.pushed[SUMMARY_XCOM_KEY]
    assert built_vm_names(run) is None  # capture behaves as without a build
    assert all(text.startswith("would build VM ") for text in build_summary(run).values())


def test_without_the_switch_nothing_is_built_and_capture_is_as_before() -> None:
    ti = FakeTi()
    run = _run(ti)
    assert steps.list_builds(run) == []
    assert ti.pushed[SUMMARY_XCOM_KEY] == {"building": False, "dry_run": False}
    ti.store[("build.list_builds", SUMMARY_XCOM_KEY)] = ti.pushed[SUMMARY_XCOM_KEY]
    assert built_vm_names(run) is None and build_summary(run) == {}


def test_build_paths_must_select_a_template(config: Path) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    from image_factory import tasks
    from image_factory.exceptions import ConfigurationError

    run = _run(FakeTi(), build_paths=["Win2099"])
    run.folder = config
    with pytest.raises(ConfigurationError, match="param build_paths: 'Win2099'"):
        steps.list_builds(run)
    with pytest.raises(AirflowFailException, match="build_paths"):
        tasks.validate_config(run)


def test_the_build_param_is_parsed() -> None:
    assert RunParams.from_mapping({"build": "on"}).build is True
    assert RunParams.from_mapping({"build": "off"}).build is False
    assert RunParams.from_mapping({"build": "factory.json"}).build is None
    assert RunParams.from_mapping({}).build is None
    assert RunParams.from_mapping({"build": "maybe"}).problems
