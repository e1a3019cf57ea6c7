"""Compute hook: managed disk ids, the disk fingerprint read (against a fake SDK client), the async client."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from image_factory.exceptions import AzureRequestError
from image_factory.hooks.compute import FactoryComputeHook, parse_disk_id
from image_factory.models import DiskFingerprint

DISK_ID = "/subscriptions/s/resourceGroups/ImageFactory-vm-ubuntu-123/providers/Microsoft.Compute/disks/vm-ubuntu-os"
CONNECTION = {
    "conn_type": "azure",
    "login": "cid",
    "password": "s3cret",
    "extra": {"tenantId": "t", "subscriptionId": "sub", "arm_endpoint": "https://127.0.0.1:9"},
}


class FakeDisks:
    """``ComputeManagementClient.disks`` as the fingerprint read uses it: ``get`` answers or raises."""

    def __init__(self, answer: Any) -> None:
        self.answer = answer
        self.calls: list[tuple[str, str]] = []

    def get(self, group: str, name: str) -> Any:
        self.calls.append((group, name))
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def _hook(monkeypatch: pytest.MonkeyPatch, answer: Any) -> tuple[FactoryComputeHook, FakeDisks, list[str]]:
    monkeypatch.setenv("AIRFLOW_CONN_IMAGE_FACTORY_ARM", json.dumps(CONNECTION))
    hook = FactoryComputeHook()
    disks = FakeDisks(answer)
    subscriptions: list[str] = []

    def client(subscription_id: str) -> Any:
        subscriptions.append(subscription_id)
        return SimpleNamespace(disks=disks)

    monkeypatch.setattr(hook, "client", client)
    return hook, disks, subscriptions


def test_the_disk_fingerprint_is_one_disks_get(monkeypatch: pytest.MonkeyPatch) -> None:
    created = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)
    # The SDK deserializes times as aware datetimes; any offset reads as the same UTC instant.
    owned = datetime(2026, 12, 1, 3, 30, 15, 123456, tzinfo=timezone(timedelta(hours=1)))
    disk = SimpleNamespace(
        unique_id="6f1c0b5e-1111-4a2b-9c3d-0123456789ab", time_created=created, last_ownership_update_time=owned
    )
    hook, disks, subscriptions = _hook(monkeypatch, disk)
    assert hook.disk_fingerprint(DISK_ID) == DiskFingerprint(
        unique_id="6f1c0b5e-1111-4a2b-9c3d-0123456789ab",
        time_created="2026-11-30T02:00:00+00:00",
        last_ownership_update_time="2026-12-01T02:30:15.123456+00:00",
    )
    assert disks.calls == [("ImageFactory-vm-ubuntu-123", "vm-ubuntu-os")]
    assert subscriptions == ["s"]


def test_a_disk_azure_says_little_about_reads_as_unknown_fields(monkeypatch: pytest.MonkeyPatch) -> None:
    hook, _, _ = _hook(monkeypatch, SimpleNamespace(unique_id=None, time_created=None, last_ownership_update_time=None))
    assert hook.disk_fingerprint(DISK_ID) == DiskFingerprint(None, None, None)


def test_a_missing_disk_has_no_fingerprint(monkeypatch: pytest.MonkeyPatch) -> None:
    hook, _, _ = _hook(monkeypatch, ResourceNotFoundError("ResourceNotFound"))
    assert hook.disk_fingerprint(DISK_ID) is None


def test_a_refused_disk_read_says_what_failed(monkeypatch: pytest.MonkeyPatch) -> None:
    hook, _, _ = _hook(monkeypatch, HttpResponseError("boom"))
    with pytest.raises(AzureRequestError, match="read disk"):
        hook.disk_fingerprint(DISK_ID)


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
