"""Versions repeat within a day as ``.N`` and sort by (day, ordinal), not as text."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from image_factory import versions


@pytest.mark.parametrize("text", ["2026-12-01", "2026-12-01.2", "2026-12-01.10", "2024-02-29"])
def test_versions(text: str) -> None:
    assert versions.is_version(text)


@pytest.mark.parametrize("text", ["2026-12-1", "2026-13-01", "2025-02-29", "2026-12-01.1", "2026-12-01.0", "x", ""])
def test_not_versions(text: str) -> None:
    assert not versions.is_version(text)


def test_versions_sort_by_day_then_ordinal_not_as_text() -> None:
    found = ["2026-12-01.10", "2026-12-01", "2026-11-30", "2026-12-01.9", "2026-12-01.2", "2026-12-01"]
    assert versions.newest_first(found) == ["2026-12-01.10", "2026-12-01.9", "2026-12-01.2", "2026-12-01", "2026-11-30"]


def test_a_days_next_version_follows_what_that_day_already_has() -> None:
    assert versions.next_version("2026-12-01", []) == "2026-12-01"
    assert versions.next_version("2026-12-01", ["2026-11-30", "2026-11-30.2"]) == "2026-12-01"
    assert versions.next_version("2026-12-01", ["2026-12-01"]) == "2026-12-01.2"
    assert versions.next_version("2026-12-01", ["2026-12-01", "2026-12-01.2", "legacy"]) == "2026-12-01.3"


def test_the_day_of_a_version_and_its_spelling_in_names() -> None:
    assert versions.day("2026-12-01.3") == "2026-12-01"
    assert versions.in_name("2026-12-01.3") == "2026-12-01-3"
    assert versions.in_name("2026-12-01") == "2026-12-01"


def test_the_day_of_a_run_is_the_utc_date() -> None:
    late = datetime(2026, 12, 1, 23, 30, tzinfo=timezone(timedelta(hours=-5)))
    assert versions.day_of_run(late, datetime(2026, 1, 1, tzinfo=UTC)) == "2026-12-02"
    assert versions.day_of_run(None, datetime(2026, 12, 1, 0, 5)) == "2026-12-01"


@pytest.mark.parametrize(
    ("logical", "run_after", "expected"),
    [
        (datetime(2024, 5, 1, 2, 0, tzinfo=UTC), datetime(2024, 5, 2, 2, 0, tzinfo=UTC), "2024-05-01"),
        (None, datetime(2024, 5, 2, 23, 59, tzinfo=UTC), "2024-05-02"),
        # 01:30 in UTC+2 is still the previous day in UTC.
        (
            datetime(2024, 5, 1, 1, 30, tzinfo=timezone(timedelta(hours=2))),
            datetime(2030, 1, 1, tzinfo=UTC),
            "2024-04-30",
        ),
        (None, datetime(2024, 12, 31, 22, 0, tzinfo=timezone(timedelta(hours=-5))), "2025-01-01"),
        # A naive datetime is taken as UTC.
        (datetime(2024, 2, 29, 23, 0), datetime(2024, 3, 5, tzinfo=UTC), "2024-02-29"),
    ],
)
def test_day_of_run(logical: datetime | None, run_after: datetime, expected: str) -> None:
    assert versions.day_of_run(logical, run_after) == expected
