"""Per-request latency for ARM and storage: a log-normal distribution given by its median and its 99th percentile.

Azure answers in tens to hundreds of milliseconds, the local Azure in microseconds; the benchmarks and some tests
turn this on so that what the product does one call after another shows as it would against Azure. Off by
default. Configured by ``serve --arm-latency/--storage-latency`` or ``POST /_emulator/config``::

    {"arm_latency": {"median_ms": 100, "p99_ms": 400}, "storage_latency": {"median_ms": 20}, "latency_seed": 7}

A bare number is a fixed delay in milliseconds; ``null`` or ``0`` turns it off. Each service draws from its own
seeded generator, so one configuration gives the same sequence of delays run after run.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

#: The standard normal's 99th percentile: ``p99 = median * exp(Z99 * sigma)`` for a log-normal.
Z99 = 2.3263478740408408
#: A delay is never longer than this (a safety cap on the distribution's far tail).
MAX_SECONDS = 30.0
SERVICES = ("arm", "storage")


class LatencyError(ValueError):
    """A latency setting that cannot be used."""


@dataclass(frozen=True)
class Distribution:
    """A log-normal delay: half the requests wait less than ``median_ms``, 1 % more than ``p99_ms``."""

    median_ms: float
    p99_ms: float | None = None

    @property
    def sigma(self) -> float:
        """The log-normal's shape (0 = a fixed delay)."""
        if not self.p99_ms or self.p99_ms <= self.median_ms or self.median_ms <= 0:
            return 0.0
        return math.log(self.p99_ms / self.median_ms) / Z99

    def sample(self, rng: random.Random) -> float:
        """Draw one delay, in seconds."""
        if self.median_ms <= 0:
            return 0.0
        delay = self.median_ms * math.exp(rng.gauss(0.0, self.sigma)) if self.sigma else self.median_ms
        return min(delay / 1000.0, MAX_SECONDS)

    def to_dict(self) -> dict[str, float | None]:
        """The setting as ``/_emulator/config`` shows it."""
        return {"median_ms": self.median_ms, "p99_ms": self.p99_ms}


def parse_distribution(value: Any) -> Distribution | None:
    """Read a latency setting: None/0 (off), a number of ms, or ``{"median_ms": m, "p99_ms": p}``."""
    if value is None or value is False:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        if value < 0:
            raise LatencyError("a latency must be a non-negative number of milliseconds")
        return Distribution(float(value)) if value > 0 else None
    if isinstance(value, dict):
        unknown = set(value) - {"median_ms", "p99_ms"}
        if unknown:
            raise LatencyError(f"unknown latency key(s) {sorted(unknown)}: use median_ms and p99_ms")
        median, p99 = value.get("median_ms", 0), value.get("p99_ms")
        numbers = [v for v in (median, p99) if v is not None]
        if any(not isinstance(v, int | float) or isinstance(v, bool) or v < 0 for v in numbers):
            raise LatencyError("median_ms and p99_ms must be non-negative numbers")
        if p99 is not None and p99 < median:
            raise LatencyError("p99_ms must not be below median_ms")
        return Distribution(float(median), None if p99 is None else float(p99)) if median > 0 else None
    raise LatencyError("a latency is a number of milliseconds or {median_ms, p99_ms}")


def parse_option(text: str | None) -> Distribution | None:
    """Read a ``--arm-latency`` option: ``100`` (fixed ms) or ``100/400`` (median/p99 ms)."""
    if not text:
        return None
    median, _, p99 = text.partition("/")
    try:
        return parse_distribution({"median_ms": float(median), "p99_ms": float(p99) if p99 else None})
    except ValueError as exc:
        raise LatencyError(f"latency {text!r}: use MEDIAN_MS or MEDIAN_MS/P99_MS") from exc


@dataclass
class Latencies:
    """The delays of ARM and storage, changed at run time; counts what it slept."""

    arm: Distribution | None = None
    storage: Distribution | None = None
    seed: int = 0
    slept: dict[str, float] = field(default_factory=lambda: dict.fromkeys(SERVICES, 0.0))
    delayed: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SERVICES, 0))

    def __post_init__(self) -> None:
        self._rngs = {name: random.Random(f"{self.seed}:{name}") for name in SERVICES}  # noqa: S311 - delays, not secrets

    def update(self, values: dict[str, Any]) -> None:
        """Apply ``arm_latency`` / ``storage_latency`` / ``latency_seed`` (all checked before any is applied)."""
        changes: dict[str, Distribution | None] = {}
        for name in SERVICES:
            if f"{name}_latency" in values:
                changes[name] = parse_distribution(values[f"{name}_latency"])
        seed = values.get("latency_seed", self.seed)
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise LatencyError("latency_seed must be an integer")
        for name, dist in changes.items():
            setattr(self, name, dist)
        if "latency_seed" in values:
            self.seed = seed
            self.__post_init__()

    def delay(self, service: str) -> float:
        """Draw the next delay of ``service`` in seconds (0 when its latency is off)."""
        dist: Distribution | None = getattr(self, service)
        return 0.0 if dist is None else dist.sample(self._rngs[service])

    async def wait(self, service: str) -> None:
        """Sleep one drawn delay of ``service``."""
        seconds = self.delay(service)
        if seconds > 0:
            self.slept[service] += seconds
            self.delayed[service] += 1
            await asyncio.sleep(seconds)

    def settings(self) -> dict[str, Any]:
        """The settings as ``/_emulator/config`` answers them."""
        return {
            "arm_latency": None if self.arm is None else self.arm.to_dict(),
            "storage_latency": None if self.storage is None else self.storage.to_dict(),
            "latency_seed": self.seed,
        }

    def stats(self) -> dict[str, Any]:
        """Requests delayed and seconds slept per service (``latency`` in ``/_emulator/stats``)."""
        return {name: {"delayed": self.delayed[name], "slept_seconds": round(self.slept[name], 3)} for name in SERVICES}

    def reset_stats(self) -> None:
        """Zero the counters."""
        self.slept = dict.fromkeys(SERVICES, 0.0)
        self.delayed = dict.fromkeys(SERVICES, 0)


#: Keys of ``/_emulator/config`` handled here.
CONFIG_KEYS = frozenset({"arm_latency", "storage_latency", "latency_seed"})


class Delayed:
    """ASGI middleware: every HTTP request waits ``wait()`` before the app sees it."""

    def __init__(self, app: Callable[..., Awaitable[None]], wait: Callable[[], Awaitable[None]]) -> None:
        self.app = app
        self._wait = wait

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Delay HTTP requests; pass lifespan and others through."""
        if scope["type"] == "http":
            await self._wait()
        await self.app(scope, receive, send)
