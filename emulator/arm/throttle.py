"""ARM's request throttling as documented since 2024: token buckets per subscription x principal x operation type.

Each (subscription, principal, kind) has a bucket: reads 250 tokens refilled 25/s, writes 200 refilled 10/s,
deletes 200 refilled 10/s. A request takes one token; an empty bucket answers 429 ``TooManyRequests`` with
``Retry-After`` (whole seconds until a token is back). Every response carries
``x-ms-ratelimit-remaining-subscription-reads|writes|deletes`` for its kind. GET and HEAD (LRO polls included)
are reads, DELETE deletes, PUT/PATCH/POST writes.

The buckets always run (so the headers say what is left); refusing is off by default (tests) and turned on by
``serve --throttle`` or ``POST /_emulator/config {"throttling": true}`` (the benchmarks do). Tests may shrink the
buckets (``"throttle_limits": {"reads": {"capacity": 2, "refill": 0.5}}``; ``null`` restores ARM's). ARM's global limit
across principals (15 x the per-principal one) and resource providers' own throttling are not modelled.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from emulator.arm.errors import ArmError

#: Bucket size and refill per second of each operation kind.
LIMITS: dict[str, tuple[float, float]] = {"reads": (250.0, 25.0), "writes": (200.0, 10.0), "deletes": (200.0, 10.0)}
#: Keys of ``/_emulator/config`` handled here.
CONFIG_KEYS = frozenset({"throttling", "throttle_limits"})


def kind_of(method: str) -> str:
    """Return the bucket a request of ``method`` draws from."""
    method = method.upper()
    if method in {"GET", "HEAD"}:
        return "reads"
    if method == "DELETE":
        return "deletes"
    return "writes"


@dataclass
class Bucket:
    """A token bucket: ``capacity`` tokens, ``refill`` more per second, full when created."""

    capacity: float
    refill: float
    tokens: float
    stamp: float

    def _top_up(self, now: float) -> None:
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.refill)
        self.stamp = now

    def take(self, now: float) -> bool:
        """Take one token if there is one; tell whether it was taken."""
        self._top_up(now)
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False

    def remaining(self) -> int:
        """Whole tokens left."""
        return int(self.tokens)

    def retry_after(self) -> int:
        """Whole seconds until one token is back (at least 1)."""
        return max(1, math.ceil((1.0 - self.tokens) / self.refill))


class Throttle:
    """The buckets of every subscription x principal x kind, and the 429s they caused."""

    def __init__(self, *, enabled: bool = False, clock: Callable[[], float] = time.monotonic) -> None:
        self.enabled = enabled
        self.limits = dict(LIMITS)
        self._clock = clock
        self._buckets: dict[tuple[str, str, str], Bucket] = {}
        self.refused: Counter[str] = Counter()
        #: Requests refused per principal (the name in the world file).
        self.refused_by_principal: Counter[str] = Counter()
        #: Kind → whole second (of the clock) → requests of that kind that arrived in it.
        self._per_second: dict[str, Counter[int]] = {kind: Counter() for kind in LIMITS}

    def _bucket(self, subscription: str, principal: str, kind: str) -> Bucket:
        key = (subscription.lower(), principal, kind)
        bucket = self._buckets.get(key)
        if bucket is None:
            capacity, refill = self.limits[kind]
            bucket = self._buckets[key] = Bucket(capacity, refill, capacity, self._clock())
        return bucket

    def admit(self, subscription: str, principal: str, method: str) -> dict[str, str]:
        """Take a token for one request; return its rate-limit headers; raise a 429 ArmError when refused."""
        kind = kind_of(method)
        bucket = self._bucket(subscription, principal, kind)
        now = self._clock()
        self._per_second[kind][int(now)] += 1
        taken = bucket.take(now)
        headers = {f"x-ms-ratelimit-remaining-subscription-{kind}": str(bucket.remaining())}
        if taken or not self.enabled:
            return headers
        self.refused[kind] += 1
        self.refused_by_principal[principal] += 1
        wait = bucket.retry_after()
        word = kind.removesuffix("s")
        raise ArmError(
            429,
            "TooManyRequests",
            f"Number of '{word}' requests for subscription '{subscription}' actor '{principal}' exceeded. "
            f"Please try again after '{wait}' seconds after additional tokens are available. "
            "Refer to https://aka.ms/arm-throttling",
            headers={"Retry-After": str(wait), **headers},
        )

    def configure(self, values: dict[str, Any]) -> None:
        """Apply ``throttling`` (true/false) and ``throttle_limits`` from ``/_emulator/config``; refill every bucket."""
        enabled = values.get("throttling", self.enabled)
        if not isinstance(enabled, bool):
            raise ValueError("throttling must be true or false")
        limits = dict(self.limits)
        if "throttle_limits" in values:
            limits = {**LIMITS, **_limits(values["throttle_limits"] or {})}
        if set(values) & CONFIG_KEYS:
            self.enabled, self.limits = enabled, limits
            self._buckets.clear()

    def settings(self) -> dict[str, Any]:
        """The settings as ``/_emulator/config`` answers them."""
        limits = {kind: {"capacity": c, "refill": r} for kind, (c, r) in self.limits.items()}
        return {"throttling": self.enabled, "throttle_limits": limits}

    def stats(self) -> dict[str, Any]:
        """Whether it refuses, and the 429s it answered (``arm.throttling`` in ``/_emulator/stats``)."""
        return {
            "enabled": self.enabled,
            "refused": dict(self.refused),
            "refused_by_principal": dict(self.refused_by_principal),
            "peak_per_second": {kind: max(c.values(), default=0) for kind, c in self._per_second.items()},
            "peak_per_minute": {kind: _peak_window(c, 60) for kind, c in self._per_second.items()},
        }

    def reset_stats(self) -> None:
        """Zero the 429 counters (the buckets keep their tokens, as ARM's would)."""
        self.refused.clear()
        self.refused_by_principal.clear()
        for counts in self._per_second.values():
            counts.clear()


def _limits(value: Any) -> dict[str, tuple[float, float]]:
    """Read ``{"reads": {"capacity": c, "refill": r}, ...}``; raise ValueError on anything else."""
    if not isinstance(value, dict) or set(value) - set(LIMITS):
        raise ValueError(f"throttle_limits maps {sorted(LIMITS)} to {{capacity, refill}}")
    limits: dict[str, tuple[float, float]] = {}
    for kind, limit in value.items():
        capacity = limit.get("capacity") if isinstance(limit, dict) else None
        refill = limit.get("refill") if isinstance(limit, dict) else None
        if not all(isinstance(v, int | float) and not isinstance(v, bool) and v > 0 for v in (capacity, refill)):
            raise ValueError(f"throttle_limits.{kind}: capacity and refill must be positive numbers")
        limits[kind] = (float(capacity), float(refill))  # type: ignore[arg-type]
    return limits


def _peak_window(per_second: Counter[int], seconds: int) -> int:
    """The most requests in any ``seconds`` consecutive whole seconds."""
    if not per_second:
        return 0
    first, last = min(per_second), max(per_second)
    window = sum(per_second[t] for t in range(first, min(first + seconds, last + 1)))
    best = window
    for start in range(first + 1, last - seconds + 2):
        window += per_second[start + seconds - 1] - per_second[start - 1]
        best = max(best, window)
    return best
