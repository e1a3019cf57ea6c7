"""Wait for a DevTest Labs custom image to finish provisioning: the state → event mapping and the polling loop.

Plain functions that the distribution trigger calls with a way to read the image's ``provisioningState``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from image_factory.polling import PollSchedule
from image_factory.states import FAILED_PROVISIONING, ProvisioningState
from image_factory.triggers.events import ImageEvent, Status

if TYPE_CHECKING:
    from image_factory.triggers import TriggerLog


@dataclass(frozen=True)
class WatchedImage:
    """The custom image being waited for, until ``deadline`` (epoch seconds), read at most ``poll_interval`` apart."""

    label: str
    image_name: str
    deadline: float
    poll_interval: float


def image_event(image: WatchedImage, state: str | None, now: float) -> ImageEvent | None:
    """Map a provisioning state (None: the image is gone) to the event to fire, or None to keep waiting."""
    label = image.label

    def fired(status: Status, message: str, *, timeout: bool = False) -> ImageEvent:
        return ImageEvent(
            status=status,
            label=label,
            image_name=image.image_name,
            provisioning_state=None if state is None else str(state),
            message=message,
            timeout=timeout,
        )

    if state is None:
        return fired("error", f"{label}: the custom image is gone")
    if state == ProvisioningState.SUCCEEDED:
        return fired("success", f"{label}: Succeeded")
    if state in FAILED_PROVISIONING:
        return fired("error", f"{label}: custom image creation {state}")
    if now >= image.deadline:
        return fired("error", f"{label}: custom image still {state} at its deadline", timeout=True)
    return None


async def wait_for_image(
    image: WatchedImage,
    state: str | None,
    read_state: Callable[[], Awaitable[str | None]],
    log: TriggerLog,
) -> ImageEvent:
    """Poll the image from ``state`` (backing off from 1 s up to ``poll_interval``) until it ends; return its event."""
    schedule = PollSchedule(cap=image.poll_interval)
    while True:
        fired = image_event(image, state, time.time())
        if fired is not None:
            return fired
        log.info("%s: custom image %s", image.label, state)
        delay = schedule.next_delay(time.time())
        await asyncio.sleep(max(0.0, min(delay, image.deadline - time.time())))
        state = await read_state()
