"""The HTTPS blob endpoint: a transparent proxy to Azurite with Azure's asynchronous copies and faults.

Choices where Azurite and Azure differ (documented for tests and the benchmark):

- A Copy Blob that Azurite finished instantly is answered ``202`` with ``x-ms-copy-status: pending``; the
  copy stays pending for ``copy_seconds`` (or ``size / copy_bandwidth``) with a growing ``x-ms-copy-progress``.
- While a copy is pending, reading the destination's data (Get Blob) and writing it (Put Blob, Put Page, ...)
  answer ``409 PendingCopyOperation``; its properties and listings show the copy state.
- A copy that ends ``failed`` or ``aborted`` leaves the destination with zero length (its data is deleted in
  Azurite and the blob recreated empty, with its type, content type and metadata), as Azure does on abort.
- Requests that Azurite itself makes to check a cross-account copy source (``User-Agent: axios/...``) are
  counted apart (``internal_requests``) and never get faults.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import email.utils
import html
import logging
import re
import socket
import struct
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import parse_qsl, quote, unquote, urlsplit

import httpx
from uvicorn.protocols.http.h11_impl import H11Protocol

from emulator.faults import COPY_KINDS, THROTTLE_STATUSES, Fault, FaultRules

log = logging.getLogger(__name__)

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
RawHeaders = list[tuple[bytes, bytes]]
BlobKey = tuple[str, str, str]
#: ``account -> query string`` (without ``?``) authorizing the emulator's own calls to Azurite.
CredentialQuery = Callable[[str], str]

HOP_BY_HOP = frozenset(
    {b"connection", b"keep-alive", b"transfer-encoding", b"te", b"upgrade", b"proxy-connection", b"trailer"}
)
PENDING, SUCCESS, FAILED, ABORTED = "pending", "success", "failed", "aborted"
WRITE_OPERATIONS = frozenset(
    {
        "PutBlob",
        "PutBlobFromUrl",
        "CopyBlobFromUrl",
        "PutPage",
        "ClearPages",
        "PutBlock",
        "PutBlockList",
        "AppendBlock",
        "SetBlobProperties",
    }
)
READ_WAIT_SECONDS = 10.0
_SIG = re.compile(r"(?i)(sig=)[^&]*")
_BLOB_ELEMENT = re.compile(rb"<Blob>.*?</Blob>", re.DOTALL)
_NAME_ELEMENT = re.compile(rb"<Name>(.*?)</Name>", re.DOTALL)
_COPY_ELEMENT = re.compile(rb"<(Copy\w+)>.*?</\1>|<Copy\w+\s*/>", re.DOTALL)


def redact(url: str) -> str:
    """Return ``url`` with any SAS signature replaced by ``REDACTED``."""
    return _SIG.sub(r"\1REDACTED", url)


def http_date(epoch: float) -> str:
    """Format a POSIX time as an RFC 1123 date, as Azure sends them."""
    return email.utils.formatdate(epoch, usegmt=True)


# --------------------------------------------------------------------------------------------------------
# Classification
# --------------------------------------------------------------------------------------------------------

_ACCOUNT_OPS = {
    ("GET", "list"): "ListContainers",
    ("GET", "properties"): "GetServiceProperties",
    ("PUT", "properties"): "SetServiceProperties",
    ("GET", "stats"): "GetServiceStats",
    ("POST", "userdelegationkey"): "GetUserDelegationKey",
    ("GET", "blobs"): "FindBlobsByTags",
    ("POST", "batch"): "SubmitBatch",
}
_CONTAINER_OPS = {
    ("PUT", ""): "CreateContainer",
    ("DELETE", ""): "DeleteContainer",
    ("GET", ""): "GetContainerProperties",
    ("GET", "metadata"): "GetContainerMetadata",
    ("PUT", "metadata"): "SetContainerMetadata",
    ("GET", "acl"): "GetContainerAcl",
    ("PUT", "acl"): "SetContainerAcl",
    ("PUT", "lease"): "LeaseContainer",
    ("GET", "list"): "ListBlobs",
    ("GET", "blobs"): "FindBlobsByTagsInContainer",
    ("PUT", "undelete"): "RestoreContainer",
    ("PUT", "rename"): "RenameContainer",
    ("POST", "batch"): "SubmitContainerBatch",
}
_BLOB_OPS = {
    ("GET", ""): "GetBlob",
    ("DELETE", ""): "DeleteBlob",
    ("PUT", "copy"): "AbortCopyBlob",
    ("PUT", "page"): "PutPage",
    ("GET", "pagelist"): "GetPageRanges",
    ("PUT", "incrementalcopy"): "IncrementalCopyBlob",
    ("PUT", "block"): "PutBlock",
    ("PUT", "blocklist"): "PutBlockList",
    ("GET", "blocklist"): "GetBlockList",
    ("PUT", "appendblock"): "AppendBlock",
    ("PUT", "seal"): "SealAppendBlob",
    ("PUT", "metadata"): "SetBlobMetadata",
    ("GET", "metadata"): "GetBlobMetadata",
    ("PUT", "properties"): "SetBlobProperties",
    ("PUT", "lease"): "LeaseBlob",
    ("PUT", "snapshot"): "SnapshotBlob",
    ("PUT", "undelete"): "UndeleteBlob",
    ("PUT", "tier"): "SetBlobTier",
    ("GET", "tags"): "GetBlobTags",
    ("PUT", "tags"): "SetBlobTags",
    ("PUT", "expiry"): "SetBlobExpiry",
    ("PUT", "immutabilitypolicies"): "SetImmutabilityPolicy",
    ("DELETE", "immutabilitypolicies"): "DeleteImmutabilityPolicy",
    ("PUT", "legalhold"): "SetLegalHold",
    ("POST", "query"): "QueryBlobContents",
}


_WRITE_VARIANTS = {
    ("", ""): "PutBlob",
    ("", "from-url"): "PutBlobFromUrl",
    ("", "sync-copy"): "CopyBlobFromUrl",
    ("", "copy"): "CopyBlob",
    ("page", "copy"): "PutPageFromUrl",
    ("page", "clear"): "ClearPages",
    ("block", "copy"): "PutBlockFromUrl",
}


def classify(
    method: str, parts: tuple[str | None, str | None, str | None], query: dict[str, str], headers: dict[str, str]
) -> str:
    """Name the Blob service operation of a request (``Unknown`` when it is none we know)."""
    account, container, blob = parts
    verb = "GET" if method == "HEAD" else method
    comp = query.get("comp", "").lower()
    restype = query.get("restype", "").lower()
    if restype == "account" and comp == "properties":
        return "GetAccountInfo"
    if account is None or (
        blob is None and container is not None and restype != "container" and comp not in ("list", "blobs")
    ):
        return "Unknown"
    if container is None:
        return _ACCOUNT_OPS.get((verb, comp), "Unknown")
    if blob is None:
        return _CONTAINER_OPS.get((verb, comp), "Unknown")
    if method == "HEAD" and comp == "":
        return "GetBlobProperties"
    return _classify_blob_write(verb, comp, headers) or _BLOB_OPS.get((verb, comp), "Unknown")


def _classify_blob_write(verb: str, comp: str, headers: dict[str, str]) -> str | None:
    """Name the blob PUT operations that headers (not the query) tell apart."""
    if verb != "PUT":
        return None
    variant = ""
    if "x-ms-copy-source" in headers:
        variant = "copy"
        if comp == "" and "x-ms-blob-type" in headers:
            variant = "from-url"
        elif comp == "" and headers.get("x-ms-requires-sync", "").lower() == "true":
            variant = "sync-copy"
    elif comp == "page" and headers.get("x-ms-page-write", "").lower() == "clear":
        variant = "clear"
    return _WRITE_VARIANTS.get((comp, variant))


@dataclass
class BlobRequest:
    """One client request as the proxy sees it."""

    method: str
    raw_path: bytes
    query_string: bytes
    headers: RawHeaders
    client: tuple[str, int] | None
    account: str | None
    container: str | None
    blob: str | None
    query: dict[str, str]
    operation: str
    internal: bool

    @property
    def path(self) -> str:
        """Return the decoded path ``/account/container/blob``."""
        return "/" + "/".join(part for part in (self.account, self.container, self.blob) if part is not None)

    @property
    def key(self) -> BlobKey | None:
        """Return (account, container, blob) when the request addresses a blob."""
        if self.account is None or self.container is None or self.blob is None:
            return None
        return (self.account, self.container, self.blob)

    def header(self, name: str) -> str | None:
        """Return the first value of a request header (case-insensitive), or None."""
        wanted = name.lower().encode("latin-1")
        for key, value in self.headers:
            if key.lower() == wanted:
                return value.decode("latin-1")
        return None

    @classmethod
    def from_scope(cls, scope: Scope) -> BlobRequest:
        """Parse an ASGI HTTP scope."""
        raw_path: bytes = scope.get("raw_path") or scope["path"].encode("utf-8")
        query_string: bytes = scope.get("query_string", b"")
        segments = raw_path.decode("latin-1").lstrip("/").split("/", 2)
        decoded = [unquote(segment) for segment in segments if segment != ""]
        parts: list[str | None] = [*decoded[:3], None, None, None][:3]
        query = {k.lower(): v for k, v in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)}
        headers: RawHeaders = list(scope.get("headers", []))
        header_map = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in headers}
        method = str(scope["method"]).upper()
        client = scope.get("client")
        return cls(
            method=method,
            raw_path=raw_path,
            query_string=query_string,
            headers=headers,
            client=(str(client[0]), int(client[1])) if client else None,
            account=parts[0],
            container=parts[1],
            blob=parts[2],
            query=query,
            operation=classify(method, (parts[0], parts[1], parts[2]), query, header_map),
            internal=header_map.get("user-agent", "").lower().startswith("axios/"),
        )


# --------------------------------------------------------------------------------------------------------
# Copies
# --------------------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------------------
# Connection resets with uvicorn
# --------------------------------------------------------------------------------------------------------


class ConnectionRegistry:
    """Transports of a uvicorn server's open connections, by client address, so an app can reset one."""

    def __init__(self) -> None:
        """Create an empty registry."""
        self._transports: dict[tuple[str, int], asyncio.BaseTransport] = {}

    def add(self, client: tuple[str, int], transport: asyncio.BaseTransport) -> None:
        """Remember the transport of a new connection."""
        self._transports[client] = transport

    def discard(self, client: tuple[str, int]) -> None:
        """Forget a closed connection."""
        self._transports.pop(client, None)

    def reset_all(self) -> None:
        """Reset every open connection (at shutdown, so TLS close handshakes do not hold it up)."""
        for client in list(self._transports):
            self.reset(client)

    def reset(self, client: tuple[str, int] | None) -> bool:
        """Close a client's TCP connection at once with a RST, sending nothing more; tell if it was found."""
        transport = self._transports.get(client) if client is not None else None
        if transport is None:
            return False
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        abort = getattr(transport, "abort", None)
        if callable(abort):
            abort()
        else:
            transport.close()
        return True


