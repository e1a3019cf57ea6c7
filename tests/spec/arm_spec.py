"""Azure's REST specification as data: the operations the factory calls, and their response schemas.

The files under ``azure-rest-api-specs/`` are extracts of the public repository ``Azure/azure-rest-api-specs``
(MIT License), laid out as upstream so relative ``$ref``s resolve; ``azure-rest-api-specs/MANIFEST.json`` names each
file's upstream path, commit and what an extract keeps. Swagger 2.0 schemas are JSON Schema draft 4 plus ``x-ms-*``
keywords, so ``jsonschema``'s Draft4Validator checks bodies against them; property names are checked here too,
exactly (``provisioningState``, never ``ProvisioningState``).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jsonschema import Draft4Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

ROOT = Path(__file__).resolve().parent / "azure-rest-api-specs"
BASE = "https://spec.local/"
#: The operation files: DevTest Labs 2018-09-15 and the disk access operations of Compute's DiskRP.
OPERATION_FILES = (
    "specification/devtestlabs/resource-manager/Microsoft.DevTestLab/stable/2018-09-15/DTL.json",
    "specification/compute/resource-manager/Microsoft.Compute/DiskRP/stable/2025-01-02/DiskRP.json",
)
#: Files only referenced ($ref) by the operation files.
TYPE_FILES = (
    "specification/common-types/resource-management/v3/types.json",
    "specification/compute/resource-manager/Microsoft.Compute/common-types/v1/common.json",
)
COMMON_TYPES = BASE + TYPE_FILES[0]
DTL = BASE + OPERATION_FILES[0]
#: Not from the specification: ARM's asynchronous-operation status resource (what ``Azure-AsyncOperation`` names)
#: as the ARM RPC describes it, in terms of the kept types: common-types' ``OperationStatusResult``, plus DevTest
#: Labs' own ``OperationResult`` for its ``Operations_Get``, plus ``properties`` (a provider's output, e.g. Compute's
#: ``properties.output.accessSAS``).
ASYNC_STATUS = BASE + "arm-rpc/async-operation.json"
_ASYNC_STATUS_DOCUMENT = {
    "definitions": {
        "ArmOperationStatus": {
            "type": "object",
            "allOf": [{"$ref": COMMON_TYPES + "#/definitions/OperationStatusResult"}],
            "properties": {"properties": {"type": "object"}},
        },
        "DevTestLabsOperationStatus": {
            "type": "object",
            "allOf": [{"$ref": "#/definitions/ArmOperationStatus"}, {"$ref": DTL + "#/definitions/OperationResult"}],
        },
    }
}
_METHODS = ("get", "put", "post", "delete", "patch", "head")


@dataclass(frozen=True)
class ResponseSpec:
    """One documented response of an operation: its schema (a ``$ref`` URI or None: no body) and header names."""

    schema: str | None
    headers: frozenset[str]


@dataclass(frozen=True)
class SpecOperation:
    """An operation of the specification."""

    operation_id: str
    method: str
    path: str
    source: str
    responses: dict[str, ResponseSpec]
    long_running: bool = False
    final_state_via: str | None = None

    def response(self, status: int) -> ResponseSpec | None:
        """Return the documented response for ``status``: its own entry, else ``default`` for an error."""
        if str(status) in self.responses:
            return self.responses[str(status)]
        if status >= 400:
            return self.responses.get("default")
        return None

    def success_codes(self) -> list[int]:
        """Return the documented non-error status codes."""
        return sorted(int(code) for code in self.responses if code.isdigit())


@dataclass
class Spec:
    """The kept specification: operations by id, and the registry that resolves their schemas."""

    operations: dict[str, SpecOperation]
    registry: Registry[Any]
    _validators: dict[str, Draft4Validator] = field(default_factory=dict)

    def validator(self, ref: str) -> Draft4Validator:
        """Return a (cached) validator of the schema at ``ref``."""
        if ref not in self._validators:
            self._validators[ref] = Draft4Validator({"$ref": ref}, registry=self.registry)
        return self._validators[ref]

    def schema_problems(self, body: Any, ref: str, allowed_extra: dict[tuple[str, str], str]) -> list[str]:
        """Return what is wrong with ``body`` against the schema at ``ref``: jsonschema errors, then property names."""
        problems = [
            f"schema: {'/'.join(str(p) for p in error.absolute_path) or '(body)'}: {error.message[:200]}"
            for error in sorted(self.validator(ref).iter_errors(body), key=lambda e: list(e.absolute_path))
        ]
        resolved = self.registry.resolver().lookup(ref)
        problems.extend(_names(body, _Node(resolved.contents, resolved.resolver, _definition(ref)), "", allowed_extra))
        return problems


def _definition(ref: str) -> str:
    """Return the definition name a ``$ref`` ends with (``…#/definitions/CustomImage`` → ``CustomImage``)."""
    return ref.rsplit("/", 1)[-1] if "#/definitions/" in ref else ""


def _properties(schema: dict[str, Any], resolver: Any, owner: str) -> tuple[dict[str, tuple[Any, Any, str]], Any]:
    """Collect an object schema's properties (through ``$ref`` and ``allOf``) and its ``additionalProperties``."""
    props: dict[str, tuple[Any, Any, str]] = {}
    additional: Any = None
    if "$ref" in schema:
        resolved = resolver.lookup(schema["$ref"])
        return _properties(resolved.contents, resolved.resolver, _definition(schema["$ref"]) or owner)
    for part in schema.get("allOf", []):
        more, extra = _properties(part, resolver, owner)
        props.update(more)
        additional = additional if extra is None else extra
    for name, sub in (schema.get("properties") or {}).items():
        props[name] = (sub, resolver, owner)
    if "additionalProperties" in schema:
        additional = (schema["additionalProperties"], resolver, owner)
    return props, additional


@dataclass(frozen=True)
class _Node:
    """A schema with the resolver of the document it is in and the definition it belongs to."""

    schema: Any
    resolver: Any
    owner: str


def _names(value: Any, node: _Node, where: str, allowed: dict[tuple[str, str], str]) -> Iterator[str]:
    """Yield every property whose name is not the specification's exactly (wrong casing, or undocumented)."""
    schema, resolver, owner = node.schema, node.resolver, node.owner
    if not isinstance(schema, dict):
        return
    if "$ref" in schema:
        resolved = resolver.lookup(schema["$ref"])
        inner = _Node(resolved.contents, resolved.resolver, _definition(schema["$ref"]) or owner)
        yield from _names(value, inner, where, allowed)
        return
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(value):
            yield from _names(item, _Node(schema["items"], resolver, owner), f"{where}[{index}]", allowed)
        return
    if not isinstance(value, dict):
        return
    props, additional = _properties(schema, resolver, owner)
    if not props and additional is None:
        return  # a free-form object
    lowered = {name.lower(): name for name in props}
    for key, item in value.items():
        path = f"{where}/{key}" if where else key
        if key in props:
            yield from _names(item, _Node(*props[key]), path, allowed)
        elif key.lower() in lowered:
            yield f"casing: {path} is spelt '{lowered[key.lower()]}' in the specification ({owner})"
        elif isinstance(additional, tuple) and isinstance(additional[0], dict):
            yield from _names(item, _Node(*additional), path, allowed)
        elif (owner, key) not in allowed:
            yield f"undocumented: {path} is not a property of {owner or 'the schema'}"


def _ref_uri(source: str, ref: str | None) -> str | None:
    if ref is None:
        return None
    file_part, _, pointer = ref.partition("#")
    base = BASE + source
    if file_part:
        from urllib.parse import urljoin

        base = urljoin(base, file_part)
    return f"{base}#{pointer}"


def _operations(source: str, document: dict[str, Any]) -> Iterator[SpecOperation]:
    for path, item in document["paths"].items():
        for method in _METHODS:
            op = item.get(method)
            if op is None:
                continue
            responses = {
                code: ResponseSpec(
                    schema=_ref_uri(source, (answer.get("schema") or {}).get("$ref")),
                    headers=frozenset(answer.get("headers", {})),
                )
                for code, answer in op["responses"].items()
            }
            yield SpecOperation(
                operation_id=op["operationId"],
                method=method.upper(),
                path=path,
                source=source,
                responses=responses,
                long_running=bool(op.get("x-ms-long-running-operation")),
                final_state_via=(op.get("x-ms-long-running-operation-options") or {}).get("final-state-via"),
            )


@functools.cache
def load_spec() -> Spec:
    """Load the kept specification files (once per process)."""
    resources = []
    operations: dict[str, SpecOperation] = {}
    for source in (*OPERATION_FILES, *TYPE_FILES):
        document = json.loads((ROOT / source).read_text(encoding="utf-8"))
        resources.append((BASE + source, Resource(contents=document, specification=DRAFT4)))
        if source in OPERATION_FILES:
            operations.update((op.operation_id, op) for op in _operations(source, document))
    resources.append((ASYNC_STATUS, Resource(contents=_ASYNC_STATUS_DOCUMENT, specification=DRAFT4)))
    return Spec(operations=operations, registry=Registry().with_resources(resources))
