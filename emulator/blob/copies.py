"""Azure's asynchronous copies over Azurite's instant ones: each copy's state in time, and their statistics."""

from __future__ import annotations

import asyncio
import contextlib
import html
import logging
import re
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from emulator.blob.operations import BlobKey, redact
from emulator.blob.responses import Buffered, http_date
from emulator.faults import Fault

log = logging.getLogger(__name__)

PENDING, SUCCESS, FAILED, ABORTED = "pending", "success", "failed", "aborted"
_BLOB_ELEMENT = re.compile(rb"<Blob>.*?</Blob>", re.DOTALL)
_NAME_ELEMENT = re.compile(rb"<Name>(.*?)</Name>", re.DOTALL)
_COPY_ELEMENT = re.compile(rb"<(Copy\w+)>.*?</\1>|<Copy\w+\s*/>", re.DOTALL)
#: List Blobs' ``<Properties>`` elements for the ``x-ms-copy-*`` headers, in the service's order.
_LISTING_COPY_TAGS = (
    ("CopyId", "x-ms-copy-id"),
    ("CopyStatus", "x-ms-copy-status"),
    ("CopySource", "x-ms-copy-source"),
    ("CopyProgress", "x-ms-copy-progress"),
    ("CopyCompletionTime", "x-ms-copy-completion-time"),
    ("CopyStatusDescription", "x-ms-copy-status-description"),
)


@dataclass
class CopyRecord:
    """The emulator's bookkeeping of one asynchronous copy onto a destination blob."""

    copy_id: str
    destination: BlobKey
    source_account: str | None
    source_url: str  # signature redacted
    total: int
    start: float  # monotonic
    start_wall: float
    duration: float
    planned_end: float
    planned_status: str
    description: str | None = None
    ended_at: float | None = None
    end_status: str | None = None
    #: Set once a failed/aborted destination has been emptied (or at once for other outcomes).
    settled: asyncio.Event = field(default_factory=asyncio.Event)

    def end(self) -> float:
        """Return the monotonic time the copy stops (or stopped) being pending."""
        return self.ended_at if self.ended_at is not None else self.planned_end

    def status(self, now: float) -> str:
        """Return the copy status at monotonic time ``now``."""
        if now < self.end():
            return PENDING
        if self.ended_at is not None and self.end_status is not None:
            return self.end_status
        return self.planned_status

    def copied(self, now: float) -> int:
        """Return how many bytes are copied at ``now``."""
        if self.status(now) == SUCCESS:
            return self.total
        if self.duration <= 0:
            return self.total
        fraction = max(0.0, min(1.0, (min(now, self.end()) - self.start) / self.duration))
        return int(self.total * fraction)

    def completion_wall(self) -> float:
        """Return the wall-clock time the copy ended."""
        return self.start_wall + (self.end() - self.start)

    def headers(self, now: float) -> dict[str, str]:
        """Return the ``x-ms-copy-*`` response headers describing the copy at ``now``."""
        status = self.status(now)
        result = {
            "x-ms-copy-id": self.copy_id,
            "x-ms-copy-source": self.source_url,
            "x-ms-copy-status": status,
            "x-ms-copy-progress": f"{self.copied(now)}/{self.total}",
        }
        if status != PENDING:
            result["x-ms-copy-completion-time"] = http_date(self.completion_wall())
        description = self.status_description(now)
        if description:
            result["x-ms-copy-status-description"] = description
        return result

    def status_description(self, now: float) -> str | None:
        """Return the copy status description at ``now`` (set for failed and aborted copies)."""
        status = self.status(now)
        if status == FAILED:
            return self.description or '500 InternalError "Copy failed."'
        if status == ABORTED:
            return self.description or "Copy aborted."
        return None

    def summary(self, now: float) -> dict[str, Any]:
        """Return a JSON-able description (no secrets) for stats."""
        account, container, blob = self.destination
        return {
            "copy_id": self.copy_id,
            "source_account": self.source_account,
            "destination_account": account,
            "container": container,
            "blob": blob,
            "source": self.source_url,
            "bytes": self.total,
            "copied": self.copied(now),
            "status": self.status(now),
            "seconds": round(self.end() - self.start, 3),
        }


