"""Region fan-out: a VHD needed by several labs of a region other than the factory's crosses regions once.

One lab per (version, image, region) is the seed: it copies from the factory and keeps its upload; the region's
other labs copy from that upload in a second wave. Pure: no Azure calls.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from image_factory.models import Pair


def region_key(location: str | None) -> str:
    """Return a comparable spelling of an Azure region (``West Europe`` == ``westeurope``)."""
    return "".join((location or "").split()).casefold()


@dataclass(frozen=True)
class FanoutGroup:
    """Cross-region pairs of one (version, image, region): copy across regions once, for ``seed``."""

    seed: Pair
    rest: tuple[Pair, ...]


def region_fanout(pairs: Iterable[Pair]) -> dict[tuple[str, str, str], FanoutGroup]:
    """Group cross-region pairs by (version, image name, region) so each VHD crosses a region boundary once.

    Keys are ``(version, image_name, region_key(location))``; the seed is the first pair of the group by
    (lab name, subscription). How the distributor uses it: run the seed pair first, copying the VHD from the
    factory across regions into the seed lab; the pairs in ``rest`` then copy from that same-region upload
    blob (``uploads/<image_name>.vhd`` of the seed lab) instead of the factory, and the seed lab's upload blob
    is deleted only once every pair of the group finished (or failed). If the seed fails, the first of
    ``rest`` becomes the seed and copies from the factory. Pairs in the factory's region are not grouped.
    """
    groups: dict[tuple[str, str, str], list[Pair]] = {}
    for pair in pairs:
        if pair.cross_region:
            key = (pair.version, pair.image_name.casefold(), region_key(pair.location))
            groups.setdefault(key, []).append(pair)
    result: dict[tuple[str, str, str], FanoutGroup] = {}
    for key in sorted(groups):
        members = sorted(groups[key], key=lambda p: (p.lab_name.casefold(), p.subscription_id))
        result[key] = FanoutGroup(seed=members[0], rest=tuple(members[1:]))
    return result


def _pair_key(pair: Pair) -> tuple[str, str, str]:
    return (pair.subscription_id.lower(), pair.lab_name.casefold(), pair.image_name.casefold())


def fanout_waves(pairs: Iterable[Pair]) -> tuple[list[Pair], list[Pair]]:
    """Split pairs into (direct, regional) waves so that each VHD crosses a region boundary once per region.

    ``direct`` pairs copy from the factory: every pair in the factory's region, every cross-region pair alone in
    its (version, image, region) group, and each group's seed, which keeps its upload (``keep_upload``).
    ``regional`` pairs run after the direct wave and copy from their seed lab's upload (``source_*``), in the
    same region. Order within each wave is kept.
    """
    ordered = list(pairs)
    groups = region_fanout(ordered)
    seeds: dict[tuple[str, str, str], Pair] = {}
    followers: dict[tuple[str, str, str], Pair] = {}
    for group in groups.values():
        if not group.rest:
            continue
        seed = group.seed
        seeds[_pair_key(seed)] = replace(seed, keep_upload=True)
        for pair in group.rest:
            followers[_pair_key(pair)] = replace(
                pair,
                source_lab=seed.lab_name,
                source_subscription_id=seed.subscription_id,
                source_resource_group=seed.resource_group,
            )
    direct: list[Pair] = []
    regional: list[Pair] = []
    for pair in ordered:
        key = _pair_key(pair)
        if key in followers:
            regional.append(followers[key])
        else:
            direct.append(seeds.get(key, pair))
    return direct, regional
