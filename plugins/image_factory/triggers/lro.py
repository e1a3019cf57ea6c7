"""Wait for a DevTest Labs custom image to finish provisioning."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from image_factory.hooks.devtestlabs import DevTestLabsAsyncHook
from image_factory.polling import PollSchedule
from image_factory.redact import redact
from image_factory.triggers import event

CLASSPATH = "image_factory.triggers.lro.CustomImageTrigger"
SUCCEEDED = "Succeeded"
FAILED_STATES = frozenset({"Failed", "Canceled"})


class CustomImageTrigger(BaseTrigger):
    """Poll a custom image's ``provisioningState`` until Succeeded, Failed/Canceled or the deadline.

    :param deadline: absolute deadline, epoch seconds.
    :param poll_interval: seconds between two GETs of the image.
    """

    def __init__(
        self,
        *,
        arm_conn_id: str,
        subscription_id: str,
        resource_group: str,
        lab_name: str,
        image_name: str,
        deadline: float,
        poll_interval: float = 15.0,
        label: str = "",
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.arm_conn_id = arm_conn_id
        self.subscription_id = subscription_id
        self.resource_group = resource_group
        self.lab_name = lab_name
        self.image_name = image_name
        self.deadline = float(deadline)
        self.poll_interval = float(poll_interval)
        self.label = label or f"{lab_name} / {image_name}"

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Serialize the trigger's arguments (names and ids only)."""
        return (
            CLASSPATH,
            {
                "arm_conn_id": self.arm_conn_id,
                "subscription_id": self.subscription_id,
                "resource_group": self.resource_group,
                "lab_name": self.lab_name,
                "image_name": self.image_name,
                "deadline": self.deadline,
                "poll_interval": self.poll_interval,
                "label": self.label,
            },
        )

    def event_for(self, state: str | None, now: float) -> TriggerEvent | None:
        """Map a provisioning state to the event to fire, or None to keep waiting."""
        base = {"label": self.label, "image_name": self.image_name, "provisioning_state": state}
        if state is None:
            return event({**base, "status": "error", "message": f"{self.label}: the custom image is gone"})
        if state == SUCCEEDED:
            return event({**base, "status": "success", "message": f"{self.label}: Succeeded"})
        if state in FAILED_STATES:
            return event({**base, "status": "error", "message": f"{self.label}: custom image creation {state}"})
        if now >= self.deadline:
            return event(
                {
                    **base,
                    "status": "error",
                    "timeout": True,
                    "message": f"{self.label}: custom image still {state} at its deadline",
                }
            )
        return None

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Poll the image (backing off from 1 s up to ``poll_interval``) and yield one event."""
        schedule = PollSchedule(cap=self.poll_interval)
        try:
            async with DevTestLabsAsyncHook(arm_conn_id=self.arm_conn_id) as hook:
                while True:
                    state = await hook.custom_image_state_async(
                        self.subscription_id, self.resource_group, self.lab_name, self.image_name
                    )
                    fired = self.event_for(state, time.time())
                    if fired is not None:
                        yield fired
                        return
                    self.log.info("%s: custom image %s", self.label, state)
                    delay = schedule.next_delay(time.time())
                    await asyncio.sleep(max(0.0, min(delay, self.deadline - time.time())))
        except Exception as exc:
            yield event(
                {
                    "status": "error",
                    "label": self.label,
                    "image_name": self.image_name,
                    "message": f"{self.label}: {type(exc).__name__}: {redact(str(exc))}",
                }
            )
