"""Backfills through the REST API (``POST /api/v2/backfills``, what ``airflow backfill create`` does): make one,
wait until its runs end.

Airflow creates every run of a backfill when the backfill is created (queued), so "its runs ended" is known at once;
a backfill that created no run (``reprocess_behavior: "none"`` over nights that already have one) is only marked
complete by the scheduler, on a 30 s timer. Until a backfill is marked complete, another one for the same DAG is
refused with 409.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from stack.rest import TERMINAL_RUN_STATES, AirflowClient

BACKFILL_RUN_TYPE = "backfill"


@dataclass(frozen=True)
class BackfillOutcome:
    """A backfill as the api-server last reported it, and its runs in their final states."""

    backfill: dict[str, Any]
    runs: list[dict[str, Any]]

    @property
    def succeeded(self) -> bool:
        return all(run["state"] == "success" for run in self.runs)


def backfill_create_args(
    dag_id: str, from_date: str, to_date: str, *, reprocess_behavior: str, max_active_runs: int | None = None
) -> list[str]:
    """Return the arguments of ``airflow backfill create`` for the same backfill as ``run_backfill``."""
    args = ["backfill", "create", "--dag-id", dag_id, "--from-date", from_date, "--to-date", to_date]
    args += ["--reprocess-behavior", reprocess_behavior]
    return args if max_active_runs is None else [*args, "--max-active-runs", str(max_active_runs)]


def backfill_runs(client: AirflowClient, backfill: dict[str, Any]) -> list[dict[str, Any]]:
    """Return the backfill runs of the backfill's DAG whose logical date lies in its range.

    The REST API does not link a run to its backfill: a run an earlier backfill took over in the same range counts too.
    """
    runs = client.dag_runs_between(str(backfill["dag_id"]), str(backfill["from_date"]), str(backfill["to_date"]))
    return [run for run in runs if run.get("run_type") == BACKFILL_RUN_TYPE]


def wait_for_backfill(
    client: AirflowClient, backfill_id: int, *, timeout: float = 900, interval: float = 3.0
) -> BackfillOutcome:
    """Wait until every run of the backfill ended (or, when it created none, until Airflow marks it complete)."""
    deadline = time.monotonic() + timeout
    while True:
        backfill = client.backfill(backfill_id)
        runs = backfill_runs(client, backfill)
        if runs and all(run["state"] in TERMINAL_RUN_STATES for run in runs):
            return BackfillOutcome(backfill, runs)
        if not runs and backfill.get("completed_at"):
            return BackfillOutcome(backfill, [])
        if time.monotonic() > deadline:
            states = {run["dag_run_id"]: run["state"] for run in runs}
            raise TimeoutError(f"backfill {backfill_id} did not end within {timeout:.0f}s: {states}")
        time.sleep(interval)


def run_backfill(
    client: AirflowClient,
    dag_id: str,
    from_date: str,
    to_date: str,
    *,
    reprocess_behavior: str = "completed",
    timeout: float = 900,
) -> BackfillOutcome:
    """Create a backfill over [``from_date``, ``to_date``] and wait until its runs end."""
    backfill = client.create_backfill(dag_id, from_date, to_date, reprocess_behavior=reprocess_behavior)
    return wait_for_backfill(client, int(backfill["id"]), timeout=timeout)