class _TrackingH11Protocol(H11Protocol):
    registry: ClassVar[ConnectionRegistry]

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if self.client is not None:
            self.registry.add(self.client, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.client is not None:
            self.registry.discard(self.client)
        super().connection_lost(exc)


def tracking_protocol(registry: ConnectionRegistry) -> type[H11Protocol]:
    """Return a uvicorn HTTP protocol class (``Config(http=...)``) that records connections in ``registry``."""
    return type("TrackingH11Protocol", (_TrackingH11Protocol,), {"registry": registry})


# --------------------------------------------------------------------------------------------------------
# Responses
# --------------------------------------------------------------------------------------------------------


@dataclass
class Buffered:
    """A complete upstream (or synthesized) response."""

    status: int
    headers: RawHeaders
    body: bytes

    def header(self, name: str) -> str | None:
        """Return the first value of a response header, or None."""
        wanted = name.lower().encode("latin-1")
        for key, value in self.headers:
            if key.lower() == wanted:
                return value.decode("latin-1")
        return None

    def set_headers(self, values: dict[str, str], drop: tuple[str, ...] = ()) -> None:
        """Replace (or add) headers, and remove the ``drop`` ones."""
        names = {name.lower().encode("latin-1") for name in (*values, *drop)}
        self.headers = [(k, v) for k, v in self.headers if k.lower() not in names]
        self.headers.extend((k.encode("latin-1"), v.encode("latin-1")) for k, v in values.items())


def storage_error(status: int, code: str, message: str, *, retry_after: float | None = None) -> Buffered:
    """Build an Azure Storage error response (XML body and ``x-ms-error-code``)."""
    request_id = str(uuid.uuid4())
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f0Z")
    body = (
        '<?xml version="1.0" encoding="utf-8"?>'
        f"<Error><Code>{html.escape(code)}</Code><Message>{html.escape(message)}\n"
        f"RequestId:{request_id}\nTime:{now}</Message></Error>"
    ).encode()
    headers: RawHeaders = [
        (b"content-type", b"application/xml"),
        (b"content-length", str(len(body)).encode()),
        (b"x-ms-error-code", code.encode("latin-1")),
        (b"x-ms-request-id", request_id.encode()),
        (b"x-ms-version", b"2025-11-05"),
        (b"date", http_date(time.time()).encode()),
    ]
    if retry_after is not None:
        seconds = int(retry_after) if float(retry_after).is_integer() else retry_after
        headers.append((b"retry-after", str(seconds).encode()))
    return Buffered(status=status, headers=headers, body=body)


async def send_buffered(send: Send, response: Buffered, *, head: bool) -> None:
    """Send a complete response (no body for HEAD)."""
    headers = [(k, v) for k, v in response.headers if k.lower() not in HOP_BY_HOP and k.lower() != b"content-length"]
    headers.append((b"content-length", str(len(response.body)).encode()))
    if head:
        original = response.header("content-length")
        if original is not None:
            headers[-1] = (b"content-length", original.encode("latin-1"))
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head else response.body, "more_body": False})


