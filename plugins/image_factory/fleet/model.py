"""The fleet model: labs × ImagePaths, each cell's newest version, age, versions behind and state. Pure.

Input: fleet snapshots (the documents verify hands over by XCom, see :mod:`image_factory.fleet.snapshot`),
newest first. A run with ``labs=[…]`` inventories only those labs, so each lab's row comes from the newest
snapshot that inventoried it; the lab list, the subscriptions, the catalogue and ``FreshnessDays`` come from the
newest snapshot. Optional task states (read from Airflow's metadata database by the api-server) give each lab's
last run outcome and the state of the task that distributed each of its pairs.

A cell's state, the first that applies:

- ``not_subscribed``: the lab does not subscribe to the ImagePath;
- ``failed``: the lab could not be read, its copy of the newest version is not Succeeded, or its last run's task
  for that ImagePath failed and the lab still lacks the version;
- ``missing``: the lab holds no Succeeded version of it;
- ``stale``: its newest version is older than ``FreshnessDays`` (when set);
- ``behind``: the catalogue has versions newer than the lab's newest;
- ``current``: the lab holds the catalogue's newest version.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from image_factory import imagepaths, versions
from image_factory.fleet.rows import (
    CELL_STATES,
    CatalogueVersion,
    CellState,
    Fleet,
    FleetCell,
    LabRow,
    LastRun,
    PairTask,
    RunOutcome,
)

__all__ = [
    "CELL_STATES",
    "CatalogueVersion",
    "CellState",
    "Fleet",
    "FleetCell",
    "LabRow",
    "LastRun",
    "PairTask",
    "RunOutcome",
    "behind_labs",
    "build_fleet",
    "catch_up_paths",
    "stale_labs",
]

#: Task states that mean a distribution did not end well.
FAILED_TASK_STATES = frozenset({"failed", "upstream_failed"})
#: Task states that mean a distribution has not ended yet.
RUNNING_TASK_STATES = frozenset({"queued", "scheduled", "running", "deferred", "up_for_retry", "restarting"})
#: Version of the snapshot documents this model reads.
SNAPSHOT_SCHEMA = 1

#: (run_id, task_id, map_index) → a task instance's state, as Airflow's metadata database holds it.
TaskStates = Mapping[tuple[str, str, int], str]


def stale_labs(fleet: Fleet) -> list[LabRow]:
    """Return the labs with at least one stale cell (newest version older than ``FreshnessDays``)."""
    return [row for row in fleet.labs if row.in_state("stale")]


def behind_labs(fleet: Fleet) -> list[LabRow]:
    """Return the labs with a cell failed, or behind or missing a version the catalogue has (one to catch up)."""
    return [row for row in fleet.labs if any(_to_catch_up(c) for c in row.cells)]


def catch_up_paths(row: LabRow) -> list[str]:
    """Return the ImagePaths a catch-up run of ``row``'s lab would bring to the catalogue's newest version."""
    return [c.image_path for c in row.cells if _to_catch_up(c) or (c.state == "stale" and c.behind)]


def _to_catch_up(cell: FleetCell) -> bool:
    return cell.state == "failed" or (cell.state in ("behind", "missing") and cell.behind > 0)


def _age(version: str | None, today: date) -> int | None:
    if not version:
        return None
    try:
        return (today - date.fromisoformat(versions.day(version))).days
    except ValueError:
        return None


def _catalogue(document: Mapping[str, Any]) -> dict[str, tuple[CatalogueVersion, ...]]:
    out: dict[str, tuple[CatalogueVersion, ...]] = {}
    for path, entries in (document or {}).items():
        found = [
            CatalogueVersion(
                image_path=imagepaths.normalize(path),
                version=str(e["version"]),
                size_bytes=e.get("size_bytes"),
                captured=str(e.get("captured") or ""),
                source_vm=e.get("source_vm"),
                source_disk=e.get("source_disk"),
                by_powershell=bool(e.get("by_powershell", False)),
            )
            for e in entries
        ]
        found.sort(key=lambda v: versions.sort_key(v.version), reverse=True)
        out[imagepaths.normalize(path)] = tuple(found)
    return out


@dataclass(frozen=True)
class _Holdings:
    """What one lab holds of one ImagePath: its Succeeded versions (newest first) and the failed ones."""

    good: tuple[str, ...] = ()
    failed: frozenset[str] = frozenset()


def _holdings(held: Mapping[str, Iterable[Mapping[str, Any]]]) -> dict[str, _Holdings]:
    out: dict[str, _Holdings] = {}
    for path, images in held.items():
        good: set[str] = set()
        bad: set[str] = set()
        for image in images:
            (good if str(image.get("state", "")).casefold() == "succeeded" else bad).add(str(image["version"]))
        out[imagepaths.key(path)] = _Holdings(tuple(versions.newest_first(good)), frozenset(bad - good))
    return out


@dataclass(frozen=True)
class _Context:
    today: date
    freshness_days: int | None
    catalogue: Mapping[str, tuple[str, ...]]


def _failure(have: _Holdings, target: str | None, failed_task: str | None) -> str | None:
    """Return why a subscribed cell is failed, or None."""
    if target is None or target in have.good:
        return None
    if target in have.failed:
        return f"its copy of {target} did not provision"
    if failed_task is not None:
        return f"the last run's {failed_task}"
    return None


def _cell(lab: str, path: str, have: _Holdings, failed_task: str | None, ctx: _Context) -> FleetCell:
    """Return the cell of a lab that subscribes to ``path``."""
    newest = have.good[0] if have.good else None
    age = _age(newest, ctx.today)
    offered = ctx.catalogue.get(imagepaths.key(path), ())
    target = offered[0] if offered else None
    behind = sum(1 for v in offered if newest is None or versions.sort_key(v) > versions.sort_key(newest))
    failure = _failure(have, target, failed_task)
    if failure is not None:
        return FleetCell(lab, path, "failed", newest, age, behind, failure)
    if newest is None:
        why = f"the lab has no version; the catalogue's newest is {target}" if target else "no version in the catalogue"
        return FleetCell(lab, path, "missing", None, None, behind, why)
    if ctx.freshness_days is not None and age is not None and age > ctx.freshness_days:
        why = f"{newest} is {age} days old (FreshnessDays {ctx.freshness_days})"
        return FleetCell(lab, path, "stale", newest, age, behind, why)
    if behind:
        return FleetCell(lab, path, "behind", newest, age, behind, f"the catalogue's newest is {target}")
    return FleetCell(lab, path, "current", newest, age)


def _outcome(pairs: Sequence[PairTask], problems: Sequence[str], dry_run: bool, run_state: str | None) -> RunOutcome:
    if dry_run:
        return "dry_run"
    states = [p.state for p in pairs]
    if problems or any(s in FAILED_TASK_STATES for s in states):
        return "failed"
    if any(s in RUNNING_TASK_STATES for s in states) or run_state in RUNNING_TASK_STATES:
        return "running"
    if not pairs:
        return "nothing_to_do"
    if all(s == "success" for s in states):
        return "succeeded"
    return "unknown"


def _last_run(snapshot: Mapping[str, Any], lab: str, task_states: TaskStates, run_states: Mapping[str, str]) -> LastRun:
    run_id = str(snapshot.get("run_id", ""))
    pairs = tuple(
        PairTask(
            image_path=imagepaths.normalize(p["image_path"]),
            version=str(p["version"]),
            label=str(p.get("label", "")),
            task_id=str(p["task_id"]),
            map_index=int(p["map_index"]),
            state=task_states.get((run_id, str(p["task_id"]), int(p["map_index"]))),
        )
        for p in snapshot.get("pairs", ())
        if str(p.get("lab", "")).casefold() == lab.casefold()
    )
    problems = tuple((snapshot.get("problems") or {}).get(lab, ()))
    dry_run = bool(snapshot.get("dry_run", False))
    outcome = _outcome(pairs, problems, dry_run, run_states.get(run_id))
    return LastRun(run_id, str(snapshot.get("day", "")), dry_run, outcome, pairs, problems)


def _columns(newest: Mapping[str, Any], inventoried: Iterable[Mapping[str, Any]]) -> tuple[str, ...]:
    spelled: dict[str, str] = {}
    for path in (*newest.get("golden_images", ()), *(newest.get("catalogue") or {})):
        spelled.setdefault(imagepaths.key(path), imagepaths.normalize(path))
    for lab in inventoried:
        for path in lab.get("held") or {}:
            spelled.setdefault(imagepaths.key(path), imagepaths.normalize(path))
    return tuple(spelled[k] for k in sorted(spelled))


def build_fleet(
    snapshots: Sequence[Mapping[str, Any]],
    *,
    now: datetime | None = None,
    task_states: TaskStates | None = None,
    run_states: Mapping[str, str] | None = None,
) -> Fleet:
    """Build the fleet from verify's snapshots, newest first (an empty list gives an empty fleet).

    ``task_states`` maps (run_id, task_id, map_index) to a task instance's state and ``run_states`` a run id
    to its run's state; both are optional (the cells do not need them, the lab's last run outcome does).
    """
    usable = [s for s in snapshots if int(s.get("schema", 0)) == SNAPSHOT_SCHEMA]
    if not usable:
        return Fleet()
    newest = usable[0]
    today = (now or datetime.now(UTC)).astimezone(UTC).date()
    catalogue = _catalogue(newest.get("catalogue") or {})
    freshness = newest.get("freshness_days")
    ctx = _Context(
        today=today,
        freshness_days=int(freshness) if freshness else None,
        catalogue={imagepaths.key(p): tuple(v.version for v in vs) for p, vs in catalogue.items()},
    )
    # Each lab's row from the newest snapshot that inventoried it.
    latest: dict[str, tuple[Mapping[str, Any], Mapping[str, Any]]] = {}
    for snapshot in usable:
        for entry in snapshot.get("labs", ()):
            latest.setdefault(str(entry["name"]).casefold(), (snapshot, entry))
    columns = _columns(newest, (entry for _s, entry in latest.values()))
    rows = [
        _row(
            lab,
            latest.get(str(lab["name"]).casefold()),
            columns,
            ctx,
            task_states=task_states or {},
            run_states=run_states or {},
        )
        for lab in newest.get("all_labs", ())
    ]
    return Fleet(
        image_paths=columns,
        labs=tuple(rows),
        catalogue={p: catalogue.get(p, ()) for p in columns},
        freshness_days=ctx.freshness_days,
        as_of=str(newest.get("taken_at", "")),
        run_id=str(newest.get("run_id", "")),
    )


def _row(
    lab: Mapping[str, Any],
    seen: tuple[Mapping[str, Any], Mapping[str, Any]] | None,
    columns: Sequence[str],
    ctx: _Context,
    *,
    task_states: TaskStates,
    run_states: Mapping[str, str],
) -> LabRow:
    name = str(lab["name"])
    selectors = [str(s) for s in lab.get("image_paths", ())]
    if seen is None:
        cells = tuple(
            FleetCell(name, p, "missing" if _subscribed(selectors, p) else "not_subscribed", detail="never inventoried")
            for p in columns
        )
        return LabRow(name, "unknown", cells, "no verify has read this lab yet")
    snapshot, entry = seen
    status = str(entry.get("status", "ok"))
    last = _last_run(snapshot, name, task_states, run_states)
    failed_tasks = {
        imagepaths.key(p.image_path): f"{p.task_id}[{p.map_index}] {p.state}"
        for p in last.pairs
        if p.state in FAILED_TASK_STATES
    }
    held = _holdings(entry.get("held") or {})
    cells_list: list[FleetCell] = []
    for path in columns:
        subscribed = _subscribed(selectors, path)
        if status != "ok" and subscribed:
            cells_list.append(FleetCell(name, path, "failed", detail=f"lab {status}: {entry.get('message', '')}"))
            continue
        have = held.get(imagepaths.key(path), _Holdings())
        if not subscribed:
            newest = have.good[0] if have.good else None
            cells_list.append(FleetCell(name, path, "not_subscribed", newest, _age(newest, ctx.today)))
            continue
        cells_list.append(_cell(name, path, have, failed_tasks.get(imagepaths.key(path)), ctx))
    return LabRow(name, status, tuple(cells_list), str(entry.get("message", "")), last)


def _subscribed(selectors: Sequence[str], path: str) -> bool:
    return any(imagepaths.selects(s, path) for s in selectors)
