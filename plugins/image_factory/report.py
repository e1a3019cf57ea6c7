"""Human reports: the plan as a table, and the lab × image matrix that says which lab is missing what."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from image_factory import imagepaths
from image_factory.catalogue import version_from_name
from image_factory.models import LabImage, LabInventory, LabRef, Plan
from image_factory.states import ProvisioningState

CellState = Literal["ok", "missing", "failed", "not_subscribed", "skipped"]

#: How each cell state is drawn in ``Matrix.render``.
SYMBOLS: dict[str, str] = {
    "ok": "✔",
    "missing": "missing",
    "failed": "failed",
    "not_subscribed": "·",
    "skipped": "skipped",
}


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(r[i])) for r in (header, *rows)) for i in range(len(header))]
    lines = [
        "  ".join(str(cell).ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in (header, ["-" * w for w in widths], *rows)
    ]
    return "\n".join(lines)


def plan_table(plan: Plan) -> str:
    """Render the plan as an aligned text table: lab, image path, version, action or skip reason."""
    rows: list[tuple[str, str, str, str]] = []
    for pair in plan.pairs:
        action = "distribute (cross-region)" if pair.cross_region else "distribute"
        rows.append((pair.lab_name, pair.image_path, pair.version, action))
    for skip in plan.skipped:
        action = f"skip: {skip.reason}" + (f" ({skip.detail})" if skip.detail else "")
        rows.append((skip.lab_name, skip.image_path, skip.version or "-", action))
    rows.sort(key=lambda r: (r[0].casefold(), imagepaths.key(r[1]), r[2], r[3]))
    summary = (
        f"{len(plan.pairs)} to distribute, {len(plan.skipped)} skipped, {len(plan.expected)} expected after the run"
    )
    if not rows:
        return f"nothing planned\n{summary}"
    return f"{_table(('LAB', 'IMAGE PATH', 'VERSION', 'ACTION'), rows)}\n{summary}"


@dataclass(frozen=True)
class Cell:
    """One lab × ImagePath cell: its state, the version it concerns, and why when not ok."""

    state: CellState
    version: str | None = None
    detail: str = ""
    #: Every expected version that is not there: (version, "missing" or "failed", detail), newest first.
    issues: tuple[tuple[str, str, str], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "version": self.version,
            "detail": self.detail,
            "issues": [{"version": v, "state": s, "detail": d} for v, s, d in self.issues],
        }


@dataclass(frozen=True)
class Matrix:
    """Which lab has which image after a run; rows are lab names, columns ImagePaths."""

    labs: tuple[str, ...]
    image_paths: tuple[str, ...]
    cells: Mapping[tuple[str, str], Cell] = field(default_factory=dict)
    #: Labs that could not be read (missing, forbidden, failing), with what Azure said and what to fix.
    unavailable: Mapping[str, str] = field(default_factory=dict)

    def cell(self, lab_name: str, image_path: str) -> Cell:
        """Return the cell of ``lab_name`` × ``image_path`` (any spelling of the path)."""
        return self.cells.get((lab_name, imagepaths.key(image_path)), Cell("not_subscribed"))

    def render(self) -> str:
        """Draw the matrix as text: ✔ version, missing, failed, skipped, or · (not subscribed)."""
        if not self.labs or not self.image_paths:
            return "no labs or no images to show"
        rows = []
        for lab in self.labs:
            row = [lab]
            for path in self.image_paths:
                cell = self.cell(lab, path)
                text = SYMBOLS[cell.state]
                row.append(f"{text} {cell.version}" if cell.state == "ok" and cell.version else text)
            rows.append(row)
        return _table(("LAB", *self.image_paths), rows)

    def lab_problems(self) -> list[str]:
        """Return one sentence per lab that could not be read: a problem of the run, not a skip."""
        return [f"{lab}: {detail}" for lab, detail in self.unavailable.items()]

    def problems(self) -> list[str]:
        """Return the unreadable labs, then one sentence per expected image that is missing or failed."""
        out = self.lab_problems()
        for lab in self.labs:
            for path in self.image_paths:
                for version, state, detail in self.cell(lab, path).issues:
                    line = f"{lab}: {path} {version} is {state}"
                    out.append(f"{line} ({detail})" if detail else line)
        return out

    def to_dict(self) -> dict[str, Any]:
        """Return the matrix as a JSON-ready document (for a run artifact)."""
        return {
            "labs": list(self.labs),
            "image_paths": list(self.image_paths),
            "cells": {lab: {path: self.cell(lab, path).to_dict() for path in self.image_paths} for lab in self.labs},
            "unavailable": dict(self.unavailable),
            "problems": self.problems(),
        }


def _version_states(images: Iterable[LabImage], path_key: str) -> dict[str, str]:
    states: dict[str, str] = {}
    for image in images:
        if not image.image_path or imagepaths.key(image.image_path) != path_key:
            continue
        # Images the PowerShell factory made have no version tag; their name ends in -MMM-d-yyyy.
        version = image.version or version_from_name(image.name)
        # A Succeeded copy wins over a failed one of the same version.
        if version and not ProvisioningState.SUCCEEDED.matches(states.get(version)):
            states[version] = image.provisioning_state
    return states


def _cell(versions: Sequence[str], states: Mapping[str, str], unavailable: str) -> Cell:
    good = sorted((v for v, s in states.items() if ProvisioningState.SUCCEEDED.matches(s)), reverse=True)
    issues: list[tuple[str, str, str]] = []
    for version in sorted(set(versions), reverse=True):
        state = states.get(version)
        if state is None:
            issues.append((version, "missing", unavailable))
        elif not ProvisioningState.SUCCEEDED.matches(state):
            issues.append((version, "failed", f"provisioning state {state}"))
    if issues:
        worst = next((i for i in issues if i[1] == "failed"), issues[0])
        return Cell("failed" if worst[1] == "failed" else "missing", worst[0], worst[2], tuple(issues))
    if good:
        return Cell("ok", good[0])
    return Cell("skipped", None, unavailable or "nothing was planned for this lab and image")


def build_matrix(
    labs: Sequence[LabRef],
    expected: Iterable[tuple[str, str, str]],
    inventories_after: Mapping[str, LabInventory],
) -> Matrix:
    """Compare what the plan expected with the labs' custom images after the run.

    Lab images are matched on their ``ImagePath`` and ``ImageFactory.Version`` tags (the version of an image
    the PowerShell factory made is read from its name's ``-MMM-d-yyyy`` suffix).
    """
    wanted: dict[tuple[str, str], list[str]] = {}
    spelled: dict[str, str] = {}
    for lab_name, path, version in expected:
        wanted.setdefault((lab_name.casefold(), imagepaths.key(path)), []).append(version)
        spelled.setdefault(imagepaths.key(path), imagepaths.normalize(path))
    for taken in inventories_after.values():
        for image in taken.images:
            if image.image_path:
                spelled.setdefault(imagepaths.key(image.image_path), imagepaths.normalize(image.image_path))
    columns = sorted(spelled)

    cells: dict[tuple[str, str], Cell] = {}
    names: list[str] = []
    unreadable: dict[str, str] = {}
    for lab in labs:
        if lab.lab_name in names:
            continue
        names.append(lab.lab_name)
        inventory = inventories_after.get(lab.key)
        unavailable = ""
        if inventory is None:
            unavailable = "lab not inventoried"
        elif inventory.status != "ok":
            unavailable = f"lab {inventory.status}" + (f": {inventory.message}" if inventory.message else "")
            unreadable[lab.lab_name] = _unreadable(inventory)
        images = inventory.images if inventory is not None else ()
        for path_key in columns:
            versions = wanted.get((lab.lab_name.casefold(), path_key), [])
            subscribed = any(imagepaths.selects(sel, path_key) for sel in lab.image_paths)
            if not subscribed and not versions:
                continue
            cells[(lab.lab_name, path_key)] = _cell(versions, _version_states(images, path_key), unavailable)
    return Matrix(
        labs=tuple(names), image_paths=tuple(spelled[k] for k in columns), cells=cells, unavailable=unreadable
    )


#: What to fix, per status of a lab that could not be read.
_FIX = {
    "not_found": "check LabName, ResourceGroup and SubscriptionId in labs.json, or create the lab",
    "forbidden": "grant the factory's principal DevTest Labs User (or Contributor) on the lab",
    "error": "see the message; the next run tries again",
}


def _unreadable(inventory: LabInventory) -> str:
    said = f" ({inventory.message})" if inventory.message else ""
    what = {"not_found": "lab not found", "forbidden": "access denied"}.get(inventory.status, "lab unreadable")
    return f"{what}{said}: {_FIX.get(inventory.status, _FIX['error'])}"
