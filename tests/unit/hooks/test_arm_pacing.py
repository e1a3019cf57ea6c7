"""Every ARM request of the factory is paced; a 429 is retried after what its Retry-After says (azure-core)."""

from __future__ import annotations

from typing import Any
from unittest import mock

from azure.core.pipeline import Pipeline
from azure.core.pipeline.transport import HttpTransport
from azure.core.rest import HttpRequest

from image_factory.hooks.arm_pacing import ArmPacingPolicy
from image_factory.hooks.credentials import ArmSettings
from image_factory.pacing import ArmBudget, Pacers


class Answer:
    def __init__(self, request: Any, status: int, headers: dict[str, str]) -> None:
        self.request, self.status_code, self.headers = request, status, headers
        self.reason = "x"
        self.content_type = "application/json"

    def text(self, encoding: str | None = None) -> str:
        return "{}"

    def body(self) -> bytes:
        return b"{}"

    def close(self) -> None:
        pass


class ThrottlingTransport(HttpTransport):  # type: ignore[type-arg]
    """Answers 429 (Retry-After: 7) to the first request, 200 after; records sleeps instead of sleeping."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.slept: list[float] = []

    def send(self, request: Any, **kwargs: Any) -> Any:
        self.sent.append(request.method)
        if len(self.sent) == 1:
            return Answer(request, 429, {"Retry-After": "7"})
        return Answer(request, 200, {})

    def sleep(self, duration: float) -> None:
        self.slept.append(duration)

    def open(self) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self) -> ThrottlingTransport:
        return self

    def __exit__(self, *args: Any) -> None:
        pass


def settings() -> ArmSettings:
    return ArmSettings(None, None, None, None, "https://arm", None, True, False)


def test_client_kwargs_pace_after_the_retry_policy() -> None:
    kwargs = settings().client_kwargs()
    assert [type(p).__name__ for p in kwargs["per_retry_policies"]] == ["ArmPacingPolicy"]
    assert [type(p).__name__ for p in settings().async_client_kwargs()["per_retry_policies"]] == [
        "AsyncArmPacingPolicy"
    ]


def test_a_429_is_retried_after_its_retry_after_and_every_attempt_is_paced() -> None:
    pacers = Pacers(ArmBudget(reads_per_second=1000, burst=10))
    transport = ThrottlingTransport()
    retry = settings().client_kwargs()["retry_policy"]
    pipeline = Pipeline(transport, policies=[retry, ArmPacingPolicy(pacers)])  # type: ignore[list-item]
    with mock.patch("time.sleep") as slept:
        response = pipeline.run(HttpRequest("GET", "https://arm/subscriptions/x"))
    assert response.http_response.status_code == 200
    assert transport.sent == ["GET", "GET"]
    assert transport.slept == [7.0], "the retry waited what Retry-After said"
    assert pacers.stats()["reads"]["requests"] == 2, "both attempts went through the pacer"
    slept.assert_not_called()