class ClientGone(Exception):
    """The client disconnected before its request body was read."""


# --------------------------------------------------------------------------------------------------------
# The proxy
# --------------------------------------------------------------------------------------------------------


class BlobProxy:
    """ASGI app forwarding blob requests to Azurite, adding Azure's copy semantics, faults and stats."""

    def __init__(
        self,
        *,
        upstream: str,
        faults: FaultRules,
        credential_query: CredentialQuery,
        copy_seconds: float = 2.0,
        copy_bandwidth: float | None = None,
    ) -> None:
        """Proxy to Azurite at ``upstream`` (``http://127.0.0.1:P``)."""
        self.upstream = upstream.rstrip("/")
        self.faults = faults
        self.credential_query = credential_query
        self.connections = ConnectionRegistry()
        self.requests: Counter[str] = Counter()
        self.internal_requests: Counter[str] = Counter()
        self.faults_applied: Counter[str] = Counter()
        self.copies = CopyTracker(copy_seconds=copy_seconds, copy_bandwidth=copy_bandwidth, empty_blob=self.empty_blob)
        self._client: httpx.AsyncClient | None = None

    @property
    def client(self) -> httpx.AsyncClient:
        """Return the HTTP client to Azurite (no retries, short keep-alive below Azurite's 5 s)."""
        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=httpx.Timeout(None, connect=10.0),
                limits=httpx.Limits(max_connections=200, max_keepalive_connections=50, keepalive_expiry=2.0),
                follow_redirects=False,
            )
        return self._client

    async def aclose(self) -> None:
        """Release timers and the upstream client."""
        await self.copies.close()
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def stats(self) -> dict[str, Any]:
        """Return request counts by operation (client and Azurite-internal) and early retries."""
        return {
            "requests": dict(self.requests),
            "internal_requests": dict(self.internal_requests),
            "faults": dict(self.faults_applied),
            "early_retries": self.faults.early_retries("blob"),
        }

    def reset_stats(self) -> None:
        """Zero the request counters and the copy statistics window."""
        self.requests.clear()
        self.internal_requests.clear()
        self.faults_applied.clear()
        self.faults.reset_early_retries("blob")
        self.copies.reset_stats()

    # ---------------------------------------------------------------------------------------------- ASGI

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI connection scope."""
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        request = BlobRequest.from_scope(scope)
        head = request.method == "HEAD"
        if request.internal:
            self.internal_requests[request.operation] += 1
        else:
            self.requests[request.operation] += 1
            self.faults.check_early_retry(
                service="blob", operation=request.operation, method=request.method, path=request.path
            )
        fault = None
        if not request.internal:
            fault = self.faults.match(
                service="blob",
                operation=request.operation,
                method=request.method,
                path=request.path,
                account=request.account,
            )
        if fault is not None:
            self.faults_applied[fault.kind] += 1
            log.info("Fault %s (rule %s) on %s %s", fault.kind, fault.rule_id, request.operation, request.path)
            if fault.kind == "reset":
                if self.connections.reset(request.client):
                    await _until_disconnected(receive)
                return
            if fault.kind == "delay":
                await asyncio.sleep(fault.delay)
            elif fault.kind == "status":
                await self._send_fault(send, request, fault, head=head)
                return
        try:
            await self._dispatch(request, receive, send, fault)
        except ClientGone:
            log.debug("Client went away during %s %s", request.operation, request.path)
        except httpx.TransportError as exc:
            log.warning("Azurite did not answer %s %s: %s", request.operation, request.path, type(exc).__name__)
            await send_buffered(send, storage_error(500, "InternalError", "Upstream failure."), head=head)

    async def _send_fault(self, send: Send, request: BlobRequest, fault: Fault, *, head: bool) -> None:
        if fault.retry_after is not None and fault.status in THROTTLE_STATUSES:
            self.faults.record_throttle(
                service="blob",
                operation=request.operation,
                method=request.method,
                path=request.path,
                retry_after=fault.retry_after,
            )
        response = storage_error(fault.status, fault.error_code, fault.message, retry_after=fault.retry_after)
        await send_buffered(send, response, head=head)

    async def _dispatch(self, request: BlobRequest, receive: Receive, send: Send, fault: Fault | None) -> None:
        key = request.key
        head = request.method == "HEAD"
        op = request.operation
        if op == "CopyBlob" and key is not None:
            copy_fault = fault if fault is not None and fault.kind in COPY_KINDS else None
            await send_buffered(send, await self._copy(request, receive, key, copy_fault), head=head)
            return
        if op == "AbortCopyBlob" and key is not None:
            await send_buffered(send, await self._abort(request, receive, key), head=head)
            return
        if key is not None and key in self.copies.starting:
            await self._until_started(key)
        record = self.copies.active.get(key) if key is not None else None
        if record is not None and key is not None:
            await self._on_copy_destination(request, receive, send, key, record)
            return
        if op == "ListBlobs" and not request.internal:
            response = await self._forward_buffered(request, receive)
            await send_buffered(send, await self._rewrite_listing(request, response), head=head)
            return
        if op == "DeleteContainer":
            response = await self._forward_buffered(request, receive)
            if response.status == 202 and request.account and request.container:
                self.copies.forget_container(request.account, request.container)
            await send_buffered(send, response, head=head)
            return
        await self._forward_streaming(request, receive, send)

    async def _on_copy_destination(
        self, request: BlobRequest, receive: Receive, send: Send, key: BlobKey, record: CopyRecord
    ) -> None:
        """Serve a request on a blob that is (or was) the destination of an emulated copy."""
        op, head = request.operation, request.method == "HEAD"
        now = time.monotonic()
        status = record.status(now)
        if status == PENDING and (op == "GetBlob" or op in WRITE_OPERATIONS):
            await _drain(receive)
            await send_buffered(
                send,
                storage_error(409, "PendingCopyOperation", "There is currently a pending copy operation."),
                head=head,
            )
            return
        if status in (FAILED, ABORTED):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(record.settled.wait(), READ_WAIT_SECONDS)
        if op == "GetBlob":
            await self._forward_streaming(request, receive, send, record=record)
            return
        if op == "GetBlobProperties":
            response = await self._forward_buffered(request, receive)
            if 200 <= response.status < 300:
                response.set_headers(record.headers(time.monotonic()), drop=("x-ms-copy-completion-time",))
            await send_buffered(send, response, head=head)
            return
        if op in ("DeleteBlob", "PutBlob", "PutBlobFromUrl", "CopyBlobFromUrl"):
            response = await self._forward_buffered(request, receive)
            if response.status in (201, 202):
                self.copies.forget(key)
            await send_buffered(send, response, head=head)
            return
        await self._forward_streaming(request, receive, send)

    # ---------------------------------------------------------------------------------------------- copies

    async def _copy(self, request: BlobRequest, receive: Receive, key: BlobKey, fault: Fault | None) -> Buffered:
        """Start an emulated asynchronous copy (Azurite copies at once; we report it pending)."""
        if self.copies.pending(key) is not None or key in self.copies.starting:
            await _drain(receive)
            return storage_error(409, "PendingCopyOperation", "There is currently a pending copy operation.")
        self.copies.starting.add(key)
        try:
            # Copy Blob has no body. Azure starts a copy it has received even when the client is gone by then (a
            # task killed while a delay fault held its request): forward it without reading the client again.
            await _drain(receive)
            response = await self._forward_buffered(request, _empty_body)
            if response.status != 202 or (response.header("x-ms-copy-status") or "").lower() != SUCCESS:
                return response
            source = request.header("x-ms-copy-source") or ""
            size = await self._blob_size(key)
            record = self.copies.start(
                key=key,
                copy_id=response.header("x-ms-copy-id") or str(uuid.uuid4()),
                source_account=_account_of(source),
                source_url=source,
                total=size,
                fault=fault,
            )
            log.info(
                "Copy %s to %s/%s/%s: %s bytes, pending %.2f s",
                record.copy_id,
                *key,
                size,
                record.end() - record.start,
            )
            response.set_headers({"x-ms-copy-status": record.status(time.monotonic())})
            return response
        finally:
            self.copies.starting.discard(key)

    async def _until_started(self, key: BlobKey, timeout: float = 30.0) -> None:
        """Hold a request on a blob whose Copy Blob is being started until the copy is registered.

        Azurite finishes the copy inside that request; without this a read racing it would see Azurite's
        "success" before the emulated copy reports "pending". In Azure a copy's start is atomic to readers.
        """
        deadline = time.monotonic() + timeout
        while key in self.copies.starting and time.monotonic() < deadline:
            await asyncio.sleep(0.01)

    async def _abort(self, request: BlobRequest, receive: Receive, key: BlobKey) -> Buffered:
        """Abort a pending emulated copy; Azurite checks authorization and the copy id for us."""
        response = await self._forward_buffered(request, receive)
        record = self.copies.active.get(key)
        if record is None or response.status != 409:
            return response  # not ours, or refused before the copy id check (authorization, missing blob)
        if request.query.get("copyid") != record.copy_id:
            return storage_error(409, "CopyIdMismatch", "The specified copy ID did not match the copy ID.")
        if record.status(time.monotonic()) != PENDING:
            return storage_error(409, "NoPendingCopyOperation", "There is currently no pending copy operation.")
        self.copies.abort(record)
        return Buffered(
            status=204,
            headers=[
                (b"x-ms-request-id", str(uuid.uuid4()).encode()),
                (b"x-ms-version", b"2025-11-05"),
                (b"date", http_date(time.time()).encode()),
            ],
            body=b"",
        )

    async def _blob_size(self, key: BlobKey) -> int:
        response = await self.internal("HEAD", key)
        return int(response.headers.get("content-length", "0"))

    async def empty_blob(self, key: BlobKey) -> None:
        """Replace a blob's data by nothing, keeping its type, content type and metadata."""
        props = await self.internal("HEAD", key)
        if props.status_code != 200:
            return
        blob_type = props.headers.get("x-ms-blob-type", "BlockBlob")
        headers = {k: v for k, v in props.headers.items() if k.lower().startswith("x-ms-meta-")}
        headers["x-ms-blob-type"] = blob_type
        if "content-type" in props.headers:
            headers["x-ms-blob-content-type"] = props.headers["content-type"]
        if blob_type == "PageBlob":
            headers["x-ms-blob-content-length"] = "0"
        await self.internal("DELETE", key, headers={"x-ms-delete-snapshots": "include"})
        created = await self.internal("PUT", key, headers=headers, content=b"")
        log.info("Emptied %s/%s/%s after its copy failed or was aborted (%s)", *key, created.status_code)

    async def internal(
        self,
        method: str,
        key: tuple[str, ...],
        *,
        query: str = "",
        headers: dict[str, str] | None = None,
        content: bytes | None = None,
    ) -> httpx.Response:
        """Call Azurite directly as the emulator (account SAS), bypassing the proxy logic."""
        account = key[0]
        path = "/".join(_quote(part) for part in key)
        credential = self.credential_query(account)
        url = f"{self.upstream}/{path}?{query + '&' if query else ''}{credential}"
        all_headers = {"x-ms-version": "2025-11-05", **(headers or {})}
        return await self.client.request(method, url, headers=all_headers, content=content)

    async def _rewrite_listing(self, request: BlobRequest, response: Buffered) -> Buffered:
        """Show emulated copy states in a List Blobs answer."""
        if response.status != 200 or request.account is None or request.container is None:
            return response
        account, container = request.account, request.container
        if not any(key[0] == account and key[1] == container for key in self.copies.active):
            return response
        wants_copy = "copy" in request.query.get("include", "").lower().split(",")
        now = time.monotonic()

        def rewrite(match: re.Match[bytes]) -> bytes:
            element = match.group(0)
            name = _NAME_ELEMENT.search(element)
            if name is None:
                return element
            record = self.copies.active.get((account, container, html.unescape(name.group(1).decode())))
            if record is None:
                return element
            had_copy = _COPY_ELEMENT.search(element) is not None
            element = _COPY_ELEMENT.sub(b"", element)
            if not (wants_copy or had_copy):
                return element
            values = record.headers(now)
            xml = "".join(
                f"<{tag}>{html.escape(values[header])}</{tag}>"
                for tag, header in (
                    ("CopyId", "x-ms-copy-id"),
                    ("CopyStatus", "x-ms-copy-status"),
                    ("CopySource", "x-ms-copy-source"),
                    ("CopyProgress", "x-ms-copy-progress"),
                    ("CopyCompletionTime", "x-ms-copy-completion-time"),
                    ("CopyStatusDescription", "x-ms-copy-status-description"),
                )
                if header in values
            )
            return element.replace(b"</Properties>", xml.encode() + b"</Properties>", 1)

        response.body = _BLOB_ELEMENT.sub(rewrite, response.body)
        response.set_headers({"content-length": str(len(response.body))}, drop=("content-md5",))
        return response

    # ---------------------------------------------------------------------------------------------- forwarding

    def _upstream_request(self, request: BlobRequest, receive: Receive) -> httpx.Request:
        headers = [(k, v) for k, v in request.headers if k.lower() not in HOP_BY_HOP]
        has_body = any(k.lower() in (b"content-length", b"transfer-encoding") for k, _ in request.headers)
        url = httpx.URL(self.upstream).copy_with(
            raw_path=request.raw_path + (b"?" + request.query_string if request.query_string else b"")
        )
        content = _body(receive) if has_body else None
        return httpx.Request(request.method, url, headers=headers, content=content)

    async def _forward_buffered(self, request: BlobRequest, receive: Receive) -> Buffered:
        response = await self.client.send(self._upstream_request(request, receive), stream=True)
        try:
            body = b"".join([chunk async for chunk in response.aiter_raw()])
        finally:
            await response.aclose()
        headers = [(k, v) for k, v in response.headers.raw if k.lower() not in HOP_BY_HOP]
        return Buffered(status=response.status_code, headers=headers, body=body)

    async def _forward_streaming(
        self, request: BlobRequest, receive: Receive, send: Send, *, record: CopyRecord | None = None
    ) -> None:
        response = await self.client.send(self._upstream_request(request, receive), stream=True)
        try:
            headers = [(k, v) for k, v in response.headers.raw if k.lower() not in HOP_BY_HOP]
            if record is not None and 200 <= response.status_code < 300:
                patched = Buffered(response.status_code, headers, b"")
                patched.set_headers(record.headers(time.monotonic()), drop=("x-ms-copy-completion-time",))
                headers = patched.headers
            await send({"type": "http.response.start", "status": response.status_code, "headers": headers})
            if request.method != "HEAD":
                async for chunk in response.aiter_raw():
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            await response.aclose()


async def _body(receive: Receive) -> AsyncIterator[bytes]:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk = message.get("body", b"")
        if chunk:
            yield chunk
        if not message.get("more_body", False):
            return


async def _until_disconnected(receive: Receive) -> None:
    """Wait (briefly) until the server notices a connection we reset, so it sends nothing more."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(2.0):
            while (await receive())["type"] != "http.disconnect":
                pass


async def _empty_body() -> dict[str, Any]:
    """Stand in for ``receive`` once a request's (empty) body has been read."""
    return {"type": "http.request", "body": b"", "more_body": False}


async def _drain(receive: Receive) -> None:
    """Read and drop a request body we answer without forwarding."""
    with contextlib.suppress(ClientGone):
        async for _ in _body(receive):
            pass


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def _account_of(url: str) -> str | None:
    """Return the account of a path-style blob URL (first path segment)."""
    path = urlsplit(url).path.lstrip("/")
    return unquote(path.split("/", 1)[0]) if path else None


def _quote(part: str) -> str:
    return quote(part, safe="/")


__all__ = [
    "BlobProxy",
    "BlobRequest",
    "ConnectionRegistry",
    "CopyRecord",
    "CopyTracker",
    "classify",
    "redact",
    "storage_error",
    "tracking_protocol",
]
