"""How slow and how strict the local Azure is during the benchmarks: Azure's latency and ARM's throttling, on by
default.

ARM answers in ~100 ms with a tail (median 100 ms, p99 400 ms here), blob storage in ~20 ms (p99 60 ms), and ARM
throttles per subscription x principal x kind with token buckets (reads 250 + 25/s, writes and deletes 200 +
10/s). ``BENCH_AZURE=instant`` measures against the instant, unthrottled local Azure the figures before issue 17
were taken on. The setting is written into every result's world (``azure``), so RESULTS.md says which it was.
"""

from __future__ import annotations

import os
from typing import Any

#: ``POST /_emulator/config`` body of the Azure-like local Azure.
AZURE_LIKE: dict[str, Any] = {
    "arm_latency": {"median_ms": 100, "p99_ms": 400},
    "storage_latency": {"median_ms": 20, "p99_ms": 60},
    "throttling": True,
}
#: The same, everything off.
INSTANT: dict[str, Any] = {"arm_latency": None, "storage_latency": None, "throttling": False}


def emulator_config() -> dict[str, Any]:
    """The local Azure's latency and throttling for this benchmark run (``BENCH_AZURE``: ``like`` or ``instant``)."""
    return dict(INSTANT if os.environ.get("BENCH_AZURE", "like").strip().lower() == "instant" else AZURE_LIKE)


def describe(config: dict[str, Any]) -> str:
    """One line for a result's world: the latencies and whether ARM throttles."""
    parts = []
    for service, label in (("arm_latency", "ARM"), ("storage_latency", "storage")):
        dist = config.get(service)
        if dist:
            parts.append(f"{label} {dist['median_ms']:g} ms median (p99 {dist.get('p99_ms') or dist['median_ms']:g})")
    parts.append("ARM throttling on" if config.get("throttling") else "ARM throttling off")
    return ", ".join(parts) if len(parts) > 1 else "instant (no latency), " + parts[0]


def apply(azure: Any, config: dict[str, Any] | None = None) -> None:
    """Configure a running local Azure (``stack.localazure`` handle) with ``config`` (default: this run's)."""
    azure.post("/config", emulator_config() if config is None else config)
