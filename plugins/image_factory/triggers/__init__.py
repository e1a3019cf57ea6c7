"""Triggers of the factory: the capture copy and a distribution's copy + custom image, awaited in the triggerer."""

from __future__ import annotations

import asyncio
import time
from typing import Any, Protocol


class TriggerLog(Protocol):
    """What the waiting functions log through: a trigger's ``self.log`` (its lines go to the task's log)."""

    def info(self, msg: str, /, *args: Any) -> Any: ...

    def warning(self, msg: str, /, *args: Any) -> Any: ...


async def hold_until(not_before: float | None) -> None:
    """Sleep until the epoch time ``not_before`` (see ``settings.MIN_TRIGGER_SECONDS``), if it is in the future."""
    if not_before is not None:
        delay = not_before - time.time()
        if delay > 0:
            await asyncio.sleep(delay)
