"""Credentials: ARM settings from an ``azure`` connection's extras, the secret never in ``repr``."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from image_factory.hooks.credentials import arm_settings


def _conn(extra: dict[str, Any], login: str | None = "cid", password: str | None = "s3cret") -> Any:
    return SimpleNamespace(login=login, password=password, extra_dejson=extra)


def test_arm_settings_with_private_authority() -> None:
    s = arm_settings(
        _conn(
            {
                "tenantId": "t",
                "subscriptionId": "sub",
                "arm_endpoint": "https://127.0.0.1:1/",
                "authority_host": "https://127.0.0.1:1",
                "ca_bundle": "/ca.pem",
            }
        )
    )
    assert s.arm_endpoint == "https://127.0.0.1:1"
    assert s.disable_instance_discovery is True
    assert s.connection_verify == "/ca.pem"
    assert s.client_kwargs()["base_url"] == "https://127.0.0.1:1"
    assert "s3cret" not in repr(s)


def test_arm_settings_defaults_to_public_cloud() -> None:
    s = arm_settings(_conn({"tenantId": "t"}))
    assert s.arm_endpoint == "https://management.azure.com"
    assert s.disable_instance_discovery is False and s.connection_verify is True
    assert not arm_settings(_conn({}, login=None, password=None)).has_client_secret
