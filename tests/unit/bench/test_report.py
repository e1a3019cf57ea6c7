"""bench.report: result files and RESULTS.md."""

from __future__ import annotations

import json
from pathlib import Path

from bench.report import Figure, Outcome, compared, render_results, replace_figures, write_result


def test_results_markdown_has_ratio_and_missing_cells(tmp_path: Path) -> None:
    outcome = Outcome("PX", "a scenario", world={"labs": 2, "images": 3})
    outcome.figures = [
        Figure("a", "ARM requests", 50, 200, "< baseline"),
        Figure("b", "not measured", None, 7, "0"),
    ]
    outcome.notes.append("a note")
    path = write_result(outcome, tmp_path)
    assert path.name == "PX.json"
    text = render_results(tmp_path)
    assert "## PX — a scenario" in text
    assert "| ARM requests | 50 | 200 | 0.25 | < baseline |" in text
    assert "| not measured | — | 7 | — | 0 |" in text
    assert "- a note" in text


def test_compared_measures_each_side_that_ran() -> None:
    assert compared("k", "label", len, "abc", None, goal="= 3", unit="B") == Figure("k", "label", 3, None, "= 3", "B")
    assert compared("k", "label", len, None, "ab") == Figure("k", "label", None, 2)


def test_replaced_figures_go_before_the_memory_ones(tmp_path: Path) -> None:
    results = tmp_path / "results"
    outcome = Outcome("PX", "a scenario")
    outcome.figures = [Figure("a", "A", 1, 2), Figure("old", "old", 9), Figure("memory_stack", "M", 100)]
    path = write_result(outcome, results)
    doc = json.loads(path.read_text(encoding="utf-8"))

    replace_figures(path, doc, [Figure("old", "new", 3, 4), Figure("added", "B", 5)])

    rows = json.loads(path.read_text(encoding="utf-8"))["figures"]
    assert [(f["key"], f["label"]) for f in rows] == [("a", "A"), ("old", "new"), ("added", "B"), ("memory_stack", "M")]
    assert rows[1]["ratio"] == 0.75
    assert "| new | 3 | 4 | 0.75 |" in (tmp_path / "RESULTS.md").read_text(encoding="utf-8")