class CopyTracker:
    """Asynchronous-copy state per destination blob, with statistics over time spans."""

    def __init__(
        self,
        *,
        copy_seconds: float,
        copy_bandwidth: float | None,
        empty_blob: Callable[[BlobKey], Awaitable[None]],
    ) -> None:
        """Track copies lasting ``copy_seconds`` (or size/bandwidth); ``empty_blob`` voids failed ones."""
        self.copy_seconds = copy_seconds
        self.copy_bandwidth = copy_bandwidth
        self._empty_blob = empty_blob
        self.active: dict[BlobKey, CopyRecord] = {}
        self.history: list[CopyRecord] = []
        self.starting: set[BlobKey] = set()
        self._epoch = time.monotonic()
        self._tasks: set[asyncio.Task[None]] = set()
        self._timers: dict[str, asyncio.TimerHandle] = {}

    def duration_for(self, size: int) -> float:
        """Return how long a copy of ``size`` bytes stays pending."""
        if self.copy_bandwidth:
            return size / self.copy_bandwidth
        return self.copy_seconds

    def pending(self, key: BlobKey, now: float | None = None) -> CopyRecord | None:
        """Return the record of a copy pending on ``key``, or None."""
        record = self.active.get(key)
        moment = time.monotonic() if now is None else now
        if record is not None and record.status(moment) == PENDING:
            return record
        return None

    def start(
        self,
        *,
        key: BlobKey,
        copy_id: str,
        source_account: str | None,
        source_url: str,
        total: int,
        fault: Fault | None,
    ) -> CopyRecord:
        """Record a copy that Azurite has just completed and schedule its emulated end."""
        now = time.monotonic()
        duration = self.duration_for(total)
        planned_status, description, end = SUCCESS, None, now + duration
        if fault is not None and fault.kind == "copy_fail":
            planned_status = FAILED
            description = f'{fault.status} {fault.error_code} "{fault.message}"'
        elif fault is not None and fault.kind == "copy_abort":
            planned_status, end = ABORTED, now + duration / 2
            description = f"Copy aborted half-way: {fault.message}"
        record = CopyRecord(
            copy_id=copy_id,
            destination=key,
            source_account=source_account,
            source_url=redact(source_url),
            total=total,
            start=now,
            start_wall=time.time(),
            duration=duration,
            planned_end=end,
            planned_status=planned_status,
            description=description,
        )
        self._replace(key, record)
        self.history.append(record)
        self._schedule(record, end - now)
        return record

    def abort(self, record: CopyRecord, description: str = "Copy aborted by the client.") -> None:
        """End a pending copy now as ``aborted`` and void its destination."""
        record.ended_at = time.monotonic()
        record.end_status = ABORTED
        record.description = description
        self._schedule(record, 0.0)

    def forget(self, key: BlobKey) -> None:
        """Drop the bookkeeping of ``key`` (deleted or overwritten); a pending copy counts as aborted."""
        record = self.active.pop(key, None)
        if record is None:
            return
        self._cancel_timer(record)
        if record.status(time.monotonic()) == PENDING:
            record.ended_at = time.monotonic()
            record.end_status = ABORTED
            record.description = "Destination blob deleted or overwritten."
        record.settled.set()

    def forget_container(self, account: str, container: str) -> None:
        """Drop the bookkeeping of every blob of a deleted container."""
        for key in [key for key in self.active if key[0] == account and key[1] == container]:
            self.forget(key)

    def pending_now(self) -> int:
        """Return how many copies are pending at this instant."""
        now = time.monotonic()
        return sum(1 for record in self.history if record.status(now) == PENDING)

    def stats(self) -> dict[str, Any]:
        """Return copy counts, the maximum and current number of pending copies, and each copy's summary."""
        now = time.monotonic()
        statuses = Counter(record.status(now) for record in self.history)
        events: list[tuple[float, int]] = []
        for record in self.history:
            begin, finish = max(record.start, self._epoch), record.end()
            if finish > begin:
                events.extend(((begin, 1), (finish, -1)))
        events.sort()  # at equal times, ends (-1) sort before starts (+1)
        current = highest = 0
        for _, delta in events:
            current += delta
            highest = max(highest, current)
        return {
            "started": len(self.history),
            "completed": statuses[SUCCESS],
            "failed": statuses[FAILED],
            "aborted": statuses[ABORTED],
            "pending_now": statuses[PENDING],
            "max_pending": highest,
            "transfers": [record.summary(now) for record in self.history],
        }

    def reset_stats(self) -> None:
        """Start a new statistics window; copies still pending stay counted from now on."""
        now = time.monotonic()
        self._epoch = now
        self.history = [record for record in self.history if record.status(now) == PENDING]

    async def close(self) -> None:
        """Cancel timers and wait for pending clean-ups."""
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def _replace(self, key: BlobKey, record: CopyRecord) -> None:
        previous = self.active.get(key)
        if previous is not None:
            self._cancel_timer(previous)
            previous.settled.set()
        self.active[key] = record

    def _cancel_timer(self, record: CopyRecord) -> None:
        timer = self._timers.pop(record.copy_id, None)
        if timer is not None:
            timer.cancel()

    def _schedule(self, record: CopyRecord, delay: float) -> None:
        self._cancel_timer(record)
        loop = asyncio.get_running_loop()
        self._timers[record.copy_id] = loop.call_later(max(delay, 0.0), self._finish, record)

    def _finish(self, record: CopyRecord) -> None:
        self._timers.pop(record.copy_id, None)
        if self.active.get(record.destination) is not record:
            record.settled.set()
            return
        if record.status(time.monotonic()) in (FAILED, ABORTED):
            task = asyncio.get_running_loop().create_task(self._void(record))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        else:
            record.settled.set()

    async def _void(self, record: CopyRecord) -> None:
        try:
            await self._empty_blob(record.destination)
        except Exception:
            log.exception("Could not empty the destination of failed copy %s", record.copy_id)
        finally:
            record.settled.set()


