"""Await the copy of a factory VM's OS disk into the factory catalogue (``<image>.vhd``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from image_factory.hooks.storage import CopyState, FactoryStorageAsyncHook
from image_factory.redact import redact
from image_factory.triggers import hold_until
from image_factory.triggers.copy_watch import WatchedCopy, watch_copy
from image_factory.triggers.events import ErrorEvent, trigger_event

CLASSPATH = "image_factory.triggers.capture.CaptureTrigger"


class CaptureTrigger(BaseTrigger):
    """Poll the copy into the factory blob ``container/blob`` until success, failed/aborted or the deadline.

    Fires one ``CopyEvent`` (or an ``ErrorEvent`` when reading fails); the operator resumes on it.

    :param deadline: absolute deadline, epoch seconds (survives a triggerer restart).
    :param poll_interval: the longest wait between two reads of the copy status (see ``polling``).
    :param not_before: epoch time before which no event is fired (see ``settings.MIN_TRIGGER_SECONDS``).
    """

    def __init__(
        self,
        *,
        container: str,
        blob: str,
        storage_conn_id: str,
        deadline: float,
        poll_interval: float = 15.0,
        label: str = "",
        copy_id: str | None = None,
        not_before: float | None = None,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        if not (container and storage_conn_id):
            raise ValueError("a capture copy needs container and storage_conn_id")
        self.container = container
        self.blob = blob
        self.storage_conn_id = storage_conn_id
        self.deadline = float(deadline)
        self.poll_interval = float(poll_interval)
        self.label = label or blob
        self.copy_id = copy_id
        self.not_before = not_before

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Serialize the trigger's arguments (names and ids only: no key, no SAS)."""
        return (
            CLASSPATH,
            {
                "container": self.container,
                "blob": self.blob,
                "storage_conn_id": self.storage_conn_id,
                "deadline": self.deadline,
                "poll_interval": self.poll_interval,
                "label": self.label,
                "copy_id": self.copy_id,
                "not_before": self.not_before,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Watch the copy and yield one event."""
        copy = WatchedCopy(
            label=self.label,
            blob=self.blob,
            deadline=self.deadline,
            poll_interval=self.poll_interval,
            copy_id=self.copy_id,
        )
        try:
            storage = FactoryStorageAsyncHook(wasb_conn_id=self.storage_conn_id)

            async def read() -> CopyState:
                return await storage.copy_state_async(self.container, self.blob)

            try:
                fired = await watch_copy(copy, read, self.log)
            finally:
                await storage.aclose()
            await hold_until(self.not_before)
            yield trigger_event(fired)
        except Exception as exc:
            yield trigger_event(
                ErrorEvent(label=self.label, message=f"{self.label}: {type(exc).__name__}: {redact(str(exc))}")
            )
