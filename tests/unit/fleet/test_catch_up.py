"""The catch-up's REST call to Airflow (the user's token, Airflow's refusal passed on) and the store's coverage rule."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from image_factory.fleet.catch_up import CatchUpRefused, RestAirflowApi, catch_up_conf
from image_factory.fleet.store import covers_every_lab


def test_the_run_is_triggered_with_the_users_token(monkeypatch: pytest.MonkeyPatch) -> None:
    sent: dict[str, Any] = {}

    def post(url: str, **kwargs: Any) -> httpx.Response:
        sent.update(url=url, **kwargs)
        return httpx.Response(200, json={"dag_run_id": "manual__x"}, request=httpx.Request("POST", url))

    monkeypatch.setattr(httpx, "post", post)
    started = RestAirflowApi("http://airflow:8080/").trigger("tok", catch_up_conf("QALab", dry_run=True))
    assert started == {"dag_run_id": "manual__x"}
    assert sent["url"] == "http://airflow:8080/api/v2/dags/image_factory/dagRuns"
    assert sent["headers"] == {"Authorization": "Bearer tok"}
    assert sent["json"] == {"logical_date": None, "conf": {"labs": ["QALab"], "dry_run": True, "capture": False}}


@pytest.mark.parametrize(
    ("answer", "status", "detail"),
    [
        (httpx.Response(403, json={"detail": "Forbidden"}), 403, "Forbidden"),
        (httpx.Response(409, text="busy"), 409, "busy"),
    ],
)
def test_airflows_refusal_is_raised_with_its_status(
    monkeypatch: pytest.MonkeyPatch, answer: httpx.Response, status: int, detail: str
) -> None:
    monkeypatch.setattr(httpx, "post", lambda url, **_: answer)
    with pytest.raises(CatchUpRefused) as refused:
        RestAirflowApi("http://airflow").trigger("tok", {})
    assert (refused.value.status, refused.value.detail) == (status, detail)


def test_an_unreachable_api_is_a_502(monkeypatch: pytest.MonkeyPatch) -> None:
    def post(url: str, **_: Any) -> httpx.Response:
        raise httpx.ConnectError("refused")

    monkeypatch.setattr(httpx, "post", post)
    with pytest.raises(CatchUpRefused) as refused:
        RestAirflowApi("http://airflow").trigger("tok", {})
    assert refused.value.status == 502


def test_snapshots_are_read_until_every_lab_is_covered() -> None:
    everyone = [{"name": "A"}, {"name": "B"}]
    newest = {"all_labs": everyone, "labs": [{"name": "a"}]}
    assert not covers_every_lab([])
    assert not covers_every_lab([newest])
    assert covers_every_lab([newest, {"all_labs": everyone, "labs": [{"name": "B"}]}])
