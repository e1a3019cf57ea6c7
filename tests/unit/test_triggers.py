"""Triggers: serialization without secrets, pure status → event mapping, run() against fake async hooks."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from image_factory.hooks.storage import CopyState
from image_factory.triggers import blob_copy, lro
from image_factory.triggers.blob_copy import BlobCopyTrigger
from image_factory.triggers.lro import CustomImageTrigger


def _lab_copy(**overrides: Any) -> BlobCopyTrigger:
    kwargs: dict[str, Any] = {
        "target": "lab",
        "blob": "img-2025-03-01-abcd.vhd",
        "deadline": time.time() + 60,
        "poll_interval": 0.01,
        "arm_conn_id": "image_factory_arm",
        "subscription_id": "sub",
        "resource_group": "rg",
        "lab_name": "DevLab",
        "copy_id": "c1",
    }
    kwargs.update(overrides)
    return BlobCopyTrigger(**kwargs)


def test_copy_trigger_round_trips_without_secrets() -> None:
    trigger = _lab_copy()
    classpath, kwargs = trigger.serialize()
    assert classpath == "image_factory.triggers.blob_copy.BlobCopyTrigger"
    again = BlobCopyTrigger(**kwargs)
    assert again.serialize() == (classpath, kwargs)
    text = json.dumps(kwargs)
    assert "sig=" not in text and "AccountKey" not in text and "secret" not in text.lower()
    assert isinstance(kwargs["deadline"], float)


def test_image_trigger_round_trips() -> None:
    trigger = CustomImageTrigger(
        arm_conn_id="a", subscription_id="s", resource_group="r", lab_name="L", image_name="i", deadline=5.0
    )
    classpath, kwargs = trigger.serialize()
    assert classpath == "image_factory.triggers.lro.CustomImageTrigger"
    assert CustomImageTrigger(**kwargs).serialize() == (classpath, kwargs)


def test_copy_trigger_rejects_incomplete_arguments() -> None:
    with pytest.raises(ValueError, match="lab copy"):
        BlobCopyTrigger(target="lab", blob="b", deadline=1.0)
    with pytest.raises(ValueError, match="factory copy"):
        BlobCopyTrigger(target="factory", blob="b", deadline=1.0)


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        (CopyState(exists=True, status="success", copy_id="c1", size=1024), "success"),
        (CopyState(exists=True, status="failed", copy_id="c1", description="boom"), "error"),
        (CopyState(exists=True, status="aborted", copy_id="c1"), "error"),
        (CopyState(exists=False), "error"),
        (CopyState(exists=True, status="pending", copy_id="other"), "error"),
        (CopyState(exists=True, status="pending", copy_id="c1", progress="1/2"), None),
    ],
)
def test_copy_event_for(state: CopyState, expected: str | None) -> None:
    fired = _lab_copy().event_for(state, time.time())
    assert (fired.payload["status"] if fired else None) == expected


def test_copy_event_times_out_at_deadline() -> None:
    trigger = _lab_copy(deadline=100.0)
    fired = trigger.event_for(CopyState(exists=True, status="pending", copy_id="c1"), now=101.0)
    assert fired is not None and fired.payload["status"] == "error" and fired.payload["timeout"]


@pytest.mark.parametrize(
    ("state", "expected"),
    [("Succeeded", "success"), ("Failed", "error"), ("Canceled", "error"), (None, "error"), ("Creating", None)],
)
def test_image_event_for(state: str | None, expected: str | None) -> None:
    trigger = CustomImageTrigger(
        arm_conn_id="a", subscription_id="s", resource_group="r", lab_name="L", image_name="i", deadline=1e12
    )
    fired = trigger.event_for(state, time.time())
    assert (fired.payload["status"] if fired else None) == expected


class FakeStorage:
    """Stands in for FactoryStorageAsyncHook: returns scripted copy states."""

    def __init__(self, states: list[CopyState]) -> None:
        self.states = states
        self.closed = False
        self.reads = 0

    async def copy_state_async(self, container: str, blob: str) -> CopyState:
        self.reads += 1
        return self.states.pop(0)

    async def aclose(self) -> None:
        self.closed = True


async def test_factory_copy_run_polls_until_success(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeStorage(
        [
            CopyState(exists=True, status="pending", progress="0/4"),
            CopyState(exists=True, status="pending", progress="2/4"),
            CopyState(exists=True, status="success", size=4),
        ]
    )
    monkeypatch.setattr(blob_copy, "FactoryStorageAsyncHook", lambda wasb_conn_id: fake)
    trigger = BlobCopyTrigger(
        target="factory",
        blob="x.vhd",
        container="imagefactoryvhds",
        storage_conn_id="s",
        deadline=time.time() + 30,
        poll_interval=0.01,
    )
    events = [e async for e in trigger.run()]
    assert [e.payload["status"] for e in events] == ["success"]
    assert fake.reads == 3
    assert fake.closed


async def test_copy_run_turns_exceptions_into_error_events(monkeypatch: pytest.MonkeyPatch) -> None:
    class Broken(FakeStorage):
        async def copy_state_async(self, container: str, blob: str) -> CopyState:
            raise RuntimeError("https://x/y?sv=1&sig=SECRET broke")

    fake = Broken([])
    monkeypatch.setattr(blob_copy, "FactoryStorageAsyncHook", lambda wasb_conn_id: fake)
    trigger = BlobCopyTrigger(
        target="factory", blob="x.vhd", container="c", storage_conn_id="s", deadline=time.time() + 5
    )
    events = [e async for e in trigger.run()]
    assert events[0].payload["status"] == "error"
    assert "SECRET" not in events[0].payload["message"]
    assert fake.closed


class FakeArm:
    """Stands in for DevTestLabsAsyncHook in CustomImageTrigger."""

    def __init__(self, states: list[str | None]) -> None:
        self.states = states

    async def __aenter__(self) -> FakeArm:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def custom_image_state_async(self, *args: str) -> str | None:
        return self.states.pop(0)


async def test_image_run_polls_until_failed(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeArm(["Creating", "Creating", "Failed"])
    monkeypatch.setattr(lro, "DevTestLabsAsyncHook", lambda arm_conn_id: fake)
    trigger = CustomImageTrigger(
        arm_conn_id="a",
        subscription_id="s",
        resource_group="r",
        lab_name="L",
        image_name="i",
        deadline=time.time() + 30,
        poll_interval=0.01,
    )
    events = [e async for e in trigger.run()]
    assert len(events) == 1 and events[0].payload["status"] == "error"
    assert "Failed" in events[0].payload["message"]
    assert fake.states == []
