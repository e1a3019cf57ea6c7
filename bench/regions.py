"""P5 region fan-out: bytes copied across regions, 3 regions x 5 labs (the baseline refuses other regions)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bench import worlds
from bench.measure import RUN_DIR, baseline_settings, measure_baseline, stats_digest, world_facts
from bench.ours import DISTRIBUTE_ONLY, ours_side
from bench.report import Figure, Outcome, compared


def cross_region_bytes(world: Mapping[str, Any], stats: Mapping[str, Any]) -> int:
    """Return the bytes of the successful copies whose source and destination accounts are in different regions.

    A copy without a source account (a SAS from the factory) counts as leaving the factory's region.
    """
    factory_region = worlds.factory_lab(world)["location"]
    region_of = {lab["storage_account"]: lab["location"] for lab in world["labs"]}
    return sum(
        int(t.get("bytes", 0))
        for t in stats.get("copies", {}).get("transfers", [])
        if t.get("status") == "success"
        and region_of.get(t.get("source_account") or "", factory_region) != region_of.get(t["destination_account"])
    )


def scenario_p5(
    *, labs_per_region: int = 5, regions: int = 3, images: int = 3, with_ours: bool = True
) -> list[Outcome]:
    """P5: bytes copied across regions (3 regions x 5 labs)."""
    labs = labs_per_region * regions
    world = worlds.generate_world(labs, images, regions, copy_seconds=2.0, lro_seconds=1.0)
    labs_doc = worlds.labs_json(world)
    out = Outcome("P5", f"Cross-region bytes, {regions} regions x {labs_per_region} labs, {images} images")
    out.world = world_facts(labs, images, regions)
    settings = baseline_settings(labs_doc, jobs=20, copy_seconds=2.0, scaled=True)
    [(result, stats)] = measure_baseline(RUN_DIR / "p5-baseline", world, settings)
    out.baseline = {
        "summary": result.summary(),
        "stats": stats_digest(stats),
        "cross_region_bytes": cross_region_bytes(world, stats),
    }
    runs = ours_side(out, "p5", world, labs_doc, DISTRIBUTE_ONLY) if with_ours else None
    ours = runs[0] if runs else None
    if ours:
        out.ours = {
            "state": ours.state,
            "seconds": ours.seconds,
            "stats": stats_digest(ours.stats),
            "cross_region_bytes": cross_region_bytes(world, ours.stats),
        }
    one_copy_each = (regions - 1) * images * (worlds.MIB + 512)
    out.figures = [
        compared(
            "cross_region_bytes",
            "bytes copied across regions",
            lambda s: cross_region_bytes(world, s),
            None if ours is None else ours.stats,
            stats,
            goal=f"≤ {one_copy_each} (one copy per image and region)",
            unit="B",
        ),
        Figure(
            "delivered",
            "images delivered",
            None if ours is None else ours.images_succeeded,
            len(result.created),
            f"= {labs * images}",
        ),
        Figure("refused", "pairs refused (other region)", None if ours is None else 0, result.refused_region, "0"),
    ]
    return [out]
