"""The product's JSON Schemas (shipped in ``schemas/``): finding them, checking a document, describing errors.

Schema errors are turned into messages a person can act on (``missing required field 'LabName'``), and keys
differing from the schema's spelling only in case are renamed to it first (PowerShell reads keys
case-insensitively; so does the factory). An unknown key (the schemas' ``additionalProperties: false``) is a
*warning* naming the closest known key (the PowerShell factory ignored extra keys such as a lab's ``Owner``); a
misspelt required key still fails, as the required one is then missing, and that error names the look-alike.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterator
from functools import lru_cache
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator, ValidationError
from jsonschema.validators import extend

from image_factory.configuration.findings import Collector, Severity
from image_factory.configuration.scanner import JsonPath
from image_factory.exceptions import ConfigurationError

LABS_SCHEMA = "labs.schema.json"
FACTORY_SCHEMA = "factory.schema.json"
#: Schema errors reported per file at most (a broken generated file must not flood the report).
MAX_SCHEMA_ERRORS = 50


def _strict_pattern(validator: Any, pattern: str, instance: Any, schema: dict[str, Any]) -> Iterator[Any]:
    """Check ``pattern`` with ``$`` meaning the end of the string (Python's also matches before a newline)."""
    if not isinstance(instance, str):
        return
    strict = pattern[:-1] + r"\Z" if pattern.endswith("$") and not pattern.endswith(r"\$") else pattern
    if not re.search(strict, instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


_Validator = extend(Draft202012Validator, {"pattern": _strict_pattern})


def schema_text(name: str) -> str:
    """Return the text of one of the product's schemas, read from this package's ``schemas/`` folder."""
    resource = resources.files(__package__).joinpath("schemas", name)
    if not resource.is_file():
        raise ConfigurationError(
            f"JSON Schema {name} is missing; it ships in the image_factory.configuration package (schemas/)"
        )
    return resource.read_text(encoding="utf-8")


@lru_cache(maxsize=8)
def _schema_validator(name: str) -> Any:
    """Return the (cached) validator for one of the product's schemas."""
    schema = json.loads(schema_text(name))
    Draft202012Validator.check_schema(schema)
    return _Validator(schema)


def schema_doc(name: str) -> dict[str, Any]:
    """Return one of the product's schemas as a document (parsed once per process)."""
    schema: dict[str, Any] = _schema_validator(name).schema
    return schema


def json_type(value: Any) -> str:
    """Name the JSON type of ``value`` with its article (``a string``, ``an array``)."""
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
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, dict | list) else json_type(value)
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


def _unknown_keys(error: ValidationError) -> tuple[list[str], list[str]]:
    """Return (the object's keys the schema does not know, the keys it knows) for an object's schema error."""
    instance = error.instance if isinstance(error.instance, dict) else {}
    known = list(error.schema.get("properties", {}))
    return [str(k) for k in instance if k not in known], known


def closest(word: str, candidates: list[str]) -> str | None:
    """Return the candidate closest to ``word`` (difflib, case-insensitive), or None when none is close."""
    by_fold = {c.casefold(): c for c in candidates}
    hint = difflib.get_close_matches(word.casefold(), list(by_fold), n=1)
    return by_fold[hint[0]] if hint else None


def _on_required(path: JsonPath, error: ValidationError) -> _Described:
    instance = error.instance if isinstance(error.instance, dict) else {}
    unknown, _ = _unknown_keys(error)
    out: _Described = []
    for key in error.validator_value:
        if key in instance:
            continue
        look_alike = closest(key, unknown)
        said = f"; the unknown key {look_alike!r} looks like a misspelling of it" if look_alike else ""
        out.append((path, f"missing required field {key!r}{said}"))
    return out


def _on_additional(path: JsonPath, error: ValidationError) -> _Described:
    unknown, known = _unknown_keys(error)
    where = "top-level key" if not path else "key"
    out: _Described = []
    for key in unknown:
        hint = closest(key, known)
        suffix = f"; did you mean {hint!r}?" if hint else f" (known keys: {', '.join(known)})"
        out.append(((*path, key), f"unknown {where} {key!r} is ignored{suffix}"))
    return out


def _on_type(path: JsonPath, error: ValidationError) -> _Described:
    expected = error.validator_value
    names = [_ARTICLES.get(str(n), str(n)) for n in (expected if isinstance(expected, list) else [expected])]
    got = f"{json_type(error.instance)} ({_short(error.instance)})"
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


#: Schema keywords whose findings are warnings: the document is still used (an unknown key is ignored).
_WARNINGS = frozenset({"additionalProperties"})


def check_schema(col: Collector, doc: Any, schema_name: str) -> bool:
    """Validate ``doc`` against a schema; return whether it has no errors (warnings allowed).

    Stops early on oversized arrays and after MAX_SCHEMA_ERRORS.
    """
    validator = _schema_validator(schema_name)
    count = warned = 0
    for error in validator.iter_errors(doc):
        severity: Severity = "warning" if error.validator in _WARNINGS else "error"
        if severity == "warning":
            warned += 1
            if warned <= MAX_SCHEMA_ERRORS:
                for path, message in _describe(error):
                    col.add(path, message, severity)
            elif warned == MAX_SCHEMA_ERRORS + 1:
                col.add((), f"unknown keys in more than {MAX_SCHEMA_ERRORS} objects; stopped listing them", severity)
            continue
        for path, message in _describe(error):
            col.add(path, message)
        count += 1
        if error.validator == "maxItems":
            break  # refuse oversized input outright instead of validating every item
        if count >= MAX_SCHEMA_ERRORS:
            col.add((), f"more than {MAX_SCHEMA_ERRORS} schema errors; stopped checking")
            break
    return count == 0


def canonical_keys(doc: Any, schema_name: str) -> Any:
    """Rename keys to the schema's spelling when they differ only in case (PowerShell reads them that way)."""
    root = schema_doc(schema_name)
    return _canonical(doc, root, root)


def _canonical(doc: Any, schema: dict[str, Any], root: dict[str, Any]) -> Any:
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        schema = root["$defs"][ref.removeprefix("#/$defs/")]
    if isinstance(doc, dict):
        props: dict[str, Any] = schema.get("properties", {})
        by_fold = {name.casefold(): name for name in props}
        out: dict[str, Any] = {}
        for key, value in doc.items():
            canonical = str(by_fold.get(str(key).casefold(), key))
            out[canonical] = _canonical(value, props.get(canonical, {}), root)
        return out
    if isinstance(doc, list) and len(doc) <= schema.get("maxItems", len(doc)):
        items = schema.get("items", {})
        return [_canonical(v, items, root) for v in doc]
    return doc
