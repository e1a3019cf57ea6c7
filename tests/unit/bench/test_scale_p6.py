"""P6's figures from the local Azure's statistics: 429s, peaks, reads by operation, the baseline computed."""

from __future__ import annotations

from bench.arm_efficiency import read_note
from bench.ours import OursRun
from bench.report import Outcome
from bench.scale_p6 import p6_figures, peak, refused, write_figures


def stats(refusals: dict[str, int], *, reads: int = 0, requests: dict[str, int] | None = None) -> dict:
    return {
        "arm": {
            "reads": reads,
            "writes": 3,
            "actions": 4,
            "requests": requests or {},
            "throttling": {
                "refused": refusals,
                "peak_per_second": {"reads": 21, "writes": 5},
                "peak_per_minute": {"reads": 900, "writes": 240},
            },
        }
    }


def test_refusals_and_peaks() -> None:
    assert refused(stats({"reads": 2, "writes": 1})) == 3
    assert refused(stats({})) == 0 and refused(None) is None
    assert peak(stats({}), "minute", "writes") == 240 and peak(None, "second", "reads") is None


def test_p6_figures_compute_the_baseline_for_every_lab() -> None:
    ours = OursRun(
        "success",
        100.0,
        stats({}, reads=2100, requests={"Labs_ListBySubscription": 20, "CustomImages_List": 2000}),
        task_seconds={"plan": 45.0, "verify": 50.0},
    )
    base = {"labs": 5, "plan_seconds": 70.0, "stats": stats({}, reads=700)}
    figures = {f.key: f for f in p6_figures(1000, 10, ours, 10000, base)}
    assert figures["plan_seconds"].ours == 45.0 and figures["plan_seconds"].baseline == 14000.0
    assert figures["arm_reads"].baseline == 140000.0
    assert figures["reads_Labs_Get"].ours == 0 and figures["reads_Labs_ListBySubscription"].ours == 20
    assert figures["throttled"].ours == 0


def test_write_figures_side_by_side() -> None:
    out = Outcome("P6-run", "x", ours={"stats": stats({"writes": 2})}, baseline={"stats": stats({})})
    figures = {f.key: f for f in write_figures(out)}
    assert figures["arm_writes"].ours == 7 and figures["throttled"].ours == 2 and figures["throttled"].baseline == 0


def test_read_note_names_each_operation() -> None:
    note = read_note(stats({}, requests={"Labs_Get": 1, "CustomImages_Get": 200, "Labs_GenerateUploadUri": 400}))
    assert note is not None and "Labs_Get 1 (the factory lab's region" in note and "CustomImages_Get 200" in note
    assert "GenerateUploadUri" not in note
