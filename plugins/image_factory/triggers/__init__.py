"""Triggers of the factory: wait in the triggerer for blob copies and custom image creation."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from airflow.triggers.base import TriggerEvent


def event(payload: dict[str, Any]) -> TriggerEvent:
    """Build a ``TriggerEvent`` (typed wrapper: the class itself is untyped)."""
    return TriggerEvent(payload)  # type: ignore[no-untyped-call]


async def hold_until(not_before: float | None) -> None:
    """Sleep until the epoch time ``not_before`` (see ``settings.MIN_TRIGGER_SECONDS``), if it is in the future."""
    if not_before is not None:
        delay = not_before - time.time()
        if delay > 0:
            await asyncio.sleep(delay)
