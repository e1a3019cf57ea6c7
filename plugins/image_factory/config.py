"""Load and validate Configuration/: labs.json, factory.json and the GoldenImages templates.

One implementation serves the ``image_factory.validate`` CLI and the DAG. Every check is local and cheap (no
network): files are refused by size before they are parsed, JSON is parsed with duplicate-key detection, the
two settings files are checked against the JSON Schemas shipped in ``Configuration/`` and then semantically
(duplicate labs, ImagePaths that match no golden image or leave GoldenImages, cron schedule, ARM templates).
"""

from __future__ import annotations

import difflib
import json
import logging
import os
import re
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from croniter import croniter
from jsonschema import Draft202012Validator, ValidationError
from jsonschema.validators import extend

from image_factory import imagepaths
from image_factory.exceptions import ConfigurationError
from image_factory.models import FactorySettings, LabRef

log = logging.getLogger(__name__)

LABS_FILE_NAMES = ("labs.json", "Labs.json")
FACTORY_FILE_NAME = "factory.json"
GOLDEN_IMAGES_DIR = "GoldenImages"
LABS_SCHEMA = "labs.schema.json"
FACTORY_SCHEMA = "factory.schema.json"
#: The schemas are the product's, shipped next to the sample configuration in the repository.
SCHEMA_DIR = Path(__file__).resolve().parents[2] / "Configuration"

#: labs.json / factory.json larger than this are refused before they are read.
MAX_SETTINGS_BYTES = 16 * 1024 * 1024
#: Azure Resource Manager refuses templates larger than 4 MB; so do we.
MAX_TEMPLATE_BYTES = 4 * 1024 * 1024
#: Schema errors reported per file at most (a broken generated file must not flood the report).
MAX_SCHEMA_ERRORS = 50
DTL_VM_TYPE = "microsoft.devtestlab/labs/virtualmachines"
ARM_TEMPLATE_SCHEMA_MARK = "deploymenttemplate.json"
_SECURE_TYPES = ("securestring", "secureobject")

_UTF8_BOM = b"\xef\xbb\xbf"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_WHITESPACE = re.compile(r"[ \t\n\r]*")
_DRIVE = re.compile(r"^[A-Za-z]:")
_DECODER = json.JSONDecoder()

JsonPath = tuple[str | int, ...]
Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Finding:
    """One problem found in the configuration: where it is and what to fix."""

    file: str
    location: str
    message: str
    line: int | None = None
    severity: Severity = "error"

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: {self.location or '(whole file)'}: {self.message}"


@dataclass(frozen=True)
class Report:
    """The outcome of validating a configuration folder."""

    config_dir: Path
    errors: tuple[Finding, ...] = ()
    warnings: tuple[Finding, ...] = ()

    @property
    def ok(self) -> bool:
        """Return whether the configuration has no errors (warnings allowed)."""
        return not self.errors


@dataclass(frozen=True)
class Configuration:
    """A validated configuration folder."""

    config_dir: Path
    labs_file: Path
    labs: tuple[LabRef, ...]
    factory: FactorySettings
    golden_images: tuple[str, ...]
    warnings: tuple[Finding, ...] = ()


@dataclass
class _Collector:
    """Findings of one file, and the locator that finds their lines in its text."""

    file: Path
    locator: _Locator | None = None
    errors: list[Finding] = field(default_factory=list)
    warnings: list[Finding] = field(default_factory=list)

    def add(self, path: JsonPath, message: str, severity: Severity = "error", line: int | None = None) -> None:
        """Record a finding at ``path`` (a JSON path), looking up its line in the file's text."""
        if line is None and self.locator is not None:
            line = self.locator.line_of(path)
        finding = Finding(str(self.file), format_location(path), message, line, severity)
        (self.errors if severity == "error" else self.warnings).append(finding)


# ---------------------------------------------------------------------------------------------------------
# JSON reading


def format_location(path: Sequence[str | int]) -> str:
    """Render a JSON path as ``Labs[2].ImagePaths[0]``."""
    out = ""
    for step in path:
        if isinstance(step, int):
            out += f"[{step}]"
        else:
            out += f".{step}" if out else step
    return out


