"""stack.backfill: the CLI arguments, and waiting on a backfill's runs through the REST API (a fake client)."""

from __future__ import annotations

from typing import Any

import pytest

from stack import backfill
from stack.backfill import backfill_create_args, wait_for_backfill

BACKFILL = {"id": 7, "dag_id": "image_factory", "from_date": "2026-12-01T01:00:00Z", "to_date": "2026-12-01T03:00:00Z"}


class FakeClient:
    """Answers like the api-server: the backfill, then the DAG's runs in its range, one poll at a time."""

    def __init__(self, polls: list[tuple[dict[str, Any], list[dict[str, Any]]]]) -> None:
        self.polls = polls
        self.calls = 0

    def backfill(self, backfill_id: int) -> dict[str, Any]:
        assert backfill_id == BACKFILL["id"]
        return {**BACKFILL, **self.polls[min(self.calls, len(self.polls) - 1)][0]}

    def dag_runs_between(self, dag_id: str, start: str, end: str) -> list[dict[str, Any]]:
        assert (dag_id, start, end) == (BACKFILL["dag_id"], BACKFILL["from_date"], BACKFILL["to_date"])
        runs = self.polls[min(self.calls, len(self.polls) - 1)][1]
        self.calls += 1
        return runs


def run(state: str, run_type: str = "backfill") -> dict[str, Any]:
    return {"dag_run_id": "scheduled__2026-12-01T02:00:00+00:00", "state": state, "run_type": run_type}


@pytest.fixture(autouse=True)
def no_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(backfill.time, "sleep", lambda _s: None)


def test_cli_arguments_are_the_readme_command() -> None:
    args = backfill_create_args("image_factory", "a", "b", reprocess_behavior="completed")
    assert args == [
        "backfill", "create", "--dag-id", "image_factory", "--from-date", "a", "--to-date", "b",
        "--reprocess-behavior", "completed",
    ]  # fmt: skip
    assert backfill_create_args("d", "a", "b", reprocess_behavior="none", max_active_runs=1)[-2:] == [
        "--max-active-runs",
        "1",
    ]


def test_waits_until_every_backfill_run_ended() -> None:
    client = FakeClient([({"completed_at": None}, [run("queued")]), ({"completed_at": None}, [run("success")])])
    outcome = wait_for_backfill(client, 7)  # type: ignore[arg-type]
    assert outcome.succeeded and [r["state"] for r in outcome.runs] == ["success"]
    assert client.calls == 2


def test_a_backfill_that_created_no_run_ends_when_airflow_marks_it_complete() -> None:
    nightly = run("success", run_type="scheduled")
    client = FakeClient([({"completed_at": None}, [nightly]), ({"completed_at": "2026-12-01T11:00:00Z"}, [nightly])])
    outcome = wait_for_backfill(client, 7)  # type: ignore[arg-type]
    assert outcome.runs == [] and client.calls == 2


def test_gives_up_after_the_timeout() -> None:
    client = FakeClient([({"completed_at": None}, [run("running")])])
    with pytest.raises(TimeoutError, match="did not end"):
        wait_for_backfill(client, 7, timeout=0)  # type: ignore[arg-type]
