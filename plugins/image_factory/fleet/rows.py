"""The fleet's value objects: a cell, a lab's row and last run, a catalogue version, the fleet. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from image_factory import imagepaths

CellState = Literal["current", "behind", "missing", "failed", "not_subscribed", "stale"]
RunOutcome = Literal["succeeded", "failed", "running", "dry_run", "nothing_to_do", "unknown"]

#: Every cell state, worst first (the order the view's legend and a lab's summary use).
CELL_STATES: tuple[CellState, ...] = ("failed", "missing", "stale", "behind", "current", "not_subscribed")


@dataclass(frozen=True)
class FleetCell:
    """One lab × ImagePath: the newest version the lab holds, its age in days, versions behind, state, why."""

    lab: str
    image_path: str
    state: CellState
    version: str | None = None
    age_days: int | None = None
    behind: int = 0
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "version": self.version,
            "age_days": self.age_days,
            "behind": self.behind,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class PairTask:
    """One distribution of a lab's last run: which task instance did it, and its state (None: not known)."""

    image_path: str
    version: str
    label: str
    task_id: str
    map_index: int
    state: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "image_path": self.image_path,
            "version": self.version,
            "label": self.label,
            "task_id": self.task_id,
            "map_index": self.map_index,
            "state": self.state,
        }


@dataclass(frozen=True)
class LastRun:
    """A lab's last run: the newest run whose verify inventoried it, and what that run did for the lab."""

    run_id: str
    day: str
    dry_run: bool
    outcome: RunOutcome
    pairs: tuple[PairTask, ...] = ()
    problems: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "day": self.day,
            "dry_run": self.dry_run,
            "outcome": self.outcome,
            "pairs": [p.to_dict() for p in self.pairs],
            "problems": list(self.problems),
        }


@dataclass(frozen=True)
class LabRow:
    """One lab of labs.json: whether it could be read, its cells (one per ImagePath) and its last run."""

    name: str
    status: str
    cells: tuple[FleetCell, ...]
    message: str = ""
    last_run: LastRun | None = None

    def cell(self, image_path: str) -> FleetCell | None:
        """Return the cell of ``image_path`` (any spelling), or None when the fleet has no such column."""
        wanted = imagepaths.key(image_path)
        return next((c for c in self.cells if imagepaths.key(c.image_path) == wanted), None)

    def in_state(self, *states: CellState) -> list[FleetCell]:
        """Return the cells in any of ``states``."""
        return [c for c in self.cells if c.state in states]

    @property
    def worst(self) -> CellState:
        """Return the worst state of the lab's cells (``not_subscribed`` when it subscribes to nothing)."""
        present = {c.state for c in self.cells}
        return next((s for s in CELL_STATES if s in present), "not_subscribed")

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "message": self.message,
            "worst": self.worst,
            "cells": {c.image_path: c.to_dict() for c in self.cells},
            "last_run": self.last_run.to_dict() if self.last_run else None,
        }


@dataclass(frozen=True)
class CatalogueVersion:
    """One version of an ImagePath in the factory catalogue, with its size and what it was captured from."""

    image_path: str
    version: str
    size_bytes: int | None = None
    captured: str = ""
    source_vm: str | None = None
    source_disk: str | None = None
    by_powershell: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "size_bytes": self.size_bytes,
            "captured": self.captured,
            "source_vm": self.source_vm,
            "source_disk": self.source_disk,
            "by_powershell": self.by_powershell,
        }


@dataclass(frozen=True)
class Fleet:
    """The whole fleet: columns (ImagePaths), one row per lab, the catalogue, and what it was computed from."""

    image_paths: tuple[str, ...] = ()
    labs: tuple[LabRow, ...] = ()
    catalogue: Mapping[str, tuple[CatalogueVersion, ...]] = field(default_factory=dict)
    freshness_days: int | None = None
    #: When the newest snapshot was taken (ISO 8601), and by which run; empty when there is none.
    as_of: str = ""
    run_id: str = ""

    def lab(self, name: str) -> LabRow | None:
        """Return the row of lab ``name`` (case-insensitive), or None."""
        wanted = name.casefold()
        return next((row for row in self.labs if row.name.casefold() == wanted), None)

    def counts(self) -> dict[str, int]:
        """Return how many cells are in each state."""
        out: dict[str, int] = dict.fromkeys(CELL_STATES, 0)
        for row in self.labs:
            for c in row.cells:
                out[c.state] += 1
        return out

    def to_dict(self) -> dict[str, Any]:
        """Return the fleet as a JSON-ready document (what the plugin's API answers)."""
        return {
            "as_of": self.as_of,
            "run_id": self.run_id,
            "freshness_days": self.freshness_days,
            "image_paths": list(self.image_paths),
            "counts": self.counts(),
            "labs": [row.to_dict() for row in self.labs],
            "catalogue": {path: [v.to_dict() for v in vs] for path, vs in self.catalogue.items()},
        }
