"""Long-running operations: background work plus the status and result resources ARM pollers read."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from starlette.responses import JSONResponse, Response

log = logging.getLogger(__name__)

Work = Callable[[], Awaitable[dict[str, Any] | None]]
#: Renders the resource a PUT's Location URL ends with (``final-state-via: location``), at the time of the poll.
Resource = Callable[[], dict[str, Any]]


class LroFailure(Exception):
    """Raised by an operation's work to end it ``Failed`` with ARM's error code and message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Final:
    """How an operation's Location URL ends, as the specification says for the operation.

    ``resource`` (a PUT with ``final-state-via: location``): 200 with the resource as it is when polled; else 200
    with the work's result when it has one (``accessSAS``); else ``status`` without a body (200 for
    ``Disks_RevokeAccess``, 204 for the deletes).
    """

    status: int = 200
    resource: Resource | None = field(default=None, repr=False)


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


@dataclass
class Operation:
    """One long-running operation as ARM tracks it."""

    id: str
    operation: str
    subscription_id: str
    namespace: str
    location: str
    resource_id: str
    status: str = "InProgress"
    start_time: str = field(default_factory=_now)
    end_time: str | None = None
    error: dict[str, str] | None = None
    #: The body of the Location URL's final answer (and ``properties.output`` of the status), e.g. ``accessSAS``.
    result: dict[str, Any] | None = None
    final: Final = field(default_factory=Final)

    @property
    def done(self) -> bool:
        """Tell whether the operation reached a terminal state."""
        return self.status != "InProgress"

    def status_body(self) -> dict[str, Any]:
        """Return the Azure-AsyncOperation status resource."""
        body: dict[str, Any] = {"id": self.id, "name": self.id, "status": self.status, "startTime": self.start_time}
        if self.end_time:
            body["endTime"] = self.end_time
        if self.error:
            body["error"] = self.error
        if self.result is not None and self.status == "Succeeded":
            body["properties"] = {"output": self.result}
        return body


class LroManager:
    """Start operations as asyncio tasks, keep their state, serve their polling resources."""

    def __init__(self) -> None:
        self.operations: dict[str, Operation] = {}
        self.started = 0
        self.finished = 0
        self._tasks: set[asyncio.Task[None]] = set()

    def start(
        self,
        *,
        operation: str,
        subscription_id: str,
        namespace: str,
        location: str,
        resource_id: str,
        delay: float,
        work: Work,
        final: Final | None = None,
    ) -> Operation:
        """Start ``work`` after ``delay`` seconds and return the operation that tracks it (``final``: see Final)."""
        op = Operation(
            id=str(uuid.uuid4()),
            operation=operation,
            subscription_id=subscription_id,
            namespace=namespace,
            location=location,
            resource_id=resource_id,
            final=final or Final(),
        )
        self.operations[op.id] = op
        self.started += 1
        task = asyncio.get_running_loop().create_task(self._run(op, delay, work))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return op

    async def _run(self, op: Operation, delay: float, work: Work) -> None:
        await asyncio.sleep(delay)
        try:
            op.result = await work()
            op.status = "Succeeded"
        except LroFailure as failure:
            op.status = "Failed"
            op.error = {"code": failure.code, "message": failure.message}
        except Exception:
            log.exception("operation %s (%s) crashed", op.id, op.operation)
            op.status = "Failed"
            op.error = {"code": "InternalServerError", "message": "The operation failed unexpectedly."}
        op.end_time = _now()
        self.finished += 1
        log.info("operation %s %s on %s ended %s", op.id, op.operation, op.resource_id, op.status)

    async def stop(self) -> None:
        """Cancel every unfinished operation."""
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def in_progress(self) -> int:
        """Count operations not yet finished."""
        return sum(1 for op in self.operations.values() if not op.done)

    @staticmethod
    def poll_headers(op: Operation, base_url: str, api_version: str, lro_seconds: float) -> dict[str, str]:
        """Return Azure-AsyncOperation, Location and Retry-After headers for a 201/202 answer."""
        prefix = f"{base_url}/subscriptions/{op.subscription_id}/providers/{op.namespace}/locations/{op.location}"
        retry_after = max(1, min(10, math.ceil(lro_seconds / 2)))
        return {
            "Azure-AsyncOperation": f"{prefix}/operations/{op.id}?api-version={api_version}",
            "Location": f"{prefix}/operationResults/{op.id}?api-version={api_version}",
            "Retry-After": str(retry_after),
        }

    def status_response(self, op: Operation, lro_seconds: float) -> Response:
        """Answer a poll of the operation status resource."""
        headers = {} if op.done else {"Retry-After": str(max(1, min(10, math.ceil(lro_seconds / 2))))}
        return JSONResponse(op.status_body(), headers=headers)

    def result_response(self, op: Operation, lro_seconds: float) -> Response:
        """Answer a poll of the operation result (Location) resource: 202 while running, then the final answer."""
        if not op.done:
            return Response(status_code=202, headers={"Retry-After": str(max(1, min(10, math.ceil(lro_seconds / 2))))})
        if op.status != "Succeeded":
            error = op.error or {"code": "OperationFailed", "message": "The operation failed."}
            return JSONResponse({"error": error}, status_code=400 if error["code"] != "Conflict" else 409)
        if op.final.resource is not None:
            return JSONResponse(op.final.resource())
        if op.result is None:
            return Response(status_code=op.final.status)
        return JSONResponse(op.result)
