"""Adaptive poll delays: back off from the floor, aim at a copy's estimated end, never exceed the cap."""

from __future__ import annotations

import pytest

from image_factory.polling import PollSchedule, parse_progress


def test_backs_off_exponentially_up_to_the_cap() -> None:
    schedule = PollSchedule(cap=10, floor=1)
    assert [schedule.next_delay(float(t)) for t in range(6)] == [1, 2, 4, 8, 10, 10]


def test_aims_at_the_estimated_end_of_a_copy() -> None:
    schedule = PollSchedule(cap=60, floor=1)
    assert schedule.next_delay(0.0, (0, 1000)) == 1  # no rate known yet
    delay = schedule.next_delay(1.0, (100, 1000))  # 100 bytes/s → 900 bytes left → ~9 s
    assert delay == pytest.approx(900 / 100 * 1.05 + 0.2)


def test_a_fast_copy_is_polled_again_at_the_floor_and_a_slow_one_at_the_cap() -> None:
    fast = PollSchedule(cap=30, floor=1)
    fast.next_delay(0.0, (0, 10))
    assert fast.next_delay(1.0, (9, 10)) == 1
    slow = PollSchedule(cap=30, floor=1)
    slow.next_delay(0.0, (0, 10**12))
    assert slow.next_delay(1.0, (10, 10**12)) == 30


def test_stalled_copy_falls_back_to_backoff() -> None:
    schedule = PollSchedule(cap=8, floor=1)
    schedule.next_delay(0.0, (5, 10))
    assert schedule.next_delay(1.0, (5, 10)) == 2  # no progress since last poll: no rate


@pytest.mark.parametrize(("text", "parsed"), [("5/10", (5, 10)), (None, None), ("", None), ("x/y", None)])
def test_parse_progress(text: str | None, parsed: tuple[int, int] | None) -> None:
    assert parse_progress(text) == parsed


def test_floor_is_clamped_to_the_cap_and_delays_must_be_positive() -> None:
    assert PollSchedule(cap=0.5, floor=1).next_delay(0.0) == 0.5
    with pytest.raises(ValueError, match="positive"):
        PollSchedule(cap=0)
