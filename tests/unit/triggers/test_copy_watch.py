"""Copy watching: the pure status → event mapping, deadlines, Retry-After."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest
from azure.core.exceptions import HttpResponseError

from image_factory.hooks.storage import CopyState
from image_factory.triggers.copy_watch import WatchedCopy, copy_event, retry_after_seconds


def _copy(deadline: float | None = None) -> WatchedCopy:
    return WatchedCopy(
        label="DevLab / img",
        blob="img-2025-03-01-abcd.vhd",
        deadline=time.time() + 60 if deadline is None else deadline,
        poll_interval=0.01,
        copy_id="c1",
    )


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
    fired = copy_event(_copy(), state, time.time())
    assert (fired.status if fired else None) == expected


def test_copy_event_times_out_at_deadline() -> None:
    fired = copy_event(_copy(deadline=100.0), CopyState(exists=True, status="pending", copy_id="c1"), now=101.0)
    assert fired is not None and fired.status == "error" and fired.timeout


def _throttled(status: int, headers: dict[str, str]) -> Exception:
    error = HttpResponseError("throttled")
    error.status_code = status
    error.response = SimpleNamespace(headers=headers)  # type: ignore[assignment]
    return error


def test_retry_after_is_read_in_seconds_milliseconds_or_as_a_date() -> None:
    assert retry_after_seconds(_throttled(429, {"Retry-After": "7"})) == 7
    assert retry_after_seconds(_throttled(503, {"x-ms-retry-after-ms": "1500", "Retry-After": "9"})) == 1.5
    assert retry_after_seconds(_throttled(503, {"Retry-After": "Thu, 01 Jan 2026 00:00:30 GMT"}), now=1767225600) == 30
    assert retry_after_seconds(_throttled(503, {})) == 0 and retry_after_seconds(ValueError("x")) == 0
    assert retry_after_seconds(_throttled(503, {"Retry-After": "soon"})) == 0
