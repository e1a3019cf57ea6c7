"""The one JSON reader of the configuration: every labs.json, factory.json and golden image is read here.

A file is found by name in any casing (``Labs.json``, ``FACTORY.JSON``), refused by size before it is parsed,
decoded as UTF-8 (a BOM is accepted) or UTF-16 with a BOM (what Windows PowerShell's ``Out-File`` writes), and
parsed with keys repeated inside one object reported at their line (keys compare case-insensitively, as
PowerShell reads them).
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

from image_factory.configuration.findings import Collector
from image_factory.configuration.scanner import Locator, duplicate_keys, line_at
from image_factory.exceptions import ConfigurationError

#: labs.json / factory.json larger than this are refused before they are read.
MAX_SETTINGS_BYTES = 16 * 1024 * 1024

_UTF8_BOM = b"\xef\xbb\xbf"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


def find_entry(base: Path, *names: str) -> Path | None:
    """Return the entry of ``base`` named like one of ``names``: exact spelling first, then any casing."""
    try:
        entries = sorted(os.listdir(base))
    except OSError:
        return None
    for name in names:
        if name in entries:
            return base / name
    for name in names:
        for entry in entries:
            if entry.casefold() == name.casefold():
                return base / entry
    return None


def find_settings_file(config_dir: str | os.PathLike[str], names: tuple[str, ...], label: str, purpose: str) -> Path:
    """Return the file of a configuration folder named like one of ``names`` (any casing).

    When there is none the error says ``No <label> in <folder>; <purpose>``.
    """
    base = Path(config_dir)
    if not base.is_dir():
        raise ConfigurationError(f"Configuration folder {base} does not exist or is not a folder")
    found = find_entry(base, *names)
    if found is None:
        raise ConfigurationError(f"No {label} in {base}; {purpose}")
    return found


def file_or_found(path_or_dir: str | os.PathLike[str], finder: Callable[[Path], Path]) -> Path:
    """Return ``path_or_dir`` if it names a file, else the file ``finder`` finds in that folder."""
    path = Path(path_or_dir)
    return finder(path) if path.is_dir() else path


def read_json(col: Collector, limit: int) -> tuple[bool, Any]:
    """Read and parse the collector's file; return (True, document), or (False, None) with the findings added."""
    text = read_text(col, limit)
    if text is None:
        return False, None
    return parse_text(col, text)


def read_text(col: Collector, limit: int) -> str | None:
    """Read a file, refusing before parsing what is not a small regular UTF-8/UTF-16 file."""
    try:
        info = col.file.stat()
    except OSError as exc:
        col.add((), f"cannot be read: {exc.strerror}")
        return None
    if not stat.S_ISREG(info.st_mode):
        col.add((), "is not a regular file")
        return None
    if info.st_size > limit:
        col.add((), f"is {info.st_size:,} bytes; the limit is {limit:,} bytes (refused without parsing)")
        return None
    try:
        with col.file.open("rb") as fh:
            raw = fh.read(limit + 1)
    except OSError as exc:
        col.add((), f"cannot be read: {exc.strerror}")
        return None
    if len(raw) > limit:
        col.add((), f"is larger than the limit of {limit:,} bytes (refused without parsing)")
        return None
    return _decode(col, raw)


def _decode(col: Collector, raw: bytes) -> str | None:
    """Decode UTF-8 (a BOM is accepted) or UTF-16 with a BOM (what Windows PowerShell's Out-File writes)."""
    try:
        if raw.startswith(_UTF8_BOM):
            return raw[len(_UTF8_BOM) :].decode("utf-8")
        if raw.startswith(_UTF16_BOMS):
            return raw.decode("utf-16")
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        col.add((), f"is not UTF-8 text (invalid byte at offset {exc.start})", line=line)
        return None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed in JSON")


def parse_text(col: Collector, text: str) -> tuple[bool, Any]:
    """Parse JSON text, reporting syntax errors and keys repeated inside one object."""
    if not text.strip():
        col.add((), "is empty; expected a JSON object")
        return False, None
    duplicates: list[str] = []  # filled by the object_pairs_hook

    def pairs_hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: set[str] = set()
        for key, _ in pairs:
            folded = key.casefold()
            if folded in seen:
                duplicates.append(key)
            seen.add(folded)
        return dict(pairs)

    try:
        doc = json.loads(text, object_pairs_hook=pairs_hook, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        col.add((), f"is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})", line=exc.lineno)
        return False, None
    except RecursionError:
        col.add((), "is not valid JSON: nested too deeply")
        return False, None
    except ValueError as exc:
        col.add((), f"is not valid JSON: {exc}")
        return False, None
    col.locator = Locator(text)
    if duplicates:
        _report_duplicates(col, text, duplicates)
        return False, None
    return True, doc


def _report_duplicates(col: Collector, text: str, keys: list[str]) -> None:
    """Locate every repeated key (path and line) in the text."""
    found = False
    try:
        for path, key, offset in duplicate_keys(text):
            col.add(
                (*path, key),
                f"key {key!r} appears more than once in this object (keys are case-insensitive)",
                line=line_at(text, offset),
            )
            found = True
    except (RecursionError, ValueError):
        found = False
    if not found:
        col.add((), f"keys appear more than once in one object: {', '.join(sorted(set(keys)))}")
