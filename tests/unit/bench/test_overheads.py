"""bench.overheads reads per-pair timings from Airflow's JSON task logs."""

from __future__ import annotations

import json
from pathlib import Path

from bench.overheads import pair_overheads


def _log(path: Path, lines: list[tuple[str, str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps({"timestamp": t, "event": e}) + "\n" for t, e in lines) + "not json\n")


T = "2026-01-01T00:{}Z"


def test_worker_trigger_and_handover_times(tmp_path: Path) -> None:
    base = tmp_path / "task-logs" / "dag_id=d" / "run_id=r1" / "task_id=distribute"
    # pair 0 holds the only slot; pair 1 starts 2 s after pair 0's trigger ends.
    _log(
        base / "map_index=0" / "attempt=1.log",
        [(T.format("00:00"), "start"), (T.format("00:03"), "x: started copying"), (T.format("00:04"), "")],
    )
    _log(
        base / "map_index=0" / "attempt=1.log.trigger.1.log",
        [(T.format("00:05"), "trigger"), (T.format("00:35"), "done")],
    )
    _log(
        base / "map_index=1" / "attempt=1.log",
        [(T.format("00:37"), "start"), (T.format("00:38"), "y: started copying"), (T.format("00:43"), "")],
    )
    _log(
        base / "map_index=1" / "attempt=1.log.trigger.7.log",  # the triggerer job's id, not always 1
        [(T.format("00:44"), "trigger"), (T.format("01:14"), "done")],
    )
    found = pair_overheads(tmp_path)
    assert found["worker_part"] == {"median": 5.0, "p90": 6.0, "max": 6.0, "n": 2}
    assert found["copy_started_after"]["max"] == 3.0
    assert found["slot_handover"] == {"median": 2.0, "p90": 2.0, "max": 2.0, "n": 1}
    assert found["trigger_part"]["median"] == 30.0
    assert pair_overheads(tmp_path, run_id="other")["worker_part"] is None
