"""A small client of Airflow 3's public REST API (``/api/v2``), used as the UI uses it."""

from __future__ import annotations

import time
from typing import Any

import httpx

TERMINAL_RUN_STATES = {"success", "failed"}


class AirflowApiError(RuntimeError):
    """The api-server refused a request."""


class AirflowClient:
    """Token-authenticated calls to the api-server of one stack."""

    def __init__(self, base_url: str, user: str, password: str) -> None:
        self.base_url = base_url.rstrip("/")
        self._user = user
        self._password = password
        self._token: str | None = None
        self._http = httpx.Client(base_url=self.base_url, timeout=30)

    def close(self) -> None:
        self._http.close()

    @property
    def token(self) -> str:
        if self._token is None:
            r = self._http.post("/auth/token", json={"username": self._user, "password": self._password})
            if r.status_code not in (200, 201):
                raise AirflowApiError(f"login as {self._user} failed: {r.status_code} {r.text[:200]}")
            self._token = str(r.json()["access_token"])
        return self._token

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.token}"}
        r = self._http.request(method, f"/api/v2{path}", headers=headers, **kwargs)
        if r.status_code == 401:
            self._token = None
            headers = {"Authorization": f"Bearer {self.token}"}
            r = self._http.request(method, f"/api/v2{path}", headers=headers, **kwargs)
        if r.status_code >= 400:
            raise AirflowApiError(f"{method} {path}: {r.status_code} {r.text[:500]}")
        return r.json() if r.content else None

    # -- DAGs and runs ------------------------------------------------------------------------------------------
    def wait_for_dag(self, dag_id: str, timeout: float = 120) -> dict[str, Any]:
        """Wait until the dag-processor has parsed ``dag_id``; fail fast on an import error."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            errors = self.request("GET", "/importErrors").get("import_errors", [])
            for err in errors:
                if dag_id in str(err.get("filename", "")) or dag_id in str(err.get("stack_trace", "")):
                    raise AirflowApiError(f"DAG {dag_id} failed to import:\n{err.get('stack_trace')}")
            try:
                return dict(self.request("GET", f"/dags/{dag_id}"))
            except AirflowApiError:
                time.sleep(1)
        raise TimeoutError(f"DAG {dag_id} did not appear within {timeout:.0f}s")

    def unpause(self, dag_id: str) -> None:
        self.request("PATCH", f"/dags/{dag_id}", json={"is_paused": False})

    def trigger(self, dag_id: str, conf: dict[str, Any] | None = None, logical_date: str | None = None) -> str:
        body = {"logical_date": logical_date, "conf": conf or {}}
        return str(self.request("POST", f"/dags/{dag_id}/dagRuns", json=body)["dag_run_id"])

    def dag_run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        return dict(self.request("GET", f"/dags/{dag_id}/dagRuns/{run_id}"))

    def dag_runs(self, dag_id: str) -> list[dict[str, Any]]:
        return self._paged(f"/dags/{dag_id}/dagRuns", "dag_runs")

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        return self._paged(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", "task_instances")

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str = "return_value", map_index: int = -1) -> Any:
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/{key}"
        return self.request("GET", path, params={"map_index": map_index, "deserialize": True})["value"]

    def dag_runs_between(self, dag_id: str, start: str, end: str) -> list[dict[str, Any]]:
        """Return the DAG's runs whose logical date lies in [``start``, ``end``] (ISO 8601)."""
        params = {"logical_date_gte": start, "logical_date_lte": end}
        return self._paged(f"/dags/{dag_id}/dagRuns", "dag_runs", params)

    # -- backfills -------------------------------------------------------------------------------------------
    def create_backfill(
        self,
        dag_id: str,
        from_date: str,
        to_date: str,
        *,
        reprocess_behavior: str = "completed",
        max_active_runs: int = 1,
        dag_run_conf: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """``POST /backfills``, as ``airflow backfill create`` does; return the backfill (its ``id``)."""
        body = {
            "dag_id": dag_id,
            "from_date": from_date,
            "to_date": to_date,
            "reprocess_behavior": reprocess_behavior,
            "max_active_runs": max_active_runs,
            "dag_run_conf": dag_run_conf,
        }
        return dict(self.request("POST", "/backfills", json=body))

    def backfills(self, dag_id: str) -> list[dict[str, Any]]:
        """Return the DAG's backfills, oldest first (also those ``airflow backfill create`` made)."""
        return self._paged("/backfills", "backfills", {"dag_id": dag_id})

    def backfill(self, backfill_id: int) -> dict[str, Any]:
        return dict(self.request("GET", f"/backfills/{backfill_id}"))

    def pools(self) -> list[dict[str, Any]]:
        return self._paged("/pools", "pools")

    def _paged(self, path: str, key: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        offset = 0
        while True:
            page = self.request("GET", path, params={**(params or {}), "limit": 100, "offset": offset})
            batch = page.get(key, [])
            items.extend(batch)
            offset += len(batch)
            if not batch or offset >= page.get("total_entries", 0):
                return items
