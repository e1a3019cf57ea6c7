"""Where a pair's time goes besides the copy and the image: read from a finished run's task logs.

``python -m bench.overheads <AIRFLOW_HOME>`` prints, for every ``distribute`` task of the run(s) there:

- *worker part*: first to last line of the worker's log (DAG parse, hooks, token, upload URI, start copy, defer);
- *copy started after*: the worker log's first line to "started copying";
- *slot hand-over*: a trigger's end (a pool slot freed) to the next worker log's first line (scheduler + executor);
- *trigger part*: the trigger's first to last line (the copy and the image creation themselves).
"""

from __future__ import annotations

import bisect
import json
import statistics
import sys
from datetime import datetime
from pathlib import Path
from typing import Any


def _timestamps(path: Path) -> list[tuple[float, str]]:
    out: list[tuple[float, str]] = []
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return out
    for line in lines:
        if not line.startswith("{"):
            continue
        try:
            record = json.loads(line)
            when = datetime.fromisoformat(str(record["timestamp"]).replace("Z", "+00:00")).timestamp()
        except (ValueError, KeyError):
            continue
        out.append((when, str(record.get("event", ""))))
    return out


def _summary(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    ordered = sorted(values)
    return {
        "median": round(statistics.median(ordered), 2),
        "p90": round(ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))], 2),
        "max": round(ordered[-1], 2),
        "n": len(ordered),
    }


def pair_overheads(airflow_home: Path, task_id: str = "distribute", run_id: str = "*") -> dict[str, Any]:
    """Return the four timings above (median, p90, max in seconds) over the first attempts of ``task_id``."""
    workers: list[tuple[float, float, float | None]] = []
    triggers: list[tuple[float, float]] = []
    pattern = f"task-logs/dag_id=*/run_id={run_id}/task_id={task_id}/map_index=*/attempt=1.log"
    for log in sorted(airflow_home.glob(pattern)):
        lines = _timestamps(log)
        if not lines:
            continue
        started = next((t for t, event in lines if "started copying" in event), None)
        workers.append((lines[0][0], lines[-1][0], started))
        # One file per triggerer job that ran the trigger (``<attempt log>.trigger.<job id>.log``).
        trigger = sorted(t for part in log.parent.glob(log.name + ".trigger.*.log") for t in _timestamps(part))
        if trigger:
            triggers.append((trigger[0][0], trigger[-1][0]))
    trigger_ends = sorted(end for _, end in triggers)
    handovers = []
    for first, _, _ in workers:
        i = bisect.bisect_left(trigger_ends, first) - 1
        if i >= 0:  # only tasks that waited for a slot another pair freed
            handovers.append(first - trigger_ends[i])
    return {
        "task_id": task_id,
        "worker_part": _summary([last - first for first, last, _ in workers]),
        "copy_started_after": _summary([s - first for first, _, s in workers if s is not None]),
        "slot_handover": _summary(handovers),
        "trigger_part": _summary([end - start for start, end in triggers]),
    }


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print(__doc__)
        return 2
    print(json.dumps(pair_overheads(Path(args[0])), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