def show_copy_state(response: Buffered, record: CopyRecord) -> None:
    """Put the emulated copy state in a response's ``x-ms-copy-*`` headers (not Azurite's instant one)."""
    response.set_headers(record.headers(time.monotonic()), drop=("x-ms-copy-completion-time",))


def listing_with_copies(body: bytes, records: dict[str, CopyRecord], *, wants_copy: bool, now: float) -> bytes:
    """Rewrite a List Blobs body so the blobs in ``records`` (by name) show their emulated copy state.

    A blob's Azurite copy elements are always removed; the emulated ones are added when the client asked for
    ``include=copy`` or Azurite had listed copy elements for it.
    """

    def rewrite(match: re.Match[bytes]) -> bytes:
        element = match.group(0)
        name = _NAME_ELEMENT.search(element)
        record = records.get(html.unescape(name.group(1).decode())) if name is not None else None
        if record is None:
            return element
        had_copy = _COPY_ELEMENT.search(element) is not None
        element = _COPY_ELEMENT.sub(b"", element)
        if not (wants_copy or had_copy):
            return element
        values = record.headers(now)
        xml = "".join(
            f"<{tag}>{html.escape(values[header])}</{tag}>" for tag, header in _LISTING_COPY_TAGS if header in values
        )
        return element.replace(b"</Properties>", xml.encode() + b"</Properties>", 1)

    return _BLOB_ELEMENT.sub(rewrite, body)
