"""Fault-injection rules shared by the ARM and blob halves of the emulator, and early-retry accounting."""

from __future__ import annotations

import itertools
import random
import threading
import time
from dataclasses import dataclass, fields
from fnmatch import fnmatchcase
from typing import Any

SERVICES = frozenset({"arm", "blob"})
KINDS = frozenset({"status", "delay", "reset", "copy_fail", "copy_abort", "artifact_fail"})
#: Kinds that only make sense when a copy starts; they match only the ``CopyBlob`` operation.
COPY_KINDS = frozenset({"copy_fail", "copy_abort"})
COPY_OPERATION = "CopyBlob"
#: Kind of rules that make a lab VM's artifact end Failed (asked by the VM build, never matching a request).
ARTIFACT_KIND = "artifact_fail"
#: Pseudo-method of rules that make a long-running operation end Failed (ARM custom images).
LRO_METHOD = "LRO"
THROTTLE_STATUSES = frozenset({429, 503})
DEFAULT_ERROR_CODES = {
    400: "InvalidInput",
    403: "AuthorizationFailure",
    404: "ResourceNotFound",
    409: "Conflict",
    429: "TooManyRequests",
    500: "InternalError",
    502: "BadGateway",
    503: "ServerBusy",
    504: "GatewayTimeout",
}
_GLOB_KEYS = ("operation", "account", "path", "method", "artifact", "lab", "vm")
_KNOWN_KEYS = frozenset(
    {
        "service",
        "kind",
        "status",
        "error_code",
        "message",
        "retry_after",
        "delay",
        "probability",
        "count",
        "after",
        *_GLOB_KEYS,
    }
)


@dataclass(frozen=True)
class Fault:
    """What a matched rule asks the server to do with one request."""

    rule_id: int
    kind: str
    status: int
    error_code: str
    message: str
    retry_after: float | None
    delay: float


#: What a fault takes from its rule's (normalized) spec: every field but the rule's id.
_FAULT_FIELDS = tuple(f.name for f in fields(Fault) if f.name != "rule_id")


@dataclass
class _Rule:
    rule_id: int
    spec: dict[str, Any]
    matches: int = 0
    fired: int = 0


@dataclass(frozen=True)
class _Throttle:
    answered_at: float
    retry_after: float


