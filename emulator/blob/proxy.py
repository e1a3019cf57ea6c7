"""The blob proxy's ASGI app: counts and faults each request, then forwards it with Azure's copy semantics."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import Counter
from typing import Any

import httpx

from emulator.blob.asgi import ClientGone, Receive, Scope, Send, drain, empty_body, lifespan, until_disconnected
from emulator.blob.connections import ConnectionRegistry
from emulator.blob.copies import (
    ABORTED,
    FAILED,
    PENDING,
    SUCCESS,
    CopyRecord,
    CopyTracker,
    listing_with_copies,
    show_copy_state,
)
from emulator.blob.operations import WRITE_OPERATIONS, BlobKey, BlobRequest, account_of
from emulator.blob.rbac import DataPlaneAuth, as_emulator, bearer_token
from emulator.blob.responses import Buffered, no_content, pending_copy_error, send_buffered, storage_error
from emulator.blob.upstream import CredentialQuery, Upstream
from emulator.faults import COPY_KINDS, THROTTLE_STATUSES, Fault, FaultRules

log = logging.getLogger(__name__)

#: How long a request on a failed or aborted copy's destination waits for the destination to be emptied.
READ_WAIT_SECONDS = 10.0
#: Operations that replace or remove a copy's destination, ending the emulator's bookkeeping of it.
_REPLACING_OPERATIONS = ("DeleteBlob", "PutBlob", "PutBlobFromUrl", "CopyBlobFromUrl")


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
        self.upstream = Upstream(upstream, credential_query)
        self.faults = faults
        self.connections = ConnectionRegistry()
        self.requests: Counter[str] = Counter()
        self.internal_requests: Counter[str] = Counter()
        self.faults_applied: Counter[str] = Counter()
        self.copies = CopyTracker(copy_seconds=copy_seconds, copy_bandwidth=copy_bandwidth, empty_blob=self.empty_blob)
        #: Bearer-token authorization (set once the local Entra ID runs); without it bearer requests get 401.
        self.data_plane: DataPlaneAuth | None = None

    async def aclose(self) -> None:
        """Release timers and the upstream client."""
        await self.copies.close()
        await self.upstream.aclose()

    def stats(self) -> dict[str, Any]:
        """Return request counts by operation (client and Azurite-internal) and early retries."""
        return {
            "requests": dict(self.requests),
            "internal_requests": dict(self.internal_requests),
            "faults": dict(self.faults_applied),
            "early_retries": self.faults.early_retries("blob"),
            "bearer": self.data_plane.stats() if self.data_plane is not None else {"allowed": {}, "refused": {}},
        }

    def reset_stats(self) -> None:
        """Zero the request counters and the copy statistics window."""
        self.requests.clear()
        self.internal_requests.clear()
        self.faults_applied.clear()
        self.faults.reset_early_retries("blob")
        self.copies.reset_stats()
        if self.data_plane is not None:
            self.data_plane.reset_stats()

    # ---------------------------------------------------------------------------------------------- ASGI

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI connection scope."""
        if scope["type"] == "lifespan":
            await lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        request = BlobRequest.from_scope(scope)
        head = request.method == "HEAD"
        fault = self._count(request)
        if fault is not None and await self._answered_by_fault(request, receive, send, fault):
            return
        refused = self._bearer_refusal(request)
        if refused is not None:
            await drain(receive)
            await send_buffered(send, refused, head=head)
            return
        try:
            await self._dispatch(request, receive, send, fault)
        except ClientGone:
            log.debug("Client went away during %s %s", request.operation, request.path)
        except httpx.TransportError as exc:
            log.warning("Azurite did not answer %s %s: %s", request.operation, request.path, type(exc).__name__)
            await send_buffered(send, storage_error(500, "InternalError", "Upstream failure."), head=head)

    def _bearer_refusal(self, request: BlobRequest) -> Buffered | None:
        """Authorize a bearer-token request by data role (rewriting it for Azurite); return the refusal, if any."""
        token = None if request.internal else bearer_token(request)
        if token is None:
            return None
        if self.data_plane is None:
            return storage_error(401, "InvalidAuthenticationInfo", "No token service is configured.")
        decision = self.data_plane.decide(request, token)
        if decision.error is not None:
            return decision.error
        as_emulator(request, self.upstream.credential_query(str(request.account)))
        return None

    def _count(self, request: BlobRequest) -> Fault | None:
        """Count a request and return the fault to apply to it (never to Azurite's own requests)."""
        if request.internal:
            self.internal_requests[request.operation] += 1
            return None
        self.requests[request.operation] += 1
        self.faults.check_early_retry(
            service="blob", operation=request.operation, method=request.method, path=request.path
        )
        return self.faults.match(
            service="blob",
            operation=request.operation,
            method=request.method,
            path=request.path,
            account=request.account,
        )

    async def _answered_by_fault(self, request: BlobRequest, receive: Receive, send: Send, fault: Fault) -> bool:
        """Apply a fault; tell whether it answered (or cut off) the request, so nothing is forwarded."""
        self.faults_applied[fault.kind] += 1
        log.info("Fault %s (rule %s) on %s %s", fault.kind, fault.rule_id, request.operation, request.path)
        if fault.kind == "reset":
            if self.connections.reset(request.client):
                await until_disconnected(receive)
            return True
        if fault.kind == "delay":
            await asyncio.sleep(fault.delay)
        elif fault.kind == "status":
            await self._send_fault(send, request, fault)
            return True
        return False

    async def _send_fault(self, send: Send, request: BlobRequest, fault: Fault) -> None:
        if fault.retry_after is not None and fault.status in THROTTLE_STATUSES:
            self.faults.record_throttle(
                service="blob",
                operation=request.operation,
                method=request.method,
                path=request.path,
                retry_after=fault.retry_after,
            )
        response = storage_error(fault.status, fault.error_code, fault.message, retry_after=fault.retry_after)
        await send_buffered(send, response, head=request.method == "HEAD")

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
            response = await self.upstream.buffered(request, receive)
            await send_buffered(send, self._rewrite_listing(request, response), head=head)
            return
        if op == "DeleteContainer":
            response = await self.upstream.buffered(request, receive)
            if response.status == 202 and request.account and request.container:
                self.copies.forget_container(request.account, request.container)
            await send_buffered(send, response, head=head)
            return
        await self.upstream.streaming(request, receive, send)

    async def _on_copy_destination(
        self, request: BlobRequest, receive: Receive, send: Send, key: BlobKey, record: CopyRecord
    ) -> None:
        """Serve a request on a blob that is (or was) the destination of an emulated copy."""
        op, head = request.operation, request.method == "HEAD"
        status = record.status(time.monotonic())
        if status == PENDING and (op == "GetBlob" or op in WRITE_OPERATIONS):
            await drain(receive)
            await send_buffered(send, pending_copy_error(), head=head)
            return
        if status in (FAILED, ABORTED):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(record.settled.wait(), READ_WAIT_SECONDS)
        if op == "GetBlob":
            await self.upstream.streaming(request, receive, send, record=record)
            return
        if op == "GetBlobProperties":
            response = await self.upstream.buffered(request, receive)
            if 200 <= response.status < 300:
                show_copy_state(response, record)
            await send_buffered(send, response, head=head)
            return
        if op in _REPLACING_OPERATIONS:
            response = await self.upstream.buffered(request, receive)
            if response.status in (201, 202):
                self.copies.forget(key)
            await send_buffered(send, response, head=head)
            return
        await self.upstream.streaming(request, receive, send)

    # ---------------------------------------------------------------------------------------------- copies

    async def _copy(self, request: BlobRequest, receive: Receive, key: BlobKey, fault: Fault | None) -> Buffered:
        """Start an emulated asynchronous copy (Azurite copies at once; we report it pending)."""
        if self.copies.pending(key) is not None or key in self.copies.starting:
            await drain(receive)
            return pending_copy_error()
        self.copies.starting.add(key)
        try:
            # Copy Blob has no body. Azure starts a copy it has received even when the client is gone by then (a
            # task killed while a delay fault held its request): forward it without reading the client again.
            await drain(receive)
            response = await self.upstream.buffered(request, empty_body)
            if response.status != 202 or (response.header("x-ms-copy-status") or "").lower() != SUCCESS:
                return response
            source = request.header("x-ms-copy-source") or ""
            size = await self._blob_size(key)
            record = self.copies.start(
                key=key,
                copy_id=response.header("x-ms-copy-id") or str(uuid.uuid4()),
                source_account=account_of(source),
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
        response = await self.upstream.buffered(request, receive)
        record = self.copies.active.get(key)
        if record is None or response.status != 409:
            return response  # not ours, or refused before the copy id check (authorization, missing blob)
        if request.query.get("copyid") != record.copy_id:
            return storage_error(409, "CopyIdMismatch", "The specified copy ID did not match the copy ID.")
        if record.status(time.monotonic()) != PENDING:
            return storage_error(409, "NoPendingCopyOperation", "There is currently no pending copy operation.")
        self.copies.abort(record)
        return no_content()

    async def _blob_size(self, key: BlobKey) -> int:
        response = await self.upstream.internal("HEAD", key)
        return int(response.headers.get("content-length", "0"))

    async def empty_blob(self, key: BlobKey) -> None:
        """Replace a blob's data by nothing, keeping its type, content type and metadata."""
        props = await self.upstream.internal("HEAD", key)
        if props.status_code != 200:
            return
        blob_type = props.headers.get("x-ms-blob-type", "BlockBlob")
        headers = {k: v for k, v in props.headers.items() if k.lower().startswith("x-ms-meta-")}
        headers["x-ms-blob-type"] = blob_type
        if "content-type" in props.headers:
            headers["x-ms-blob-content-type"] = props.headers["content-type"]
        if blob_type == "PageBlob":
            headers["x-ms-blob-content-length"] = "0"
        await self.upstream.internal("DELETE", key, headers={"x-ms-delete-snapshots": "include"})
        created = await self.upstream.internal("PUT", key, headers=headers, content=b"")
        log.info("Emptied %s/%s/%s after its copy failed or was aborted (%s)", *key, created.status_code)

    def _rewrite_listing(self, request: BlobRequest, response: Buffered) -> Buffered:
        """Show emulated copy states in a List Blobs answer."""
        if response.status != 200 or request.account is None or request.container is None:
            return response
        account, container = request.account, request.container
        records = {key[2]: record for key, record in self.copies.active.items() if key[:2] == (account, container)}
        if not records:
            return response
        wants_copy = "copy" in request.query.get("include", "").lower().split(",")
        response.body = listing_with_copies(response.body, records, wants_copy=wants_copy, now=time.monotonic())
        response.set_headers({"content-length": str(len(response.body))}, drop=("content-md5",))
        return response
