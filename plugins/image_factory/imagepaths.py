"""ImagePath selectors: whole-segment, case-insensitive matching of paths under GoldenImages/.

The original factory matched with a raw string prefix, so ``Win2016`` also selected ``Win2016Core/…``.
Here a selector selects a golden image when its segments are a prefix of the image's segments (a folder),
or when it is the image's whole path (a file).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_SEPARATORS = re.compile(r"[\\/]+")


def segments(path: str) -> tuple[str, ...]:
    """Split an ImagePath on ``/`` or ``\\`` into its non-empty segments, as given (case kept)."""
    return tuple(s for s in _SEPARATORS.split(path.strip()) if s and s != ".")


def normalize(path: str) -> str:
    """The canonical spelling of an ImagePath: ``/``-separated, no leading/trailing separators."""
    return "/".join(segments(path))


def key(path: str) -> str:
    """A case-insensitive identity for an ImagePath."""
    return normalize(path).casefold()


def selects(selector: str, image_path: str) -> bool:
    """Whether ``selector`` (a folder or a file ImagePath) selects the golden image ``image_path``."""
    sel = tuple(s.casefold() for s in segments(selector))
    img = tuple(s.casefold() for s in segments(image_path))
    if not sel or len(sel) > len(img):
        return False
    return img[: len(sel)] == sel


def selected(selectors: Iterable[str], image_paths: Iterable[str]) -> list[str]:
    """The image paths (in their given order) selected by any of ``selectors``."""
    sels = list(selectors)
    return [p for p in image_paths if any(selects(s, p) for s in sels)]
