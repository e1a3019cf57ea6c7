"""labs.json (or Labs.json): the target labs and the ImagePaths each subscribes to, as the PowerShell factory had it."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from image_factory import imagepaths
from image_factory.configuration.findings import Collector
from image_factory.configuration.reader import MAX_SETTINGS_BYTES, file_or_found, find_settings_file, read_json
from image_factory.configuration.scanner import JsonPath
from image_factory.configuration.schema import LABS_SCHEMA, canonical_keys, check_schema, schema_doc
from image_factory.exceptions import ConfigurationError
from image_factory.models import LabRef

LABS_FILE_NAMES = ("labs.json", "Labs.json")

_DRIVE = re.compile(r"^[A-Za-z]:")


def find_labs_file(config_dir: str | os.PathLike[str]) -> Path:
    """Return the labs file of a configuration folder: labs.json, else Labs.json, else any casing of it."""
    return find_settings_file(
        config_dir, LABS_FILE_NAMES, label="labs.json (or Labs.json)", purpose="it lists the labs to distribute to"
    )


def _image_path_syntax(col: Collector, path: JsonPath, value: str) -> bool:
    """Refuse ImagePaths that are absolute or climb out with ``..``."""
    stripped = value.strip()
    if stripped.startswith(("/", "\\")) or _DRIVE.match(stripped):
        col.add(path, f"{value!r} is absolute; an ImagePath is relative to GoldenImages (e.g. 'Win2016')")
        return False
    if ".." in imagepaths.segments(stripped):
        col.add(path, f"{value!r} contains '..'; an ImagePath must stay inside GoldenImages")
        return False
    if not imagepaths.segments(stripped):
        col.add(path, f"{value!r} names no folder or file under GoldenImages")
        return False
    return True


def _lab_entries(doc: Any) -> Iterator[tuple[int, LabRef]]:
    """Yield the well-formed entries of ``Labs`` (the others have schema errors of their own)."""
    entries = doc.get("Labs") if isinstance(doc, dict) else None
    if not isinstance(entries, list) or len(entries) > schema_doc(LABS_SCHEMA)["properties"]["Labs"]["maxItems"]:
        return
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            continue
        sub, name, paths, group = (entry.get(k) for k in ("SubscriptionId", "LabName", "ImagePaths", "ResourceGroup"))
        if isinstance(sub, str) and isinstance(name, str) and isinstance(paths, list):
            strings = tuple(p for p in paths if isinstance(p, str))
            yield index, LabRef(sub, name, strings, group if isinstance(group, str) else None)


def _labs_from_doc(col: Collector, doc: Any) -> list[tuple[int, LabRef]]:
    """Build LabRefs, reporting labs listed twice, labs without ImagePaths and bad ImagePath syntax."""
    labs: list[tuple[int, LabRef]] = []
    first_seen: dict[str, int] = {}
    for index, lab in _lab_entries(doc):
        if lab.key in first_seen:
            col.add(
                ("Labs", index),
                f"lab {lab.lab_name!r} in subscription {lab.subscription_id} is already listed at "
                f"Labs[{first_seen[lab.key]}] (labs are compared case-insensitively)",
            )
        else:
            first_seen[lab.key] = index
        if not lab.image_paths:
            col.add(
                ("Labs", index, "ImagePaths"),
                f"lab {lab.lab_name!r} has no ImagePaths; it receives no images",
                severity="warning",
            )
        for p_index, value in enumerate(lab.image_paths):
            _image_path_syntax(col, ("Labs", index, "ImagePaths", p_index), value)
        labs.append((index, lab))
    return labs


def check_labs(labs_file: Path) -> tuple[Collector, list[tuple[int, LabRef]]]:
    """Check labs.json on its own; return its findings and the (index, lab) of its well-formed entries."""
    col = Collector(labs_file)
    ok, doc = read_json(col, MAX_SETTINGS_BYTES)
    if not ok:
        return col, []
    doc = canonical_keys(doc, LABS_SCHEMA)
    if check_schema(col, doc, LABS_SCHEMA) and not doc["Labs"]:
        col.add(("Labs",), "lists no labs; nothing will be distributed", severity="warning")
    return col, _labs_from_doc(col, doc)


def load_labs(path_or_dir: str | os.PathLike[str]) -> tuple[LabRef, ...]:
    """Load labs.json (a file, or the configuration folder holding it); raise ConfigurationError if invalid.

    This checks the file on its own; matching ImagePaths against GoldenImages is done by
    :func:`~image_factory.configuration.validate_configuration` / ``load_configuration``.
    """
    path = file_or_found(path_or_dir, find_labs_file)
    col, labs = check_labs(path)
    if col.errors:
        raise ConfigurationError(f"{path} is invalid", [str(f) for f in col.errors])
    return tuple(lab for _, lab in labs)