def _read_text(col: _Collector, limit: int) -> str | None:
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


def _decode(col: _Collector, raw: bytes) -> str | None:
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


def _parse(col: _Collector, text: str) -> tuple[bool, Any]:
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
    col.locator = _Locator(text)
    if duplicates:
        _report_duplicates(col, text, duplicates)
        return False, None
    return True, doc


def _report_duplicates(col: _Collector, text: str, keys: list[str]) -> None:
    """Locate every repeated key (path and line) in the text."""
    found = False
    try:
        for path, key, offset in _duplicate_keys(text):
            col.add(
                (*path, key),
                f"key {key!r} appears more than once in this object (keys are case-insensitive)",
                line=text.count("\n", 0, offset) + 1,
            )
            found = True
    except (RecursionError, ValueError):
        found = False
    if not found:
        col.add((), f"keys appear more than once in one object: {', '.join(sorted(set(keys)))}")


def _skip_ws(text: str, pos: int) -> int:
    match = _WHITESPACE.match(text, pos)
    return match.end() if match else pos


def _duplicate_keys(text: str) -> Iterator[tuple[JsonPath, str, int]]:
    """Yield (object path, key, offset of the key) for each repeated key, walking valid JSON text."""

    def walk(pos: int, path: JsonPath) -> Iterator[tuple[JsonPath, str, int]]:
        ch = text[pos]
        if ch == "{":
            seen: set[str] = set()
            pos = _skip_ws(text, pos + 1)
            while text[pos] != "}":
                key_pos = pos
                key, pos = _DECODER.raw_decode(text, pos)
                if key.casefold() in seen:
                    yield path, key, key_pos
                seen.add(key.casefold())
                pos = _skip_ws(text, _skip_ws(text, pos) + 1)
                yield from walk(pos, (*path, key))
                pos = _skip_ws(text, _end_of_value(text, pos))
                if text[pos] == ",":
                    pos = _skip_ws(text, pos + 1)
        elif ch == "[":
            index = 0
            pos = _skip_ws(text, pos + 1)
            while text[pos] != "]":
                yield from walk(pos, (*path, index))
                pos = _skip_ws(text, _end_of_value(text, pos))
                if text[pos] == ",":
                    pos = _skip_ws(text, pos + 1)
                index += 1

    yield from walk(_skip_ws(text, 0), ())


def _end_of_value(text: str, pos: int) -> int:
    """Return the offset just after the JSON value starting at ``pos`` (skipped by the C scanner)."""
    return int(_DECODER.raw_decode(text, pos)[1])


class _Locator:
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
        return self.text.count("\n", 0, pos) + 1

    def _index(self, start: int) -> dict[str | int, int]:
        """Index the members (casefolded keys) or elements of the container starting at ``start``."""
        cached = self._members.get(start)
        if cached is not None:
            return cached
        text, pos = self.text, start
        members: dict[str | int, int] = {}
        closer = {"{": "}", "[": "]"}.get(text[pos])
        if closer is not None:
            pos = _skip_ws(text, pos + 1)
            index = 0
            while text[pos] != closer:
                key: str | int = index
                if closer == "}":
                    name, pos = _DECODER.raw_decode(text, pos)
                    key = str(name).casefold()
                    pos = _skip_ws(text, _skip_ws(text, pos) + 1)
                members.setdefault(key, pos)
                pos = _skip_ws(text, _end_of_value(text, pos))
                if text[pos] == ",":
                    pos = _skip_ws(text, pos + 1)
                index += 1
        self._members[start] = members
        return members


def _load_json(col: _Collector, limit: int) -> tuple[bool, Any]:
    text = _read_text(col, limit)
    if text is None:
        return False, None
    return _parse(col, text)


# ---------------------------------------------------------------------------------------------------------
# JSON Schema


