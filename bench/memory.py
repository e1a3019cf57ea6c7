"""Sample the memory of a running stack: proportional set size (PSS) of each process tree, peak per component.

PSS splits a page shared by N processes into N parts, so forked task runners and Celery pool children are not
counted N times over (RSS would be). Linux only: it reads ``/proc/<pid>/smaps_rollup``.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PROC = Path("/proc")


def parents() -> dict[int, int]:
    """Return pid → parent pid for every process now running."""
    out: dict[int, int] = {}
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid ..." — comm may hold spaces and parentheses: split after the last ')'.
        fields = stat[stat.rfind(")") + 2 :].split()
        out[int(entry.name)] = int(fields[1])
    return out


def tree(root: int, ppids: Mapping[int, int]) -> set[int]:
    """Return ``root`` and all its descendants that are running."""
    children: dict[int, list[int]] = {}
    for pid, ppid in ppids.items():
        children.setdefault(ppid, []).append(pid)
    found: set[int] = set()
    todo = [root] if root in ppids else []
    while todo:
        pid = todo.pop()
        if pid not in found:
            found.add(pid)
            todo.extend(children.get(pid, ()))
    return found


def pss_kib(pid: int) -> int:
    """Return one process's PSS in KiB (0 when it is gone or unreadable)."""
    try:
        for line in (PROC / str(pid) / "smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return 0
    return 0


@dataclass
class MemoryPeaks:
    """Peaks seen while sampling: per component, and of the whole stack at one instant."""

    samples: int = 0
    peak_kib: dict[str, int] = field(default_factory=dict)
    peak_processes: dict[str, int] = field(default_factory=dict)
    peak_total_kib: int = 0

    def record(self, sizes: Mapping[str, tuple[int, int]]) -> None:
        self.samples += 1
        for name, (kib, processes) in sizes.items():
            self.peak_kib[name] = max(self.peak_kib.get(name, 0), kib)
            self.peak_processes[name] = max(self.peak_processes.get(name, 0), processes)
        self.peak_total_kib = max(self.peak_total_kib, sum(kib for kib, _ in sizes.values()))

    def to_dict(self) -> dict[str, Any]:
        return {
            "samples": self.samples,
            "peak_mib": {k: round(v / 1024, 1) for k, v in sorted(self.peak_kib.items())},
            "peak_processes": dict(sorted(self.peak_processes.items())),
            "peak_total_mib": round(self.peak_total_kib / 1024, 1),
        }


def sample_once(roots: Mapping[str, int]) -> dict[str, tuple[int, int]]:
    """Return component → (PSS KiB of its process tree, number of processes)."""
    ppids = parents()
    out: dict[str, tuple[int, int]] = {}
    for name, root in roots.items():
        pids = tree(root, ppids)
        out[name] = (sum(pss_kib(pid) for pid in pids), len(pids))
    return out


@contextlib.contextmanager
def sampling(roots: Callable[[], Mapping[str, int]], *, interval: float = 2.0) -> Iterator[MemoryPeaks]:
    """Sample ``roots()`` (component → root pid, re-read each time) every ``interval`` s in a thread."""
    peaks = MemoryPeaks()
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            with contextlib.suppress(Exception):  # a sample lost to a process ending mid-read is not an error
                peaks.record(sample_once(roots()))
            stop.wait(interval)

    thread = threading.Thread(target=loop, name="memory-sampler", daemon=True)
    thread.start()
    try:
        yield peaks
    finally:
        stop.set()
        thread.join(timeout=30)
        with contextlib.suppress(Exception):
            peaks.record(sample_once(roots()))


def postmaster_pid(data_dir: Path) -> int | None:
    """Return the PostgreSQL server's pid from ``postmaster.pid`` in its data folder."""
    try:
        pid = int((data_dir / "postmaster.pid").read_text().splitlines()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pid if (PROC / str(pid)).exists() else None
