"""Staying within ARM's request budget: a client-side pacer below ARM's refill, and bounded concurrent reads.

ARM throttles per subscription, per principal and per kind of operation with token buckets (reads: 250 tokens
refilled 25/s; writes and deletes: 200 refilled 10/s). The factory paces itself below that in every process: each
ARM request first takes a token from this process's pacer of its kind (an azure-core policy does it, see
``hooks.arm_pacing``). A pacer's burst is smaller than ARM's bucket and its rate lower than ARM's refill, so no
task of the factory can empty a bucket by itself — and the headroom is left to the other processes (triggers'
polls, other tasks) and to other clients of the subscription.

The budget is factory.json's ``ArmBudget`` (defaults below); the process-wide pacers are configured from it when
a task makes its ARM hooks (``configure``); triggers, which do not read the configuration, keep the defaults.

Pure: no Azure import, so it is unit-tested without Azure.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

KINDS = ("reads", "writes", "deletes")


@dataclass(frozen=True)
class ArmBudget:
    """factory.json ``ArmBudget``: the requests per second the factory allows itself per kind, its burst, and how
    many lab reads run at once."""

    reads_per_second: float = 20.0
    writes_per_second: float = 8.0
    deletes_per_second: float = 8.0
    burst: int = 100
    concurrency: int = 8

    def rate(self, kind: str) -> float:
        """Requests per second allowed for ``kind`` (``reads``, ``writes``, ``deletes``)."""
        return {"reads": self.reads_per_second, "writes": self.writes_per_second}.get(kind, self.deletes_per_second)


def kind_of(method: str) -> str:
    """Return the ARM bucket a request of ``method`` draws from (GET/HEAD reads, DELETE deletes, others writes)."""
    method = method.upper()
    if method in {"GET", "HEAD"}:
        return "reads"
    return "deletes" if method == "DELETE" else "writes"


class Pacer:
    """A thread-safe token bucket that makes callers wait for their turn instead of refusing them.

    ``reserve()`` books the next free slot and returns how long the caller must wait for it; the caller sleeps
    by its own means (``time.sleep`` in threads, ``asyncio.sleep`` in the triggerer's loop).
    """

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("a pacer needs a positive rate and a burst of at least 1")
        self.rate = float(rate)
        self.burst = float(burst)
        self._clock = clock
        self._tokens = float(burst)
        self._stamp = clock()
        self._lock = threading.Lock()
        self.requests = 0
        self.waited = 0.0

    def reserve(self) -> float:
        """Take one token (going into debt when there is none); return the seconds to wait before the request."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
            self._tokens -= 1.0
            wait = 0.0 if self._tokens >= 0 else -self._tokens / self.rate
            self.requests += 1
            self.waited += wait
            return wait

    def acquire(self) -> None:
        """Wait (blocking) for this thread's turn."""
        wait = self.reserve()
        if wait > 0:
            time.sleep(wait)


class Pacers:
    """The process's pacers, one per kind, made from a budget (replaced when the budget changes)."""

    def __init__(self, budget: ArmBudget | None = None) -> None:
        self._lock = threading.Lock()
        self.budget = budget or ArmBudget()
        self._pacers = self._make(self.budget)

    @staticmethod
    def _make(budget: ArmBudget) -> dict[str, Pacer]:
        return {kind: Pacer(budget.rate(kind), budget.burst) for kind in KINDS}

    def configure(self, budget: ArmBudget) -> None:
        """Use ``budget`` from now on (a no-op when it is the current one)."""
        with self._lock:
            if budget != self.budget:
                self.budget, self._pacers = budget, self._make(budget)

    def for_method(self, method: str) -> Pacer:
        """Return the pacer of an HTTP method's kind."""
        return self._pacers[kind_of(method)]

    def stats(self) -> dict[str, dict[str, float]]:
        """Requests paced and seconds waited per kind."""
        return {k: {"requests": p.requests, "waited_seconds": round(p.waited, 3)} for k, p in self._pacers.items()}


#: This process's pacers (every ARM client the factory makes goes through them).
PACERS = Pacers()


def configure(budget: ArmBudget) -> None:
    """Pace this process's ARM requests by ``budget`` (factory.json ``ArmBudget``)."""
    PACERS.configure(budget)


def bounded_map(fn: Callable[[T], R], items: Iterable[T], concurrency: int) -> list[R]:
    """Return ``[fn(item) for item in items]`` computed by at most ``concurrency`` threads, in the items' order."""
    listed = list(items)
    if concurrency <= 1 or len(listed) <= 1:
        return [fn(item) for item in listed]
    with ThreadPoolExecutor(max_workers=min(concurrency, len(listed)), thread_name_prefix="arm-read") as pool:
        return list(pool.map(fn, listed))
