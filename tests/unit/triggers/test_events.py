"""Trigger events: one type per kind, travelling as plain dicts and read back by ``kind``."""

from __future__ import annotations

import json

import pytest

from image_factory.triggers.events import CopyEvent, ErrorEvent, FactoryEvent, ImageEvent, parse_event, payload


@pytest.mark.parametrize(
    "fired",
    [
        CopyEvent(status="success", label="l", message="copy succeeded", blob="b.vhd", copy_id="c1", size=4),
        ImageEvent(status="error", label="l", message="Failed", image_name="i", provisioning_state="Failed"),
        ErrorEvent(label="l", message="RuntimeError: boom"),
    ],
)
def test_events_round_trip_through_json(fired: FactoryEvent) -> None:
    data = json.loads(json.dumps(payload(fired)))
    assert data["kind"] == fired.kind
    assert parse_event(data) == fired


def test_an_event_without_a_kind_reads_as_an_error() -> None:
    parsed = parse_event({"status": "error", "message": "old", "provisioning_state": "Failed"})
    assert isinstance(parsed, ErrorEvent) and parsed.message == "old"
