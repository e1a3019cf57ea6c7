"""ARM plumbing: error mapping that says what to fix, one client per subscription."""

from __future__ import annotations

import logging
from types import SimpleNamespace
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError

from image_factory.exceptions import ForbiddenError
from image_factory.hooks.arm import HTTP_LOGGER, ArmClients, arm_error


def test_forbidden_error_says_what_to_fix() -> None:
    response = SimpleNamespace(status_code=403, reason="Forbidden", headers={}, text=lambda: "")
    exc = HttpResponseError(message="AuthorizationFailed", response=response)  # type: ignore[arg-type]
    mapped = arm_error(exc, action="create the custom image", scope="lab QALab", principal="cid")
    assert isinstance(mapped, ForbiddenError)
    assert "cid" in str(mapped) and "DevTest Labs User" in str(mapped) and "QALab" in str(mapped)


class FakeClient:
    def __init__(self, credential: Any, subscription_id: str, **kwargs: Any) -> None:
        self.subscription_id = subscription_id
        self.kwargs = kwargs
        self.closed = False

    def close(self) -> None:
        self.closed = True


def test_clients_are_built_once_per_subscription_with_the_connection_settings() -> None:
    conn = SimpleNamespace(
        login=None, password=None, extra_dejson={"arm_endpoint": "https://127.0.0.1:1", "ca_bundle": "/ca.pem"}
    )
    reads: list[int] = []

    def read_connection() -> Any:
        reads.append(1)
        return conn

    clients = ArmClients(FakeClient, read_connection, api_version="2018-09-15")
    clients.credential = object()  # type: ignore[misc]  # no ambient identity in unit tests
    first = clients.client("SUB")
    assert clients.client("sub") is first and clients.client("other") is not first
    assert first.kwargs["api_version"] == "2018-09-15" and first.kwargs["base_url"] == "https://127.0.0.1:1"
    assert first.kwargs["connection_verify"] == "/ca.pem" and reads == [1]
    clients.close()
    assert first.closed


@pytest.mark.parametrize(("env", "level"), [(None, logging.WARNING), ("DEBUG", logging.DEBUG), ("nonsense", 30)])
def test_arm_hooks_quiet_the_sdks_http_header_logging(
    monkeypatch: pytest.MonkeyPatch, env: str | None, level: int
) -> None:
    from image_factory.hooks.compute import FactoryComputeHook
    from image_factory.hooks.devtestlabs import DevTestLabsAsyncHook, DevTestLabsHook

    logger = logging.getLogger(HTTP_LOGGER)
    if env is None:
        monkeypatch.delenv("AZURE_HTTP_LOGGING_LEVEL", raising=False)
    else:
        monkeypatch.setenv("AZURE_HTTP_LOGGING_LEVEL", env)
    for hook in (DevTestLabsHook, DevTestLabsAsyncHook, FactoryComputeHook):
        logger.setLevel(logging.NOTSET)
        hook()
        assert logger.level == level, hook.__name__
