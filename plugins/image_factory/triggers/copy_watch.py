"""Watch a server-side blob copy until it ends: the status → event mapping and the adaptive polling loop.

Plain functions that a trigger's ``run()`` calls with a way to read the copy state (a factory blob through the
storage hook, a lab's upload blob through its SAS): no trigger object is needed to watch a copy.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING

from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError

from image_factory.polling import PollSchedule, parse_progress
from image_factory.redact import redact
from image_factory.states import FAILED_COPY, CopyStatus
from image_factory.triggers.events import CopyEvent

if TYPE_CHECKING:
    from image_factory.hooks.storage import CopyState
    from image_factory.triggers import TriggerLog

#: Consecutive failed status reads (after the SDK's own retries) a copy watch rides out before giving up.
TRANSIENT_READ_FAILURES = 5


@dataclass(frozen=True)
class WatchedCopy:
    """The copy being watched: into ``blob``, ours if ``copy_id`` (None: whichever is running), until ``deadline``.

    :param deadline: absolute deadline, epoch seconds (survives a triggerer restart).
    :param poll_interval: the longest wait between two reads of the copy status (see ``polling``).
    """

    label: str
    blob: str
    deadline: float
    poll_interval: float
    copy_id: str | None = None


def retry_after_seconds(exc: BaseException, now: float | None = None) -> float:
    """Return the wait a failed response's ``Retry-After`` (seconds or an HTTP date) asks for; 0 without one."""
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None) or {}
    value = headers.get("retry-after-ms") or headers.get("x-ms-retry-after-ms")
    if value:
        try:
            return max(0.0, float(value) / 1000)
        except ValueError:
            pass
    value = headers.get("Retry-After") or headers.get("retry-after")
    if not value:
        return 0.0
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            when = parsedate_to_datetime(value).timestamp()
        except (TypeError, ValueError):
            return 0.0
        return max(0.0, when - (time.time() if now is None else now))


def copy_event(copy: WatchedCopy, state: CopyState, now: float) -> CopyEvent | None:  # noqa: PLR0911
    """Map a copy state to the event to fire, or None to keep waiting."""
    label, blob = copy.label, copy.blob

    def error(message: str, *, timeout: bool = False) -> CopyEvent:
        return CopyEvent(
            status="error", label=label, blob=blob, copy_id=state.copy_id, message=message, timeout=timeout
        )

    if not state.exists:
        return error(f"{label}: destination blob {blob} is gone")
    if copy.copy_id and state.copy_id and state.copy_id != copy.copy_id:
        return error(f"{label}: another copy ({state.copy_id}) replaced ours ({copy.copy_id})")
    if state.status == CopyStatus.SUCCESS:
        return CopyEvent(
            status="success", label=label, blob=blob, copy_id=state.copy_id, size=state.size, message="copy succeeded"
        )
    if state.status in FAILED_COPY:
        return error(f"{label}: copy {state.status}: {state.description or 'no description'}")
    if state.status != CopyStatus.PENDING:
        return error(f"{label}: {blob} has no copy in progress")
    if now >= copy.deadline:
        return error(f"{label}: copy still pending ({state.progress or '?'}) at its deadline", timeout=True)
    return None


def _read_failure_is_transient(exc: BaseException, failures: int) -> bool:
    """Tell whether a failed status read is worth another (throttled, 5xx, connection), ``failures`` counted."""
    status = getattr(exc, "status_code", None)
    return failures <= TRANSIENT_READ_FAILURES and (status is None or status >= 500 or status == 429)


async def _sleep_until_next(copy: WatchedCopy, delay: float) -> None:
    await asyncio.sleep(max(0.0, min(delay, copy.deadline - time.time())))


async def watch_copy(copy: WatchedCopy, read: Callable[[], Awaitable[CopyState]], log: TriggerLog) -> CopyEvent:
    """Poll ``read`` (adaptively, at most ``poll_interval`` apart) until the copy ends; return its event."""
    schedule = PollSchedule(cap=copy.poll_interval)
    failures = 0
    while True:
        try:
            state = await read()
        except (ServiceRequestError, ServiceResponseError, HttpResponseError) as exc:
            # The SDK already retried this read; a copy runs on in Azure regardless, so a few more failed
            # status reads are no reason to hand the pair back to a worker (a retry a minute later).
            failures += 1
            if not _read_failure_is_transient(exc, failures):
                raise
            log.warning(
                "%s: reading the copy status failed (%s), %d/%d; trying again",
                copy.label,
                redact(str(exc))[:200],
                failures,
                TRANSIENT_READ_FAILURES,
            )
            # A throttled read (429/503) says when to come back: never sooner than its Retry-After.
            await _sleep_until_next(copy, max(schedule.next_delay(time.time()), retry_after_seconds(exc)))
            if time.time() >= copy.deadline:
                raise
            continue
        failures = 0
        fired = copy_event(copy, state, time.time())
        if fired is not None:
            return fired
        percent = state.percent
        log.info(
            "%s: copy %s, %s",
            copy.label,
            state.status,
            f"{percent:.1f}%" if percent is not None else "progress unknown",
        )
        await _sleep_until_next(copy, schedule.next_delay(time.time(), parse_progress(state.progress)))
