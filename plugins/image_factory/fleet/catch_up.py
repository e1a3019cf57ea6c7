""" "Catch up this lab": a dry run of the factory for one lab, then, once it has planned, the real run.

Both runs are triggered through Airflow's own REST API (``POST /api/v2/dags/{dag_id}/dagRuns``) with the token of
the person who clicked, so Airflow checks their rights exactly as for the UI's Trigger button; the plugin holds
no credential of its own. A catch-up run never captures (that is the night's job): it distributes the
catalogue's versions the lab lacks and retires what it holds beyond ``ImagesToSave``.
"""

from __future__ import annotations

from typing import Any, Protocol

from image_factory.fleet.store import RunInfo
from image_factory.settings import DAG_ID


class CatchUpRefused(Exception):
    """Airflow (or the plugin) refused the catch-up: carries the HTTP status to answer with and why."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


class AirflowApi(Protocol):
    """What the catch-up action needs of Airflow's REST API."""

    def trigger(self, token: str, conf: dict[str, Any]) -> dict[str, Any]:
        """Trigger a run of the factory DAG as the token's user; return the new run; CatchUpRefused on an error."""
        ...


def catch_up_conf(lab: str, *, dry_run: bool) -> dict[str, Any]:
    """Return the run conf of a catch-up (or its dry run) of ``lab``."""
    return {"labs": [lab], "dry_run": dry_run, "capture": False}


def refusal(dry_run: RunInfo | None, lab: str) -> str | None:
    """Return why the real catch-up of ``lab`` may not start after ``dry_run``, or None when it may."""
    if dry_run is None:
        return "no such dry run: start with a dry run of this lab"
    labs = [str(name).casefold() for name in dry_run.conf.get("labs", ())]
    if labs != [lab.casefold()] or dry_run.conf.get("dry_run") is not True:
        return f"run {dry_run.run_id} is not a dry run of {lab} alone"
    if dry_run.state != "success":
        return f"the dry run {dry_run.run_id} is {dry_run.state}: wait until it succeeded (or see why it failed)"
    return None


class RestAirflowApi:
    """Airflow's REST API at ``base_url`` (the api-server's own ``[api] base_url``)."""

    def __init__(self, base_url: str, *, verify: bool | str = True, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.verify = verify
        self.timeout = timeout

    def trigger(self, token: str, conf: dict[str, Any]) -> dict[str, Any]:
        import httpx  # noqa: PLC0415 - only the api-server needs it

        try:
            response = httpx.post(
                f"{self.base_url}/api/v2/dags/{DAG_ID}/dagRuns",
                json={"logical_date": None, "conf": conf},
                headers={"Authorization": f"Bearer {token}"},
                timeout=self.timeout,
                verify=self.verify,
            )
        except httpx.HTTPError as exc:
            raise CatchUpRefused(502, f"Airflow's REST API at {self.base_url} did not answer: {exc}") from exc
        if response.status_code >= 400:
            raise CatchUpRefused(response.status_code, _detail(response))
        body: dict[str, Any] = response.json()
        return body


def _detail(response: Any) -> str:
    try:
        detail = response.json().get("detail")
    except ValueError:
        detail = None
    return str(detail or response.text[:500] or f"HTTP {response.status_code}")
