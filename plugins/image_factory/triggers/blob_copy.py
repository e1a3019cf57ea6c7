"""Wait for a server-side blob copy: into the factory catalogue or into a target lab's upload blob."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from email.utils import parsedate_to_datetime
from typing import Any, Literal

from airflow.triggers.base import BaseTrigger, TriggerEvent
from azure.core.exceptions import (
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)

from image_factory.hooks.devtestlabs import DevTestLabsAsyncHook
from image_factory.hooks.storage import (
    COPY_FAILED,
    COPY_PENDING,
    COPY_SUCCESS,
    CopyState,
    FactoryStorageAsyncHook,
    async_sas_blob_client,
    copy_state,
)
from image_factory.polling import PollSchedule, parse_progress
from image_factory.redact import redact
from image_factory.triggers import event, hold_until

CopyTarget = Literal["factory", "lab"]
CLASSPATH = "image_factory.triggers.blob_copy.BlobCopyTrigger"
#: Consecutive failed status reads (after the SDK's own retries) a copy watch rides out before giving up.
TRANSIENT_READ_FAILURES = 5


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


class BlobCopyTrigger(BaseTrigger):
    """Poll a destination blob's copy status until success, failed/aborted or the deadline.

    ``target="factory"``: the blob ``container/blob`` in the factory account (``storage_conn_id``).
    ``target="lab"``: the upload blob ``blob`` of a lab, reached through a fresh ``generateUploadUri`` SAS
    obtained once at the start of ``run()`` (so no SAS is ever serialized). No ARM call per poll.

    :param deadline: absolute deadline, epoch seconds (survives a triggerer restart).
    :param poll_interval: the longest wait between two reads of the copy status (see ``polling``).
    """

    def __init__(
        self,
        *,
        target: CopyTarget,
        blob: str,
        deadline: float,
        poll_interval: float = 15.0,
        label: str = "",
        copy_id: str | None = None,
        container: str | None = None,
        storage_conn_id: str | None = None,
        arm_conn_id: str | None = None,
        subscription_id: str | None = None,
        resource_group: str | None = None,
        lab_name: str | None = None,
        not_before: float | None = None,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        if target not in ("factory", "lab"):
            raise ValueError(f"target must be 'factory' or 'lab', not {target!r}")
        if target == "factory" and not (container and storage_conn_id):
            raise ValueError("a factory copy needs container and storage_conn_id")
        if target == "lab" and not (arm_conn_id and subscription_id and resource_group and lab_name):
            raise ValueError("a lab copy needs arm_conn_id, subscription_id, resource_group and lab_name")
        self.target: CopyTarget = target
        self.blob = blob
        self.deadline = float(deadline)
        self.poll_interval = float(poll_interval)
        self.label = label or blob
        self.copy_id = copy_id
        self.container = container
        self.storage_conn_id = storage_conn_id
        self.arm_conn_id = arm_conn_id
        self.subscription_id = subscription_id
        self.resource_group = resource_group
        self.lab_name = lab_name
        self.not_before = not_before

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Serialize the trigger's arguments (names and ids only: no key, no SAS)."""
        return (
            CLASSPATH,
            {
                "target": self.target,
                "blob": self.blob,
                "deadline": self.deadline,
                "poll_interval": self.poll_interval,
                "label": self.label,
                "copy_id": self.copy_id,
                "container": self.container,
                "storage_conn_id": self.storage_conn_id,
                "arm_conn_id": self.arm_conn_id,
                "subscription_id": self.subscription_id,
                "resource_group": self.resource_group,
                "lab_name": self.lab_name,
                "not_before": self.not_before,
            },
        )

    def event_for(self, state: CopyState, now: float) -> TriggerEvent | None:  # noqa: PLR0911
        """Map a copy state to the event to fire, or None to keep waiting."""
        base = {"label": self.label, "blob": self.blob, "copy_id": state.copy_id}
        if not state.exists:
            return event({**base, "status": "error", "message": f"{self.label}: destination blob {self.blob} is gone"})
        if self.copy_id and state.copy_id and state.copy_id != self.copy_id:
            return event(
                {
                    **base,
                    "status": "error",
                    "message": f"{self.label}: another copy ({state.copy_id}) replaced ours ({self.copy_id})",
                }
            )
        if state.status == COPY_SUCCESS:
            return event({**base, "status": "success", "size": state.size, "message": "copy succeeded"})
        if state.status in COPY_FAILED:
            detail = state.description or "no description"
            return event({**base, "status": "error", "message": f"{self.label}: copy {state.status}: {detail}"})
        if state.status != COPY_PENDING:
            return event({**base, "status": "error", "message": f"{self.label}: {self.blob} has no copy in progress"})
        if now >= self.deadline:
            return event(
                {
                    **base,
                    "status": "error",
                    "timeout": True,
                    "message": f"{self.label}: copy still pending ({state.progress or '?'}) at its deadline",
                }
            )
        return None

    async def _open(self, stack: AsyncExitStack) -> Callable[[], Awaitable[CopyState]]:
        """Open the async clients and return a function reading the copy state."""
        if self.target == "factory":
            storage = FactoryStorageAsyncHook(wasb_conn_id=str(self.storage_conn_id))
            stack.push_async_callback(storage.aclose)
            container = str(self.container)

            async def read_factory() -> CopyState:
                return await storage.copy_state_async(container, self.blob)

            return read_factory

        arm = DevTestLabsAsyncHook(arm_conn_id=str(self.arm_conn_id))
        stack.push_async_callback(arm.aclose)
        url = await arm.generate_upload_uri_async(
            str(self.subscription_id), str(self.resource_group), str(self.lab_name), self.blob
        )
        verify = (await arm.async_settings()).connection_verify
        client = async_sas_blob_client(url, verify)
        stack.push_async_callback(client.close)

        async def read_lab() -> CopyState:
            try:
                return copy_state(await client.get_blob_properties())
            except ResourceNotFoundError:
                return CopyState(exists=False)

        return read_lab

    async def watch(self, read: Callable[[], Awaitable[CopyState]]) -> TriggerEvent:
        """Poll ``read`` (adaptively, at most ``poll_interval`` apart) until the copy ends; return its event."""
        schedule = PollSchedule(cap=self.poll_interval)
        failures = 0
        while True:
            try:
                state = await read()
            except (ServiceRequestError, ServiceResponseError, HttpResponseError) as exc:
                # The SDK already retried this read; a copy runs on in Azure regardless, so a few more failed
                # status reads are no reason to hand the pair back to a worker (a retry a minute later).
                status = getattr(exc, "status_code", None)
                failures += 1
                if failures > TRANSIENT_READ_FAILURES or (status is not None and status < 500 and status != 429):
                    raise
                self.log.warning(
                    "%s: reading the copy status failed (%s), %d/%d; trying again",
                    self.label,
                    redact(str(exc))[:200],
                    failures,
                    TRANSIENT_READ_FAILURES,
                )
                # A throttled read (429/503) says when to come back: never sooner than its Retry-After.
                delay = max(schedule.next_delay(time.time()), retry_after_seconds(exc))
                await asyncio.sleep(max(0.0, min(delay, self.deadline - time.time())))
                if time.time() >= self.deadline:
                    raise
                continue
            failures = 0
            fired = self.event_for(state, time.time())
            if fired is not None:
                return fired
            percent = state.percent
            self.log.info(
                "%s: copy %s, %s",
                self.label,
                state.status,
                f"{percent:.1f}%" if percent is not None else "progress unknown",
            )
            now = time.time()
            delay = schedule.next_delay(now, parse_progress(state.progress))
            await asyncio.sleep(max(0.0, min(delay, self.deadline - now)))

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Watch the copy and yield one event."""
        try:
            async with AsyncExitStack() as stack:
                fired = await self.watch(await self._open(stack))
            await hold_until(self.not_before)
            yield fired
        except Exception as exc:
            yield event(
                {
                    "status": "error",
                    "label": self.label,
                    "blob": self.blob,
                    "message": f"{self.label}: {type(exc).__name__}: {redact(str(exc))}",
                }
            )
