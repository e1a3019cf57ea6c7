"""CaptureTrigger: serialization without secrets, run() against a fake async storage hook."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from image_factory.hooks.storage import CopyState
from image_factory.triggers import capture
from image_factory.triggers.capture import CaptureTrigger


def _capture(**overrides: Any) -> CaptureTrigger:
    kwargs: dict[str, Any] = {
        "container": "imagefactoryvhds",
        "blob": "img-2025-03-01-abcd.vhd",
        "storage_conn_id": "image_factory_storage",
        "deadline": time.time() + 60,
        "poll_interval": 0.01,
        "label": "capture vm → img",
        "copy_id": "c1",
        "not_before": time.time() + 5,
    }
    kwargs.update(overrides)
    return CaptureTrigger(**kwargs)


def test_round_trips_without_secrets() -> None:
    classpath, kwargs = _capture().serialize()
    assert classpath == "image_factory.triggers.capture.CaptureTrigger"
    again = CaptureTrigger(**kwargs)
    assert again.serialize() == (classpath, kwargs)
    text = json.dumps(kwargs)
    assert "sig=" not in text and "AccountKey" not in text and "secret" not in text.lower()
    assert isinstance(kwargs["deadline"], float)


def test_rejects_incomplete_arguments() -> None:
    with pytest.raises(ValueError, match="capture copy"):
        CaptureTrigger(container="", blob="b", storage_conn_id="s", deadline=1.0)
    with pytest.raises(ValueError, match="capture copy"):
        CaptureTrigger(container="c", blob="b", storage_conn_id="", deadline=1.0)


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


async def test_run_polls_until_success(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeStorage(
        [
            CopyState(exists=True, status="pending", progress="0/4"),
            CopyState(exists=True, status="pending", progress="2/4"),
            CopyState(exists=True, status="success", size=4),
        ]
    )
    monkeypatch.setattr(capture, "FactoryStorageAsyncHook", lambda wasb_conn_id: fake)
    trigger = _capture(blob="x.vhd", copy_id=None, not_before=None, deadline=time.time() + 30)
    events = [e async for e in trigger.run()]
    assert [e.payload["status"] for e in events] == ["success"]
    assert events[0].payload["kind"] == "copy" and events[0].payload["size"] == 4
    assert fake.reads == 3
    assert fake.closed


async def test_run_turns_exceptions_into_error_events(monkeypatch: pytest.MonkeyPatch) -> None:
    class Broken(FakeStorage):
        async def copy_state_async(self, container: str, blob: str) -> CopyState:
            raise RuntimeError("https://x/y?sv=1&sig=SECRET broke")

    fake = Broken([])
    monkeypatch.setattr(capture, "FactoryStorageAsyncHook", lambda wasb_conn_id: fake)
    trigger = _capture(blob="x.vhd", container="c", storage_conn_id="s", deadline=time.time() + 5, not_before=None)
    events = [e async for e in trigger.run()]
    assert events[0].payload["status"] == "error" and events[0].payload["kind"] == "error"
    assert "SECRET" not in events[0].payload["message"]
    assert fake.closed
