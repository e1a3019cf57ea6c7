"""Image waiting: the pure provisioning state → event mapping and the polling loop."""

from __future__ import annotations

import logging
import time

import pytest

from image_factory.triggers.image_wait import WatchedImage, image_event, wait_for_image


def _image(deadline: float = 1e12) -> WatchedImage:
    return WatchedImage(label="L / i", image_name="i", deadline=deadline, poll_interval=0.01)


@pytest.mark.parametrize(
    ("state", "expected"),
    [("Succeeded", "success"), ("Failed", "error"), ("Canceled", "error"), (None, "error"), ("Creating", None)],
)
def test_image_event_for(state: str | None, expected: str | None) -> None:
    fired = image_event(_image(), state, time.time())
    assert (fired.status if fired else None) == expected


async def test_wait_polls_until_failed() -> None:
    states: list[str | None] = ["Creating", "Failed"]

    async def read_state() -> str | None:
        return states.pop(0)

    fired = await wait_for_image(_image(time.time() + 30), "Creating", read_state, logging.getLogger(__name__))
    assert fired.status == "error" and fired.kind == "image"
    assert "Failed" in fired.message and fired.provisioning_state == "Failed"
    assert states == []
