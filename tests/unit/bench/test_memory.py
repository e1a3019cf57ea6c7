"""The benchmark's memory sampler: process trees and their proportional set size, read from /proc."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from bench import memory


def test_tree_holds_the_root_and_its_descendants_only() -> None:
    ppids = {1: 0, 10: 1, 11: 10, 12: 11, 20: 1, 21: 20}
    assert memory.tree(10, ppids) == {10, 11, 12}
    assert memory.tree(20, ppids) == {20, 21}
    assert memory.tree(99, ppids) == set()


def test_a_child_that_allocates_raises_its_tree_peak() -> None:
    # The child holds 64 MiB of touched memory until told to exit; the sampler must see it under its parent.
    code = "import sys; b = bytearray(64 * 1024 * 1024); b[::4096] = b'x' * len(b[::4096]); sys.stdin.read()"
    child = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while memory.pss_kib(child.pid) < 60 * 1024:
            assert time.monotonic() < deadline, "the child never reached 64 MiB"
            time.sleep(0.1)
        assert child.pid in memory.tree(os.getpid(), memory.parents())
        with memory.sampling(lambda: {"me": os.getpid(), "child": child.pid}, interval=0.1) as peaks:
            time.sleep(0.5)
        summary = peaks.to_dict()
        assert summary["samples"] >= 2
        assert summary["peak_mib"]["child"] >= 60
        assert summary["peak_mib"]["me"] >= summary["peak_mib"]["child"]  # the child is in my tree
        assert summary["peak_processes"]["me"] >= 2 and summary["peak_processes"]["child"] == 1
        assert summary["peak_total_mib"] >= summary["peak_mib"]["me"] + summary["peak_mib"]["child"] - 1
    finally:
        child.communicate(b"", timeout=10)
    assert memory.pss_kib(child.pid) == 0  # gone: read as nothing, not an error


def test_postmaster_pid_reads_the_first_line(tmp_path: Path) -> None:
    folder = tmp_path
    assert memory.postmaster_pid(folder) is None
    (folder / "postmaster.pid").write_text(f"{os.getpid()}\n/data\n")
    assert memory.postmaster_pid(folder) == os.getpid()
