"""The run context: params parsed once, the day computed once, the configuration loaded once."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException

from image_factory import run_context
from image_factory.exceptions import ConfigurationError, ImageFactoryError
from image_factory.models import LabRef
from image_factory.run_context import RunContext, RunParams, fails_fast

CONFIG = Path(__file__).resolve().parents[2] / "Configuration"


def test_params_take_the_forms_defaults() -> None:
    params = RunParams.from_mapping({})
    assert (params.labs, params.image_paths) == ((), ())
    assert (params.capture, params.dry_run, params.retire, params.clean_factory) == (True, False, True, False)
    assert params.copy_poll_seconds == 15
    assert params.problems == ()


def test_params_trim_names_and_drop_blanks() -> None:
    params = RunParams.from_mapping({"labs": [" DevLab ", "", "  "], "image_paths": ["Win2016"], "dry_run": True})
    assert params.labs == ("DevLab",)
    assert params.image_paths == ("Win2016",)
    assert params.dry_run is True


def test_recapture_is_parsed_like_image_paths() -> None:
    assert RunParams.from_mapping({}).recapture == ()
    assert RunParams.from_mapping({"recapture": [" Win2016 ", "", "Ubuntu/Ubuntu2204.json"]}).recapture == (
        "Win2016",
        "Ubuntu/Ubuntu2204.json",
    )
    assert RunParams.from_mapping({"recapture": "Win2016"}).recapture == ("Win2016",)


@pytest.mark.parametrize("poll", [0, -3, "5", 2.5, True, None])
def test_a_bad_poll_interval_is_a_problem_not_a_crash(poll: Any) -> None:
    params = RunParams.from_mapping({"copy_poll_seconds": poll})
    assert len(params.problems) == 1
    assert "copy_poll_seconds" in params.problems[0]
    assert params.copy_poll_seconds == 15


def test_labs_are_selected_case_insensitively() -> None:
    lab = LabRef(subscription_id="s", lab_name="DevLab", image_paths=())
    assert RunParams.from_mapping({"labs": ["devlab"]}).selects_lab(lab)
    assert not RunParams.from_mapping({"labs": ["QALab"]}).selects_lab(lab)
    assert RunParams.from_mapping({}).selects_lab(lab)


def _airflow_context(logical_date: datetime | None, run_after: datetime, run_type: str = "scheduled") -> dict:
    dag_run = SimpleNamespace(run_id="scheduled__x", run_type=run_type, run_after=run_after)
    return {"params": {"labs": ["DevLab"]}, "logical_date": logical_date, "dag_run": dag_run, "ti": "the-ti"}


def test_the_day_is_the_utc_date_of_the_logical_date() -> None:
    run = RunContext.from_airflow(
        _airflow_context(datetime(2026, 11, 30, 23, 30, tzinfo=UTC), datetime(2026, 12, 1, 2, tzinfo=UTC))
    )
    assert run.day == "2026-11-30"
    assert run.run_id == "scheduled__x"
    assert run.params.labs == ("DevLab",)
    assert run.ti == "the-ti"
    assert not run.is_backfill


def test_a_run_without_logical_date_takes_the_date_of_run_after() -> None:
    run = RunContext.from_airflow(_airflow_context(None, datetime(2026, 12, 1, 0, 5, tzinfo=UTC), "manual"))
    assert run.day == "2026-12-01"


def test_backfill_runs_are_recognised() -> None:
    run = RunContext.from_airflow(_airflow_context(None, datetime(2026, 12, 1, tzinfo=UTC), "backfill"))
    assert run.is_backfill


def test_the_configuration_is_loaded_once_per_context(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Path] = []
    real = run_context.load_configuration

    def counting(folder: Path) -> Any:
        calls.append(folder)
        return real(folder)

    monkeypatch.setattr(run_context, "load_configuration", counting)
    run = RunContext(params=RunParams(), day="2026-12-01", folder=CONFIG)
    assert run.config is run.config
    assert [lab.lab_name for lab in run.selected_labs()] == ["DevLab", "TestLab", "QALab"]
    assert calls == [CONFIG]


def test_a_step_outside_a_task_has_no_xcom() -> None:
    with pytest.raises(RuntimeError, match="task instance"):
        RunContext(params=RunParams(), day="2026-12-01").xcom()


def test_fails_fast_turns_only_the_named_errors_into_a_final_failure() -> None:
    @fails_fast(ConfigurationError)
    def step(error: Exception) -> None:
        raise error

    with pytest.raises(AirflowFailException, match="broken"):
        step(ConfigurationError("broken", ["labs.json: LabName missing"]))
    with pytest.raises(ImageFactoryError, match="transient"):
        step(ImageFactoryError("transient"))
