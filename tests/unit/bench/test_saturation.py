"""bench.saturation: the ideal makespan and P2's figures when a side did not run."""

from __future__ import annotations

from bench.saturation import BaselineMeasures, Pool, p2_figures


def test_ideal_is_full_waves_of_copy_and_image() -> None:
    pool = Pool(pairs=200, size=20, copy_seconds=20.0, image_seconds=10.0)
    assert pool.ideal == 300.0
    assert Pool(pairs=21, size=20, copy_seconds=1.0, image_seconds=1.0).ideal == 4.0
    assert round(pool.baseline_minutes()) == 18


def test_baseline_measures_read_back_from_a_result() -> None:
    doc = {"makespan": 600.0, "stats": {"copies": {"max_pending": 20}}, "summary": {"created": 200, "seconds": 650.0}}
    assert BaselineMeasures.from_result(doc) == BaselineMeasures(600.0, 20, 200, 650.0)
    assert BaselineMeasures.from_result({}) == BaselineMeasures()


def test_figures_without_ours() -> None:
    pool = Pool(pairs=200, size=20, copy_seconds=20.0, image_seconds=10.0)
    figures = {f.key: f for f in p2_figures(pool, None, BaselineMeasures(600.0, 20, 200, 650.0))}
    assert list(figures) == [
        "makespan",
        "makespan_over_ideal",
        "distribution_seconds",
        "distribution_over_ideal",
        "run_seconds",
        "max_pending",
        "created",
    ]
    assert (figures["makespan"].baseline, figures["makespan_over_ideal"].baseline) == (600.0, 2.0)
    assert figures["max_pending"].goal == "= 20"
    assert all(f.ours is None for f in figures.values())
