"""Compute hook helpers: managed disk ids."""

from __future__ import annotations

import json

import pytest

from image_factory.hooks.compute import FactoryComputeHook, parse_disk_id


def test_ids_parse() -> None:
    assert parse_disk_id("/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/disks/d") == ("s", "g", "d")


async def test_async_client_honours_the_connection_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_IMAGE_FACTORY_ARM",
        json.dumps(
            {
                "conn_type": "azure",
                "login": "cid",
                "password": "s3cret",
                "extra": {"tenantId": "t", "subscriptionId": "sub", "arm_endpoint": "https://127.0.0.1:9"},
            }
        ),
    )
    hook = FactoryComputeHook()
    client = await hook.get_async_conn()
    try:
        assert await hook.get_async_conn() is client
        assert client._config.base_url == "https://127.0.0.1:9"
        assert client._config.subscription_id == "sub"
    finally:
        await client.close()