def _strict_pattern(validator: Any, pattern: str, instance: Any, schema: dict[str, Any]) -> Iterator[Any]:
    """Check ``pattern`` with ``$`` meaning the end of the string (Python's also matches before a newline)."""
    if not isinstance(instance, str):
        return
    strict = pattern[:-1] + r"\Z" if pattern.endswith("$") and not pattern.endswith(r"\$") else pattern
    if not re.search(strict, instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


_Validator = extend(Draft202012Validator, {"pattern": _strict_pattern})


@lru_cache(maxsize=8)
def _schema_validator(name: str) -> Any:
    """Return the (cached) validator for one of the product's schemas."""
    path = SCHEMA_DIR / name
    if not path.is_file():
        raise ConfigurationError(f"JSON Schema {path} is missing; it ships in the repository's Configuration/")
    schema = json.loads(path.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return _Validator(schema)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, dict | list) else _json_type(value)
    return text if len(text) <= 80 else text[:77] + "..."


_Described = list[tuple[JsonPath, str]]
_ARTICLES = {
    "array": "an array",
    "object": "an object",
    "integer": "an integer",
    "string": "a string",
    "number": "a number",
    "boolean": "a boolean",
}


def _on_required(path: JsonPath, error: ValidationError) -> _Described:
    instance = error.instance if isinstance(error.instance, dict) else {}
    return [(path, f"missing required field {k!r}") for k in error.validator_value if k not in instance]


def _on_additional(path: JsonPath, error: ValidationError) -> _Described:
    instance = error.instance if isinstance(error.instance, dict) else {}
    known = list(error.schema.get("properties", {}))
    where = "top-level key" if not path else "key"
    out: _Described = []
    for key in instance:
        if key not in known:
            hint = difflib.get_close_matches(key, known, n=1)
            suffix = f"; did you mean {hint[0]!r}?" if hint else f"; allowed: {', '.join(known)}"
            out.append(((*path, key), f"unknown {where} {key!r}{suffix}"))
    return out


def _on_type(path: JsonPath, error: ValidationError) -> _Described:
    expected = error.validator_value
    names = [_ARTICLES.get(str(n), str(n)) for n in (expected if isinstance(expected, list) else [expected])]
    got = f"{_json_type(error.instance)} ({_short(error.instance)})"
    return [(path, f"must be {' or '.join(names)}, not {got}")]


def _on_range(path: JsonPath, error: ValidationError) -> _Described:
    low, high = error.schema.get("minimum", "-"), error.schema.get("maximum", "-")
    return [(path, f"{_short(error.instance)} is out of range: allowed {low}..{high}")]


def _on_max_items(path: JsonPath, error: ValidationError) -> _Described:
    return [(path, f"has {len(error.instance):,} items; at most {error.validator_value:,} are allowed")]


def _on_string(path: JsonPath, error: ValidationError) -> _Described:
    title = error.schema.get("title", "value")
    expected = error.schema.get("description")
    detail = f" (expected {expected})" if expected else ""
    return [(path, f"{_short(error.instance)} is not a valid {title}{detail}")]


_DESCRIBERS = {
    "required": _on_required,
    "additionalProperties": _on_additional,
    "type": _on_type,
    "minimum": _on_range,
    "maximum": _on_range,
    "maxItems": _on_max_items,
    "pattern": _on_string,
    "minLength": _on_string,
    "maxLength": _on_string,
}


def _describe(error: ValidationError) -> _Described:
    """Turn a schema error into (path, message) findings a person can act on."""
    if error.validator in ("anyOf", "oneOf") and error.context:
        specific = [e for e in error.context if e.validator != "type"] or list(error.context)
        return _describe(specific[0])
    path: JsonPath = tuple(error.absolute_path)
    describer = _DESCRIBERS.get(str(error.validator))
    return describer(path, error) if describer else [(path, error.message)]


def _check_schema(col: _Collector, doc: Any, schema_name: str) -> bool:
    """Validate ``doc`` against a schema; stop early on oversized arrays and after MAX_SCHEMA_ERRORS."""
    validator = _schema_validator(schema_name)
    count = 0
    for error in validator.iter_errors(doc):
        for path, message in _describe(error):
            col.add(path, message)
        count += 1
        if error.validator == "maxItems":
            break  # refuse oversized input outright instead of validating every item
        if count >= MAX_SCHEMA_ERRORS:
            col.add((), f"more than {MAX_SCHEMA_ERRORS} schema errors; stopped checking")
            break
    return count == 0


def _canonical_keys(doc: Any, schema: dict[str, Any], root: dict[str, Any]) -> Any:
    """Rename keys to the schema's spelling when they differ only in case (PowerShell reads them that way)."""
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        schema = root["$defs"][ref.removeprefix("#/$defs/")]
    if isinstance(doc, dict):
        props: dict[str, Any] = schema.get("properties", {})
        by_fold = {name.casefold(): name for name in props}
        out: dict[str, Any] = {}
        for key, value in doc.items():
            canonical = str(by_fold.get(str(key).casefold(), key))
            out[canonical] = _canonical_keys(value, props.get(canonical, {}), root)
        return out
    if isinstance(doc, list) and len(doc) <= schema.get("maxItems", len(doc)):
        items = schema.get("items", {})
        return [_canonical_keys(v, items, root) for v in doc]
    return doc


def _schema_doc(name: str) -> dict[str, Any]:
    schema: dict[str, Any] = _schema_validator(name).schema
    return schema


# ---------------------------------------------------------------------------------------------------------
# Golden images


def golden_images_dir(config_dir: str | os.PathLike[str]) -> Path:
    """Return the GoldenImages folder of a configuration folder (found case-insensitively)."""
    base = Path(config_dir)
    return _find_entry(base, GOLDEN_IMAGES_DIR) or base / GOLDEN_IMAGES_DIR


def _find_entry(base: Path, *names: str) -> Path | None:
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


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def _walk_golden(root: Path) -> Iterator[tuple[str, Path, bool]]:
    """Yield (ImagePath, file, inside) for every ``*.json`` below ``root``, following links (no cycles)."""
    real_root = root.resolve()

    def walk(folder: Path, rel: tuple[str, ...], ancestors: frozenset[Path]) -> Iterator[tuple[str, Path, bool]]:
        real = folder.resolve()
        if real in ancestors:
            return  # a link back to a folder being walked
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            return
        for entry in entries:
            path = Path(entry.path)
            inside = _inside(path.resolve(), real_root)
            if entry.is_dir():
                if inside:
                    yield from walk(path, (*rel, entry.name), ancestors | {real})
                else:
                    yield "/".join((*rel, entry.name)), path, False
            elif entry.name.casefold().endswith(".json"):
                yield "/".join((*rel, entry.name)), path, inside

    if root.is_dir():
        yield from walk(root, (), frozenset())


def golden_images(config_dir: str | os.PathLike[str]) -> list[str]:
    """Return the normalized ImagePaths of all golden image files, sorted (links leading outside left out)."""
    root = golden_images_dir(config_dir)
    found = {rel for rel, path, inside in _walk_golden(root) if inside and path.is_file()}
    return sorted(found, key=lambda p: (p.casefold(), p))


def _check_template(col: _Collector) -> None:
    """Check that a golden image file is an ARM template deploying one DevTest Labs VM."""
    ok, doc = _load_json(col, MAX_TEMPLATE_BYTES)
    if not ok:
        return
    if not isinstance(doc, dict):
        col.add((), f"must be a JSON object (an ARM template), not {_json_type(doc)}")
        return
    schema = doc.get("$schema")
    if not isinstance(schema, str) or ARM_TEMPLATE_SCHEMA_MARK not in schema.casefold():
        col.add(
            ("$schema",) if "$schema" in doc else (),
            "is not an ARM template: '$schema' must name a deploymentTemplate.json schema",
        )
    resources = doc.get("resources")
    if not isinstance(resources, list):
        col.add(("resources",) if "resources" in doc else (), "is not an ARM template: 'resources' array missing")
        return
    vms = [
        i for i, r in enumerate(resources) if isinstance(r, dict) and str(r.get("type", "")).casefold() == DTL_VM_TYPE
    ]
    if not vms:
        col.add(
            ("resources",),
            "has no 'Microsoft.DevTestLab/labs/virtualmachines' resource (the golden image VM)",
        )
    elif len(vms) > 1:
        col.add(("resources", vms[1]), "deploys more than one DevTest Labs VM; a golden image is exactly one VM")
    for index in vms:
        props = resources[index].get("properties")
        if not isinstance(props, dict) or not (
            isinstance(props.get("galleryImageReference"), dict) or props.get("customImageId")
        ):
            col.add(("resources", index), "the VM has neither properties.galleryImageReference nor customImageId")
    params = doc.get("parameters")
    if isinstance(params, dict):
        for name, spec in params.items():
            secure = isinstance(spec, dict) and str(spec.get("type", "")).casefold() in _SECURE_TYPES
            if secure and spec.get("defaultValue") not in (None, ""):
                col.add(
                    ("parameters", name, "defaultValue"),
                    "a secure parameter must not have a default value (no secrets in the repository)",
                )


# ---------------------------------------------------------------------------------------------------------
# labs.json


def find_labs_file(config_dir: str | os.PathLike[str]) -> Path:
    """Return the labs file of a configuration folder: labs.json, else Labs.json, else any casing of it."""
    base = Path(config_dir)
    if not base.is_dir():
        raise ConfigurationError(f"Configuration folder {base} does not exist or is not a folder")
    found = _find_entry(base, *LABS_FILE_NAMES)
    if found is None:
        raise ConfigurationError(f"No labs.json (or Labs.json) in {base}; it lists the labs to distribute to")
    return found


def _image_path_syntax(col: _Collector, path: JsonPath, value: str) -> bool:
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
    if not isinstance(entries, list) or len(entries) > _schema_doc(LABS_SCHEMA)["properties"]["Labs"]["maxItems"]:
        return
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            continue
        sub, name, paths, group = (entry.get(k) for k in ("SubscriptionId", "LabName", "ImagePaths", "ResourceGroup"))
        if isinstance(sub, str) and isinstance(name, str) and isinstance(paths, list):
            strings = tuple(p for p in paths if isinstance(p, str))
            yield index, LabRef(sub, name, strings, group if isinstance(group, str) else None)


def _labs_from_doc(col: _Collector, doc: Any) -> list[tuple[int, LabRef]]:
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


def _check_labs(labs_file: Path) -> tuple[_Collector, list[tuple[int, LabRef]]]:
    col = _Collector(labs_file)
    ok, doc = _load_json(col, MAX_SETTINGS_BYTES)
    if not ok:
        return col, []
    doc = _canonical_keys(doc, _schema_doc(LABS_SCHEMA), _schema_doc(LABS_SCHEMA))
    if _check_schema(col, doc, LABS_SCHEMA) and not doc["Labs"]:
        col.add(("Labs",), "lists no labs; nothing will be distributed", severity="warning")
    return col, _labs_from_doc(col, doc)


def _resolve_path(config_dir: str | os.PathLike[str], finder: Any) -> Path:
    path = Path(config_dir)
    return finder(path) if path.is_dir() else path


def load_labs(path_or_dir: str | os.PathLike[str]) -> tuple[LabRef, ...]:
    """Load labs.json (a file, or the configuration folder holding it); raise ConfigurationError if invalid.

    This checks the file on its own; matching ImagePaths against GoldenImages is done by
    :func:`validate_configuration` / :func:`load_configuration`.
    """
    path = _resolve_path(path_or_dir, find_labs_file)
    col, labs = _check_labs(path)
    if col.errors:
        raise ConfigurationError(f"{path} is invalid", [str(f) for f in col.errors])
    return tuple(lab for _, lab in labs)


# ---------------------------------------------------------------------------------------------------------
# factory.json

#: factory.json paths → FactorySettings fields.
_FACTORY_FIELDS: dict[JsonPath, str] = {
    ("Factory", "SubscriptionId"): "subscription_id",
    ("Factory", "ResourceGroup"): "resource_group",
    ("Factory", "LabName"): "lab_name",
    ("MaxConcurrentJobs",): "max_concurrent_jobs",
    ("ImagesToSave",): "images_to_save",
    ("Schedule",): "schedule",
    ("Pool",): "pool",
    ("Container",): "container",
    ("Connections", "Arm"): "arm_conn_id",
    ("Connections", "FactoryStorage"): "storage_conn_id",
    ("Timeouts", "CopyMinutes"): "copy_timeout_minutes",
    ("Timeouts", "ImageMinutes"): "image_timeout_minutes",
    ("ReadSasHours",): "read_sas_hours",
    ("DiskAccessSeconds",): "disk_access_seconds",
}


def find_factory_file(config_dir: str | os.PathLike[str]) -> Path:
    """Return the factory.json of a configuration folder (any casing)."""
    base = Path(config_dir)
    if not base.is_dir():
        raise ConfigurationError(f"Configuration folder {base} does not exist or is not a folder")
    found = _find_entry(base, FACTORY_FILE_NAME)
    if found is None:
        raise ConfigurationError(f"No factory.json in {base}; it names the factory lab and the run settings")
    return found


def _valid_cron(expr: str) -> bool:
    expr = expr.strip()
    if not expr.startswith("@") and len(expr.split()) != 5:
        return False
    return bool(croniter.is_valid(expr))


def _check_factory(factory_file: Path) -> tuple[_Collector, FactorySettings | None]:
    col = _Collector(factory_file)
    ok, doc = _load_json(col, MAX_SETTINGS_BYTES)
    if not ok:
        return col, None
    doc = _canonical_keys(doc, _schema_doc(FACTORY_SCHEMA), _schema_doc(FACTORY_SCHEMA))
    schema_ok = _check_schema(col, doc, FACTORY_SCHEMA)
    schedule = doc.get("Schedule") if isinstance(doc, dict) else None
    if isinstance(schedule, str) and not _valid_cron(schedule):
        col.add(("Schedule",), f"{schedule!r} is not a valid five-field cron expression (e.g. '0 2 * * *')")
    if not schema_ok or col.errors:
        return col, None
    values: dict[str, Any] = {}
    for path, name in _FACTORY_FIELDS.items():
        node: Any = doc
        for step in path:
            node = node.get(step) if isinstance(node, dict) else None
        if node is not None:
            values[name] = int(node) if isinstance(node, float) else node
    return col, FactorySettings(**values)


def load_factory_settings(path_or_dir: str | os.PathLike[str]) -> FactorySettings:
    """Load factory.json (a file, or the folder holding it); raise ConfigurationError if invalid."""
    path = _resolve_path(path_or_dir, find_factory_file)
    col, settings = _check_factory(path)
    if col.errors or settings is None:
        raise ConfigurationError(f"{path} is invalid", [str(f) for f in col.errors])
    return settings


# ---------------------------------------------------------------------------------------------------------
# The whole folder


def _escapes_by_link(root: Path, selector: str) -> bool:
    """Return whether ``selector`` names (any casing) an entry under ``root`` whose real path is outside it."""
    real_root = root.resolve()
    current = root
    for segment in imagepaths.segments(selector):
        entry = _find_entry(current, segment)
        if entry is None:
            return False
        if not _inside(entry.resolve(), real_root):
            return True
        current = entry
    return False


def _match_image_paths(col: _Collector, root: Path, labs: list[tuple[int, LabRef]], images: list[str]) -> set[str]:
    """Report ImagePaths that select no golden image; return the golden images some lab uses."""
    used: set[str] = set()
    refused = {f.location for f in col.errors}
    for index, lab in labs:
        for p_index, selector in enumerate(lab.image_paths):
            location: JsonPath = ("Labs", index, "ImagePaths", p_index)
            if format_location(location) in refused:
                continue  # already refused (absolute, '..')
            chosen = imagepaths.selected([selector], images)
            if chosen:
                used.update(chosen)
                continue
            if _escapes_by_link(root, selector):
                col.add(location, f"{selector!r} leads outside GoldenImages (through a symbolic link)")
                continue
            hint = ""
            if imagepaths.selected([selector + ".json"], images):
                hint = f"; did you mean {imagepaths.normalize(selector) + '.json'!r}?"
            col.add(
                location,
                f"{selector!r} matches no golden image file under GoldenImages "
                f"(folders and files match whole path segments){hint}",
            )
    return used


def _check_golden(config_dir: Path) -> tuple[list[Finding], list[str], Path]:
    """Check every file under GoldenImages; return (errors, valid ImagePaths, GoldenImages folder)."""
    root = golden_images_dir(config_dir)
    errors: list[Finding] = []
    if not root.is_dir():
        errors.append(Finding(str(root), "", "folder is missing; it holds the golden image ARM templates"))
        return errors, [], root
    images: list[str] = []
    for rel, path, inside in _walk_golden(root):
        col = _Collector(path)
        if not inside:
            col.add((), f"resolves outside GoldenImages ({rel} is a symbolic link); it is ignored")
        else:
            _check_template(col)
            if path.is_file():
                images.append(rel)
        errors.extend(col.errors)
    return errors, sorted(images, key=lambda p: (p.casefold(), p)), root


def _validate(
    config_dir: Path,
) -> tuple[Report, tuple[LabRef, ...], FactorySettings | None, Path | None, list[str]]:
    errors: list[Finding] = []
    warnings: list[Finding] = []
    if not config_dir.is_dir():
        missing = Finding(str(config_dir), "", "is not a folder; pass the Configuration folder")
        return Report(config_dir, (missing,), ()), (), None, None, []

    golden_errors, images, root = _check_golden(config_dir)
    errors.extend(golden_errors)

    labs: list[tuple[int, LabRef]] = []
    labs_file: Path | None = None
    try:
        labs_file = find_labs_file(config_dir)
    except ConfigurationError as exc:
        errors.append(Finding(str(config_dir / LABS_FILE_NAMES[0]), "", str(exc)))
    if labs_file is not None:
        col, labs = _check_labs(labs_file)
        if labs:
            used = _match_image_paths(col, root, labs, images)
            for image in images:
                if image not in used:
                    warnings.append(
                        Finding(
                            str(root / image),
                            "",
                            f"golden image {image!r} is used by no lab (no ImagePath selects it)",
                            None,
                            "warning",
                        )
                    )
        errors.extend(col.errors)
        warnings.extend(col.warnings)

    settings: FactorySettings | None = None
    try:
        col_f, settings = _check_factory(find_factory_file(config_dir))
        errors.extend(col_f.errors)
        warnings.extend(col_f.warnings)
    except ConfigurationError as exc:
        errors.append(Finding(str(config_dir / FACTORY_FILE_NAME), "", str(exc)))

    report = Report(config_dir, tuple(_sorted(errors)), tuple(_sorted(warnings)))
    return report, tuple(lab for _, lab in labs), settings, labs_file, images


def _sorted(findings: list[Finding]) -> list[Finding]:
    return sorted(findings, key=lambda f: (f.file, f.line or 0, f.location))


def validate_configuration(config_dir: str | os.PathLike[str]) -> Report:
    """Check a whole configuration folder; never raise for a bad configuration (see ``Report.errors``)."""
    report = _validate(Path(config_dir))[0]
    log.debug("Validated %s: %d errors, %d warnings", config_dir, len(report.errors), len(report.warnings))
    return report


def load_configuration(config_dir: str | os.PathLike[str]) -> Configuration:
    """Load and validate a configuration folder; raise ConfigurationError listing every error."""
    path = Path(config_dir)
    report, labs, settings, labs_file, images = _validate(path)
    if report.errors or settings is None or labs_file is None:
        raise ConfigurationError(f"Configuration {path} is invalid", [str(f) for f in report.errors])
    for warning in report.warnings:
        log.warning("%s", warning)
    return Configuration(path, labs_file, labs, settings, tuple(images), report.warnings)
