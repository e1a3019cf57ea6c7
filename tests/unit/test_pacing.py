"""The client-side pacer: below ARM's refill, a burst smaller than ARM's bucket, bounded concurrent reads."""

from __future__ import annotations

import threading
import time

import pytest

from image_factory.pacing import ArmBudget, Pacer, Pacers, bounded_map, kind_of

#: ARM's buckets (capacity, refill per second) as documented.
ARM = {"reads": (250, 25), "writes": (200, 10), "deletes": (200, 10)}


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_goes_at_once_then_the_pace_applies() -> None:
    clock = FakeClock()
    pacer = Pacer(rate=10, burst=3, clock=clock)
    assert [pacer.reserve() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert pacer.reserve() == pytest.approx(0.1)
    assert pacer.reserve() == pytest.approx(0.2), "each waiter books the next free slot"
    clock.now = 10.0
    assert pacer.reserve() == 0.0, "idle time refills the burst"


@pytest.mark.parametrize("kind", ["reads", "writes", "deletes"])
def test_the_default_budget_can_never_empty_an_arm_bucket(kind: str) -> None:
    """Simulate a process sending as fast as its pacer lets it, against ARM's bucket: never refused."""
    capacity, refill = ARM[kind]
    budget = ArmBudget()
    clock = FakeClock()
    pacer = Pacer(budget.rate(kind), budget.burst, clock=clock)
    arm_tokens, stamp = float(capacity), 0.0
    for _ in range(5000):
        clock.now += pacer.reserve()  # the request is sent when its wait is over
        arm_tokens = min(capacity, arm_tokens + (clock.now - stamp) * refill)
        stamp = clock.now
        assert arm_tokens >= 1, f"ARM would refuse a {kind} at t={clock.now:.1f}s"
        arm_tokens -= 1
    assert budget.rate(kind) < refill and budget.burst < capacity


def test_pacers_per_kind_and_reconfigured() -> None:
    pacers = Pacers(ArmBudget(reads_per_second=5, writes_per_second=2, deletes_per_second=1, burst=1))
    assert pacers.for_method("GET").rate == 5
    assert pacers.for_method("POST").rate == 2 and pacers.for_method("PUT").rate == 2
    assert pacers.for_method("DELETE").rate == 1
    pacers.configure(ArmBudget(reads_per_second=7))
    assert pacers.for_method("get").rate == 7
    assert [kind_of(m) for m in ("HEAD", "PATCH", "DELETE")] == ["reads", "writes", "deletes"]


def test_acquire_blocks_threads_to_the_rate() -> None:
    pacer = Pacer(rate=50, burst=1)
    started = time.monotonic()
    threads = [threading.Thread(target=pacer.acquire) for _ in range(11)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert time.monotonic() - started >= 0.19, "11 requests at 50/s after a burst of 1 take at least 0.2 s"
    assert pacer.requests == 11


def test_bounded_map_keeps_order_and_bounds_concurrency() -> None:
    running, most = 0, 0
    lock = threading.Lock()

    def work(item: int) -> int:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.02)
        with lock:
            running -= 1
        return item * 2

    assert bounded_map(work, range(20), 4) == [i * 2 for i in range(20)]
    assert 1 < most <= 4
    assert bounded_map(work, [3], 4) == [6]


def test_a_pacer_needs_a_rate() -> None:
    with pytest.raises(ValueError):
        Pacer(rate=0, burst=1)
