"""What a scenario produces (figures), its result file ``bench/results/<scenario>.json`` and ``bench/RESULTS.md``."""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

BENCH = Path(__file__).resolve().parent
RESULTS_DIR = BENCH / "results"
RESULTS_MD = BENCH / "RESULTS.md"

Value = float | int | str | None
Measured = TypeVar("Measured")


@dataclass
class Figure:
    """One row of RESULTS.md."""

    key: str
    label: str
    ours: Value = None
    baseline: Value = None
    goal: str = ""
    unit: str = ""

    def ratio(self) -> float | None:
        """Return ours / baseline when both are numbers and the baseline is not zero."""
        if isinstance(self.ours, int | float) and isinstance(self.baseline, int | float) and self.baseline:
            return float(self.ours) / float(self.baseline)
        return None


def compared(
    key: str,
    label: str,
    measure: Callable[[Measured], Value],
    ours: Measured | None,
    baseline: Measured | None,
    *,
    goal: str = "",
    unit: str = "",
) -> Figure:
    """Return the figure ``measure`` gives each side; a side that did not run (None) has no value."""
    ours_value = None if ours is None else measure(ours)
    return Figure(key, label, ours_value, None if baseline is None else measure(baseline), goal, unit)


@dataclass
class Outcome:
    """What a scenario produced: figures plus raw data for its JSON file."""

    name: str
    title: str
    figures: list[Figure] = field(default_factory=list)
    world: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    ours: dict[str, Any] = field(default_factory=dict)
    baseline: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def machine() -> dict[str, Any]:
    """Describe the machine the figures were measured on."""
    mem_kib = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    except OSError:
        pass
    return {
        "cpu_count": os.cpu_count(),
        "memory_gib": round(mem_kib / 1024 / 1024, 1) if mem_kib else None,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "airflow": _version("apache-airflow"),
        "azure_mgmt_devtestlabs": _version("azure-mgmt-devtestlabs"),
        "azure_storage_blob": _version("azure-storage-blob"),
    }


def figure_rows(figures: list[Figure]) -> list[dict[str, Any]]:
    """Return the figures as a result file keeps them (each with its ratio)."""
    return [{**asdict(f), "ratio": f.ratio()} for f in figures]


def write_result(outcome: Outcome, results_dir: Path = RESULTS_DIR) -> Path:
    """Write ``results/<scenario>.json``."""
    results_dir.mkdir(parents=True, exist_ok=True)
    doc = {
        "scenario": outcome.name,
        "title": outcome.title,
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "figures": figure_rows(outcome.figures),
        "world": outcome.world,
        "settings": outcome.settings,
        "machine": machine(),
        "ours": outcome.ours,
        "baseline": outcome.baseline,
        "notes": outcome.notes,
    }
    path = results_dir / f"{outcome.name}.json"
    path.write_text(json.dumps(doc, indent=2, default=str) + "\n", encoding="utf-8")
    return path


def previous_baseline(name: str, results_dir: Path = RESULTS_DIR) -> dict[str, Any] | None:
    """Return the baseline half of an earlier result file (same world and settings), or None."""
    path = results_dir / f"{name}.json"
    if not path.exists():
        return None
    data = json.loads(path.read_text())
    baseline = data.get("baseline") or {}
    return {"from": path.name, "generated_at": data.get("generated_at"), **baseline} if baseline else None


def replace_figures(path: Path, doc: dict[str, Any], added: list[Figure]) -> Path:
    """Put ``added`` in place of the figures with their keys (before the memory ones), write, regenerate RESULTS.md."""
    keys = {f.key for f in added}
    figures = [f for f in doc.get("figures", []) if f.get("key") not in keys]
    at = next((i for i, f in enumerate(figures) if str(f.get("key", "")).startswith("memory_")), len(figures))
    doc["figures"] = figures[:at] + figure_rows(added) + figures[at:]
    path.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    regenerate_results_md(path.parent, path.parent.parent / RESULTS_MD.name)
    return path


def _cell(value: Any, unit: str = "") -> str:
    if value is None:
        return "—"
    text = str(value)
    if isinstance(value, float):
        text = f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"
    return f"{text} {unit}".strip() if isinstance(value, int | float) else text


def _world(doc: dict[str, Any]) -> dict[str, Any]:
    """A result's world; one measured before the local Azure had latency and throttling says it was instant."""
    world = dict(doc.get("world", {}))
    world.setdefault("azure", "instant (no latency), ARM throttling off — measured before they existed")
    return world


def _stack_line(described: dict[str, Any] | None) -> list[str]:
    if not described:
        return []
    return [
        f"Ours ran on {described.get('executor')} with {described.get('database')} "
        f"(parallelism {described.get('parallelism')}).",
        "",
    ]


def _section(doc: dict[str, Any]) -> list[str]:
    """Return the RESULTS.md section of one result file."""
    m = doc.get("machine", {})
    lines = [
        f"## {doc['scenario']} — {doc['title']}",
        "",
        f"Measured {doc.get('generated_at')} on {m.get('cpu_count')} CPUs, {m.get('memory_gib')} GiB, "
        f"Python {m.get('python')}, Airflow {m.get('airflow')}. World: "
        + ", ".join(f"{k} {v}" for k, v in _world(doc).items() if not isinstance(v, dict | list))
        + ".",
        "",
        *_stack_line((doc.get("ours") or {}).get("stack")),
        "| figure | ours | baseline | ratio | goal |",
        "| --- | --- | --- | --- | --- |",
    ]
    for f in doc.get("figures", []):
        ratio = f.get("ratio")
        lines.append(
            f"| {f['label']} | {_cell(f.get('ours'), f.get('unit', ''))} | "
            f"{_cell(f.get('baseline'), f.get('unit', ''))} | {'—' if ratio is None else f'{ratio:.2f}'} | "
            f"{f.get('goal', '')} |"
        )
    for note in doc.get("notes", []):
        lines.append(f"\n- {note}")
    lines.append("")
    return lines


def render_results(results_dir: Path = RESULTS_DIR) -> str:
    """Return RESULTS.md for every result file."""
    lines = [
        "# Benchmark results",
        "",
        "Generated by `python -m bench` from `bench/results/*.json`; do not edit by hand.",
        "*ours* is the Airflow DAG on the local Azure, *baseline* the PowerShell DistributeImages ported to Python",
        "call for call (`bench/baseline.py`). Ratio = ours / baseline.",
        "",
    ]
    for path in sorted(results_dir.glob("*.json")):
        lines += _section(json.loads(path.read_text(encoding="utf-8")))
    return "\n".join(lines).rstrip() + "\n"


def regenerate_results_md(results_dir: Path = RESULTS_DIR, target: Path = RESULTS_MD) -> Path:
    """Rewrite RESULTS.md from the result files."""
    target.write_text(render_results(results_dir), encoding="utf-8")
    return target
