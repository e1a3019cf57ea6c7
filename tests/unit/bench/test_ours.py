"""bench.ours: what a DAG run's task instances and the emulator's state add up to, and the figures of ours alone."""

from __future__ import annotations

from bench.ours import (
    OursRun,
    distribution_span,
    images_succeeded,
    memory_figures,
    overhead_figures,
    tally_tasks,
)

TIS = [
    {"task_id": "plan", "map_index": -1, "state": "success", "start_date": "2026-01-01T00:00:00Z",
     "end_date": "2026-01-01T00:00:02.5Z"},
    {"task_id": "distribute", "map_index": 0, "state": "success", "hostname": "w1",
     "start_date": "2026-01-01T00:00:03Z", "end_date": "2026-01-01T00:00:40Z"},
    {"task_id": "distribute", "map_index": 1, "state": "failed", "hostname": "w2",
     "start_date": "2026-01-01T00:00:05Z", "end_date": "2026-01-01T00:01:03Z"},
    {"task_id": "distribute_regional", "map_index": 0, "state": "success", "hostname": "w1",
     "start_date": "2026-01-01T00:00:04Z", "end_date": None},
    {"task_id": "verify", "map_index": -1, "state": "upstream_failed", "start_date": None, "end_date": None},
]  # fmt: skip


def test_task_instances_are_tallied() -> None:
    tally = tally_tasks(TIS)
    assert tally.states == {"success": 3, "failed": 1, "upstream_failed": 1}
    assert tally.mapped == {"distribute": 2, "distribute_regional": 1}
    assert tally.hosts == {"w1": 2, "w2": 1}
    assert tally.durations == {"plan": 2.5}


def test_distribution_span_runs_from_the_first_start_to_the_last_end() -> None:
    assert distribution_span(TIS) == 60.0
    assert distribution_span(TIS[:1]) is None


def test_images_succeeded_counts_target_labs_only() -> None:
    state = {
        "labs": [
            {"name": "ImageFactory", "images": [{"provisioning_state": "Succeeded"}]},
            {"name": "Lab000", "images": [{"provisioning_state": "Succeeded"}, {"provisioning_state": "Creating"}]},
            {"name": "Lab001", "images": [{"provisioning_state": "Succeeded"}]},
        ]
    }
    assert images_succeeded(state) == 2


def test_memory_and_overhead_figures() -> None:
    run = OursRun(
        "success",
        1.0,
        {},
        memory={"peak_mib": {"scheduler": 200.0, "triggerer": 100.5, "local-azure": 80.0}},
        overheads={"worker_part": {"median": 1.5, "p90": 2.0}, "slot_handover": None},
    )
    assert [(f.key, f.ours) for f in memory_figures(run)] == [
        ("memory_scheduler", 200.0),
        ("memory_triggerer", 100.5),
        ("memory_stack", 300.5),
    ]
    assert [(f.key, f.ours) for f in overhead_figures(run)] == [("worker_part", "1.5 s (p90 2.0 s)")]
    assert memory_figures(None) == overhead_figures(None) == []
