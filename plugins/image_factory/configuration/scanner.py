"""Line-aware scanning of valid JSON text: keys repeated in one object, and the line of a JSON path.

``json`` tells neither: its ``object_pairs_hook`` sees a repeated key but not where it is, and a parsed document
has no lines. These walkers step through the text by offset, letting the C decoder skip each value.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

JsonPath = tuple[str | int, ...]

_WHITESPACE = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()


def _skip_ws(text: str, pos: int) -> int:
    match = _WHITESPACE.match(text, pos)
    return match.end() if match else pos


def _end_of_value(text: str, pos: int) -> int:
    """Return the offset just after the JSON value starting at ``pos`` (skipped by the C scanner)."""
    return int(_DECODER.raw_decode(text, pos)[1])


def line_at(text: str, offset: int) -> int:
    """Return the 1-based line of ``offset`` in ``text``."""
    return text.count("\n", 0, offset) + 1


def _members(text: str, start: int) -> Iterator[tuple[str | int, int, int]]:
    """Yield (key or index, offset of the key, offset of the value) of the container starting at ``start``."""
    closer = {"{": "}", "[": "]"}.get(text[start])
    if closer is None:
        return
    pos = _skip_ws(text, start + 1)
    index = 0
    while text[pos] != closer:
        key_pos = pos
        key: str | int = index
        if closer == "}":
            key, pos = _DECODER.raw_decode(text, pos)
            pos = _skip_ws(text, _skip_ws(text, pos) + 1)
        yield key, key_pos, pos
        pos = _skip_ws(text, _end_of_value(text, pos))
        if text[pos] == ",":
            pos = _skip_ws(text, pos + 1)
        index += 1


def duplicate_keys(text: str) -> Iterator[tuple[JsonPath, str, int]]:
    """Yield (object path, key, offset of the key) for each repeated key (case-insensitive), walking valid JSON."""

    def walk(pos: int, path: JsonPath) -> Iterator[tuple[JsonPath, str, int]]:
        seen: set[str] = set()
        for key, key_pos, value_pos in _members(text, pos):
            if isinstance(key, str):
                if key.casefold() in seen:
                    yield path, key, key_pos
                seen.add(key.casefold())
            yield from walk(value_pos, (*path, key))

    yield from walk(_skip_ws(text, 0), ())


class Locator:
    """Find the line of a JSON path in valid JSON text; members of each container are indexed once."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._members: dict[int, dict[str | int, int]] = {}

    def line_of(self, path: JsonPath) -> int | None:
        """Return the line of the value at ``path`` (keys matched case-insensitively), or None if absent."""
        try:
            pos: int | None = _skip_ws(self.text, 0)
            for step in path:
                assert pos is not None
                key = step.casefold() if isinstance(step, str) else step
                pos = self._index(pos).get(key)
                if pos is None:
                    return None
        except (ValueError, IndexError):
            return None
        assert pos is not None
        return line_at(self.text, pos)

    def _index(self, start: int) -> dict[str | int, int]:
        """Index the members (casefolded keys) or elements of the container starting at ``start``."""
        cached = self._members.get(start)
        if cached is None:
            cached = {}
            for key, _, value_pos in _members(self.text, start):
                cached.setdefault(key.casefold() if isinstance(key, str) else key, value_pos)
            self._members[start] = cached
        return cached