class FaultRules:
    """Thread-safe list of fault rules; the first rule that matches and fires decides a request's fault."""

    def __init__(self, seed: int = 0) -> None:
        """Create an empty rule list whose ``probability`` draws come from a RNG seeded with ``seed``."""
        self._lock = threading.Lock()
        self._rules: list[_Rule] = []
        self._ids = itertools.count(1)
        self._rng = random.Random(seed)  # noqa: S311 - reproducible fault draws, not cryptography
        self._throttles: dict[tuple[str, str, str, str], _Throttle] = {}
        self._early: dict[str, int] = {}

    def add(self, rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Validate and append rules (all or none); return them as stored, with their ids."""
        normalized = [_normalize(rule) for rule in rules]
        with self._lock:
            stored = [_Rule(rule_id=next(self._ids), spec=spec) for spec in normalized]
            self._rules.extend(stored)
            return [self._describe(rule) for rule in stored]

    def clear(self) -> None:
        """Remove every rule."""
        with self._lock:
            self._rules.clear()

    def snapshot(self) -> list[dict[str, Any]]:
        """Return the rules with how often each matched and fired."""
        with self._lock:
            return [self._describe(rule) for rule in self._rules]

    def match(
        self,
        *,
        service: str,
        operation: str,
        method: str,
        path: str,
        account: str | None = None,
        artifact: str | None = None,
        lab: str | None = None,
        vm: str | None = None,
    ) -> Fault | None:
        """Return the fault to apply to a request (or to an artifact, given ``artifact``), counting it, or None."""
        with self._lock:
            for rule in self._rules:
                values = {
                    "operation": operation,
                    "method": method.upper(),
                    "path": path,
                    "account": account,
                    "artifact": artifact,
                    "lab": lab,
                    "vm": vm,
                }
                if not _applies(rule.spec, service, values):
                    continue
                rule.matches += 1
                spec = rule.spec
                if rule.matches <= spec["after"]:
                    continue
                if spec["count"] is not None and rule.fired >= spec["count"]:
                    continue
                if spec["probability"] < 1.0 and self._rng.random() >= spec["probability"]:
                    continue
                rule.fired += 1
                return Fault(rule_id=rule.rule_id, **{name: spec[name] for name in _FAULT_FIELDS})
        return None

    def record_throttle(self, *, service: str, operation: str, method: str, path: str, retry_after: float) -> None:
        """Remember that a request was answered 429/503 with ``Retry-After: retry_after`` just now."""
        with self._lock:
            self._throttles[(service, operation, method, path)] = _Throttle(time.monotonic(), retry_after)

    def check_early_retry(self, *, service: str, operation: str, method: str, path: str) -> bool:
        """Tell (and count) whether this request repeats a throttled one before its Retry-After elapsed."""
        key = (service, operation, method, path)
        now = time.monotonic()
        with self._lock:
            throttle = self._throttles.get(key)
            if throttle is None:
                return False
            if now - throttle.answered_at >= throttle.retry_after:
                del self._throttles[key]
                return False
            del self._throttles[key]
            self._early[service] = self._early.get(service, 0) + 1
            return True

    def early_retries(self, service: str | None = None) -> int:
        """Return how many early retries were seen (for one service, or all)."""
        with self._lock:
            if service is None:
                return sum(self._early.values())
            return self._early.get(service, 0)

    def reset_early_retries(self, service: str | None = None) -> None:
        """Forget early-retry counts and pending throttles (for one service, or all)."""
        with self._lock:
            if service is None:
                self._early.clear()
                self._throttles.clear()
                return
            self._early.pop(service, None)
            for key in [key for key in self._throttles if key[0] == service]:
                del self._throttles[key]

    @staticmethod
    def _describe(rule: _Rule) -> dict[str, Any]:
        return {"id": rule.rule_id, **rule.spec, "matches": rule.matches, "fired": rule.fired}


def _applies(spec: dict[str, Any], service: str, values: dict[str, str | None]) -> bool:
    if spec["service"] != service:
        return False
    copy_mismatch = spec["kind"] in COPY_KINDS and values["operation"] != COPY_OPERATION
    # Method "LRO" is the outcome of a long-running operation (asked by the handler, not a request): only rules
    # naming that method exactly apply to it, and they never apply to requests.
    lro_mismatch = (values["method"] == LRO_METHOD) != (spec["method"].upper() == LRO_METHOD)
    # An artifact_fail rule applies only to artifacts, and only such rules do.
    artifact_mismatch = (spec["kind"] == ARTIFACT_KIND) != (values["artifact"] is not None)
    if copy_mismatch or lro_mismatch or artifact_mismatch:
        return False
    for key in _GLOB_KEYS:
        pattern = spec[key]
        if pattern == "*":
            continue
        value = values[key]
        if value is None:
            return False
        if key in ("method", "account", "path", "artifact", "lab", "vm"):
            # Azure compares account names, methods, (ARM) paths and lab, VM and artifact names case-insensitively.
            if not fnmatchcase(value.lower(), pattern.lower()):
                return False
        elif not fnmatchcase(value, pattern):
            return False
    return True


def _normalize(rule: dict[str, Any]) -> dict[str, Any]:
    """Return a complete, validated copy of a rule; raise ValueError naming what is wrong."""
    if not isinstance(rule, dict):
        raise ValueError("a fault rule must be a JSON object")
    unknown = set(rule) - _KNOWN_KEYS
    if unknown:
        raise ValueError(f"unknown fault rule keys: {sorted(unknown)}")
    service = rule.get("service")
    if service not in SERVICES:
        raise ValueError(f"fault rule 'service' must be one of {sorted(SERVICES)}, not {service!r}")
    kind = rule.get("kind")
    if kind not in KINDS:
        raise ValueError(f"fault rule 'kind' must be one of {sorted(KINDS)}, not {kind!r}")
    if kind in COPY_KINDS and service != "blob":
        raise ValueError(f"fault kind {kind!r} applies only to service 'blob'")
    if kind == ARTIFACT_KIND and (service != "arm" or not isinstance(rule.get("artifact"), str)):
        raise ValueError("fault kind 'artifact_fail' applies to service 'arm' and needs 'artifact' (a glob)")
    spec: dict[str, Any] = {"service": service, "kind": kind}
    for key in _GLOB_KEYS:
        value = rule.get(key, "*")
        if not isinstance(value, str) or not value:
            raise ValueError(f"fault rule {key!r} must be a non-empty glob string")
        spec[key] = value
    spec.update(_response_fields(rule, kind))
    spec.update(_firing_fields(rule, kind))
    return spec


def _response_fields(rule: dict[str, Any], kind: str) -> dict[str, Any]:
    """Validate what a fault answers: status, error code, message, Retry-After."""
    spec: dict[str, Any] = {}
    status = rule.get("status", 503)
    if not isinstance(status, int) or isinstance(status, bool) or not 400 <= status <= 599:
        raise ValueError(f"fault rule 'status' must be an HTTP error status (400-599), not {status!r}")
    spec["status"] = status
    error_code = rule.get("error_code", DEFAULT_ERROR_CODES.get(status, "InternalError"))
    if not isinstance(error_code, str) or not error_code:
        raise ValueError("fault rule 'error_code' must be a non-empty string")
    spec["error_code"] = error_code
    message = rule.get("message", f"Injected fault ({kind}).")
    if not isinstance(message, str):
        raise ValueError("fault rule 'message' must be a string")
    spec["message"] = message
    spec["retry_after"] = _number(rule, "retry_after", None, minimum=0.0)
    return spec


def _firing_fields(rule: dict[str, Any], kind: str) -> dict[str, Any]:
    """Validate when a fault fires: delay, probability, count, after."""
    spec: dict[str, Any] = {}
    spec["delay"] = _number(rule, "delay", 0.0, minimum=0.0)
    if kind == "delay" and spec["delay"] <= 0:
        raise ValueError("fault kind 'delay' needs a positive 'delay' (seconds)")
    probability = _number(rule, "probability", 1.0, minimum=0.0)
    if probability is None or probability > 1.0:
        raise ValueError("fault rule 'probability' must be between 0 and 1")
    spec["probability"] = probability
    for key in ("count", "after"):
        value = rule.get(key, None if key == "count" else 0)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
            raise ValueError(f"fault rule {key!r} must be a non-negative integer")
        spec[key] = value
    return spec


def _number(rule: dict[str, Any], key: str, default: float | None, *, minimum: float) -> float | None:
    value = rule.get(key, default)
    if value is None:
        return None
    if not isinstance(value, int | float) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"fault rule {key!r} must be a number >= {minimum}")
    return float(value)
