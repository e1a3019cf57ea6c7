"""P8 the Image Factory view: how long ``GET /image-factory/api/fleet`` takes for 100 labs x 50 ImagePaths.

One stack (SQLite, the demo world) runs one dry run, so that a verify task instance exists; its ``fleet`` XCom
is then replaced, through Airflow's REST API, by a snapshot of 100 labs x 50 ImagePaths written here from the
documented snapshot format (docs/ARCHITECTURE.md, "The fleet view"): every lab subscribes to every path and
holds 2 versions of each, the catalogue 2 versions of each. The view's API is then timed over HTTP as a browser
calls it (the metadata DB read, the fleet model, the JSON), ``REQUESTS`` times after one warm-up request.
"""

from __future__ import annotations

import statistics
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from bench.measure import REPO, RUN_DIR
from bench.report import Figure, Outcome

#: Timed requests (after one warm-up).
REQUESTS = 20
#: The view's data route, and the XCom it reads (task verify, key fleet).
FLEET_ROUTE = "/image-factory/api/fleet"
VERIFY_TASK = "verify"
FLEET_KEY = "fleet"


def _versions(today: datetime) -> list[str]:
    return [(today - timedelta(days=d)).date().isoformat() for d in (0, 7)]


def fleet_snapshot(labs: int, paths: int, *, now: datetime | None = None) -> dict[str, Any]:
    """Return a verify snapshot of ``labs`` labs x ``paths`` ImagePaths (every lab subscribed, 2 versions held)."""
    today = now or datetime.now(UTC)
    names = [f"Folder{p // 10:02d}/Image{p:03d}.json" for p in range(paths)]
    kept = _versions(today)
    catalogue = {
        path: [
            {"version": v, "size_bytes": 127 * 1024**3, "captured": f"{v}T02:10:00+00:00", "source_vm": f"vm{i:03d}",
             "source_disk": f"{i:08x}-0000-4000-8000-000000000000", "by_powershell": False}
            for v in kept
        ]
        for i, path in enumerate(names)
    }  # fmt: skip
    lab_names = [f"Lab{n:03d}" for n in range(labs)]

    # One lab in ten is a version behind on every path (it holds the older version only).
    def holding(n: int) -> list[dict[str, Any]]:
        return [{"version": v, "state": "Succeeded", "created": None} for v in (kept[1:] if n % 10 == 0 else kept)]

    held = [
        {"name": name, "status": "ok", "message": "", "held": {path: holding(n) for path in names}}
        for n, name in enumerate(lab_names)
    ]
    return {
        "schema": 1,
        "run_id": "bench-fleet",
        "day": kept[0],
        "dry_run": False,
        "taken_at": today.isoformat(),
        "freshness_days": 30,
        "golden_images": names,
        "all_labs": [{"name": name, "image_paths": sorted({p.split("/")[0] for p in names})} for name in lab_names],
        "labs": held,
        "catalogue": catalogue,
        "pairs": [],
        "problems": {},
    }


def _timed(client: httpx.Client, token: str) -> tuple[list[float], int, dict[str, Any]]:
    headers = {"Authorization": f"Bearer {token}"}
    first = client.get(FLEET_ROUTE, headers=headers)
    first.raise_for_status()
    seconds = []
    for _ in range(REQUESTS):
        started = time.perf_counter()
        client.get(FLEET_ROUTE, headers=headers).raise_for_status()
        seconds.append(time.perf_counter() - started)
    return seconds, len(first.content), first.json()


def scenario_p8(*, labs: int = 100, paths: int = 50, with_ours: bool = True) -> list[Outcome]:
    """P8: the fleet view's API time for ``labs`` x ``paths``."""
    from stack.__main__ import DAG_ID, follow_run, running_stack

    out = Outcome("P8", f"Image Factory view: GET {FLEET_ROUTE} for {labs} labs x {paths} ImagePaths")
    out.world = {"labs": labs, "image_paths": paths, "cells": labs * paths, "versions_held_per_cell": 2}
    if not with_ours:
        return [out]
    with running_stack(
        run_dir=RUN_DIR / "p8-ours",
        world=REPO / "emulator" / "worlds" / "demo.json",
        config_dir=REPO / "Configuration",
        extra_env={"AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False"},
        database="sqlite",
        say=lambda *_: None,
    ) as stack:
        stack.client.unpause(DAG_ID)
        run_id = stack.client.trigger(DAG_ID, conf={"dry_run": True, "capture": False, "retire": False})
        follow_run(stack, run_id, timeout=600)
        stack.client.request(
            "PATCH",
            f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{VERIFY_TASK}/xcomEntries/{FLEET_KEY}",
            json={"value": fleet_snapshot(labs, paths)},
        )
        with httpx.Client(base_url=stack.airflow.base_url, timeout=60) as client:
            seconds, size, doc = _timed(client, stack.client.token)
    cells = sum(len(lab["cells"]) for lab in doc["labs"])
    out.ours = {"seconds": seconds, "bytes": size, "cells": cells, "counts": doc["counts"]}
    out.figures = [
        Figure("fleet_median_seconds", f"GET {FLEET_ROUTE}, median of {REQUESTS}", round(statistics.median(seconds), 3),
               None, "< 1 s", "s"),
        Figure("fleet_max_seconds", f"GET {FLEET_ROUTE}, slowest of {REQUESTS}", round(max(seconds), 3), None,
               "< 1 s", "s"),
        Figure("fleet_cells", "cells answered (labs x ImagePaths)", cells, None, f"= {labs * paths}"),
        Figure("fleet_bytes", "response size", size, None, unit="B"),
    ]  # fmt: skip
    return [out]
