"""Image versions: the UTC date of the capture, and ``.N`` for the N-th capture of one ImagePath on one day.

``2026-12-01`` is a day's first capture, ``2026-12-01.2`` its second (a VM fixed and rebuilt the same day; the
PowerShell factory named it with a letter, ``…A``). Versions compare by (day, ordinal), never as text: ``.10``
sorts after ``.9``. In names, where a dot is not allowed, ``2026-12-01.2`` reads ``2026-12-01-2``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime

_VERSION = re.compile(r"^(\d{4}-\d{2}-\d{2})(?:\.([2-9]|[1-9]\d+))?$")


def day_of_run(logical_date: datetime | None, run_after: datetime) -> str:
    """Return the day of a run: the UTC date of its logical date, or of ``run_after`` when it has none."""
    moment = logical_date if logical_date is not None else run_after
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).date().isoformat()


def _parts(text: str) -> tuple[str, int] | None:
    found = _VERSION.match(text)
    if not found:
        return None
    try:
        datetime.strptime(found.group(1), "%Y-%m-%d")
    except ValueError:
        return None
    return found.group(1), int(found.group(2) or 1)


def is_version(text: str) -> bool:
    """Tell whether ``text`` is a version: a real ISO date, optionally ``.N`` with N ≥ 2."""
    return _parts(text) is not None


def sort_key(version: str) -> tuple[str, int]:
    """Return what versions sort by: (day, ordinal). Text that is no version sorts by itself, as ordinal 0."""
    return _parts(version) or (version, 0)


def newest_first(versions: Iterable[str]) -> list[str]:
    """Return the distinct versions, newest first."""
    return sorted(set(versions), key=sort_key, reverse=True)


def day(version: str) -> str:
    """Return the day of ``version`` (``2026-12-01.2`` → ``2026-12-01``)."""
    return sort_key(version)[0]


def next_version(day_: str, taken: Iterable[str]) -> str:
    """Return the version a new capture on ``day_`` gets, after the versions of that day already ``taken``."""
    ordinals = [ordinal for d, ordinal in map(sort_key, taken) if d == day_ and ordinal > 0]
    if not ordinals:
        return day_
    return f"{day_}.{max(ordinals) + 1}"


def in_name(version: str) -> str:
    """Return ``version`` as it appears in image and blob names (no dot)."""
    return version.replace(".", "-")
