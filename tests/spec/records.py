"""Check the local Azure's recorded ARM answers against the kept specification.

Each record (a line the emulator's ``ResponseRecorder`` wrote) is checked for: a status code the operation documents
(an error status only where it documents ``default``), a body valid against that response's schema with every
property spelt exactly as the specification spells it, ARM's LRO headers on a long-running operation's first answer,
and, for the polls of an operation, the answers its ``final-state-via`` promises (the Location URL of
``CustomImages_CreateOrUpdate`` ends 200 with the image; that of ``Disks_RevokeAccess`` ends 200).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.spec.arm_spec import ASYNC_STATUS, Spec, SpecOperation, load_spec

#: Properties the local Azure sends that the kept specification does not document, each with where Azure has it.
ALLOWED_EXTRA: dict[tuple[str, str], str] = {
    ("LabVirtualMachine", "location"): "official VirtualMachines_Get/List examples and the SDK's swagger have it; "
    "the generated DTL.json edition kept here omits it",
    ("LabVirtualMachine", "tags"): "as location (the factory reads a VM's ImagePath tag)",
}
#: Answers of operations outside the kept specification (not checked, counted in the summary).
POLLS = {"AsyncOperations_Get", "OperationResults_Get"}
_TERMINAL = {"succeeded", "failed", "canceled"}


def _header(record: dict[str, Any], name: str) -> str | None:
    return next((v for k, v in (record.get("headers") or {}).items() if k.lower() == name.lower()), None)


def _body_problems(spec: Spec, body: Any, schema: str | None, status: int) -> list[str]:
    if schema is None:
        return [] if body is None else [f"body: the specification documents no body for {status}"]
    if body is None:
        return [f"body: missing; the specification documents one for {status}"]
    return spec.schema_problems(body, schema, ALLOWED_EXTRA)


def _poll_url_problems(record: dict[str, Any], op: SpecOperation) -> list[str]:
    """Check a long-running operation's first answer carries the polling headers ARM clients follow."""
    location, status_url = _header(record, "Location"), _header(record, "Azure-AsyncOperation")
    problems = []
    if op.final_state_via == "location" and not location:
        problems.append("lro: no Location header (final-state-via: location)")
    if not (location or status_url):
        problems.append("lro: neither Location nor Azure-AsyncOperation")
    for name, url in (("Location", location), ("Azure-AsyncOperation", status_url)):
        if url and not url.startswith("https://"):
            problems.append(f"lro: {name} is not an absolute https URL: {url[:120]}")
    return problems


def _provisioning_state(body: Any) -> str | None:
    props = body.get("properties") if isinstance(body, dict) else None
    return props.get("provisioningState") if isinstance(props, dict) else None


def answer_problems(spec: Spec, op: SpecOperation, status: int, body: Any) -> list[str]:
    """Check an answer's status code and body (not its headers) against the operation's documented responses."""
    answer = op.response(status)
    if answer is None:
        return [f"status {status} is not an answer of {op.operation_id} (documented: {op.success_codes()})"]
    return _body_problems(spec, body, answer.schema, status)


def _check_operation(spec: Spec, record: dict[str, Any], op: SpecOperation) -> list[str]:
    status, body = int(record["status"]), record.get("body")
    problems = answer_problems(spec, op, status, body)
    if problems and problems[0].startswith("status "):
        return problems
    if op.long_running and status < 300:
        state = _provisioning_state(body)
        if status in {201, 202} or (state is not None and state.lower() not in _TERMINAL):
            problems.extend(_poll_url_problems(record, op))
    return problems


def _check_status_poll(spec: Spec, record: dict[str, Any]) -> list[str]:
    """An ``Azure-AsyncOperation`` poll: DevTest Labs' ``Operations_Get``, or ARM's status resource elsewhere."""
    status, body = int(record["status"]), record.get("body")
    parts = str(record.get("path", "")).split("/")
    namespace = parts[4].lower() if len(parts) > 4 else ""
    if namespace == "microsoft.devtestlab":
        op = spec.operations["Operations_Get"]
        answer = op.response(status)
        if answer is None:
            return [f"status {status} is not an answer of Operations_Get (documented: {op.success_codes()})"]
        schema = ASYNC_STATUS + "#/definitions/DevTestLabsOperationStatus" if status < 400 else answer.schema
    else:
        if status not in {200} and status < 400:
            return [f"status {status} is not an answer of an async operation status (200)"]
        schema = ASYNC_STATUS + "#/definitions/ArmOperationStatus" if status < 400 else None
        if schema is None:
            return []
    problems = _body_problems(spec, body, schema, status)
    value = body.get("status") if isinstance(body, dict) else None
    if isinstance(value, str) and value.lower() in _TERMINAL and value != value.capitalize():
        problems.append(f"casing: status '{value}' is spelt '{value.capitalize()}' by ARM")
    return problems


def _check_result_poll(spec: Spec, record: dict[str, Any], origin: SpecOperation) -> list[str]:
    """A ``Location`` poll: 202 while running, then what the operation's ``final-state-via: location`` promises."""
    status, body = int(record["status"]), record.get("body")
    if status == 202:
        return [] if _header(record, "Retry-After") else ["lro: a 202 poll without Retry-After"]
    if status >= 400:
        answer = origin.response(status)
        return _body_problems(spec, body, answer.schema if answer else None, status)
    finals = [code for code in origin.success_codes() if code != 202]
    if status not in finals:
        return [f"final: the Location of {origin.operation_id} ends {status}; the specification allows {finals}"]
    answer = origin.responses[str(status)]
    problems = _body_problems(spec, body, answer.schema, status)
    state = _provisioning_state(body)
    if origin.method == "PUT" and state is not None and state.lower() not in _TERMINAL:
        problems.append(f"final: the Location of {origin.operation_id} ended with the resource still {state}")
    return problems


def check_record(spec: Spec, record: dict[str, Any]) -> list[str] | None:
    """Return the problems of one recorded answer, or None when the kept specification does not cover it."""
    problems = []
    if not _header(record, "x-ms-request-id"):
        problems.append("headers: no x-ms-request-id")
    content_type = _header(record, "Content-Type") or ""
    if record.get("body") is not None and not content_type.startswith("application/json"):
        problems.append(f"headers: a JSON body with Content-Type '{content_type}' (the specification produces JSON)")
    retry_after = _header(record, "Retry-After")
    if retry_after is not None and not retry_after.isdigit():
        problems.append(f"headers: Retry-After '{retry_after}' is not an integer number of seconds")
    operation = str(record.get("operation", ""))
    if operation == "AsyncOperations_Get":
        return problems + _check_status_poll(spec, record)
    if operation == "OperationResults_Get":
        origin = spec.operations.get(str(record.get("lro_of")))
        return None if origin is None else problems + _check_result_poll(spec, record, origin)
    op = spec.operations.get(operation)
    return None if op is None else problems + _check_operation(spec, record, op)


@dataclass
class Report:
    """What the records of a test session said."""

    checked: Counter[str] = field(default_factory=Counter)
    uncovered: Counter[str] = field(default_factory=Counter)
    problems: Counter[str] = field(default_factory=Counter)
    #: One example record (trimmed) per problem.
    examples: dict[str, str] = field(default_factory=dict)

    @property
    def records(self) -> int:
        """Count every record read."""
        return sum(self.checked.values()) + sum(self.uncovered.values())

    def lines(self, limit: int = 30) -> list[str]:
        """Describe the report for the terminal."""
        head = (
            f"ARM answers checked against the specification: {sum(self.checked.values())} "
            f"({len(self.checked)} operations); not covered by it: {sum(self.uncovered.values())}"
            + (f" ({', '.join(f'{k} ×{v}' for k, v in sorted(self.uncovered.items()))})" if self.uncovered else "")
        )
        out = [head]
        for problem, count in self.problems.most_common(limit):
            out.append(f"  ×{count} {problem}")
            out.append(f"      e.g. {self.examples[problem]}")
        return out


def _label(record: dict[str, Any]) -> str:
    operation = record.get("operation")
    if record.get("lro_of"):
        operation = f"{operation} of {record['lro_of']}"
    return f"{operation} {record.get('method')} {record.get('status')}"


def check_lines(lines: Iterable[str], spec: Spec | None = None, report: Report | None = None) -> Report:
    """Check recorded answers (JSON lines) and return the report."""
    spec = spec or load_spec()
    report = report or Report()
    for line in lines:
        if not line.strip():
            continue
        record = json.loads(line)
        problems = check_record(spec, record)
        label = _label(record)
        if problems is None:
            report.uncovered[str(record.get("lro_of") or record.get("operation"))] += 1
            continue
        report.checked[str(record.get("operation"))] += 1
        for problem in problems:
            key = f"{label}: {problem}"
            report.problems[key] += 1
            report.examples.setdefault(key, f"{record.get('path')} -> {json.dumps(record.get('body'))[:300]}")
    return report


def check_folder(folder: Path) -> Report:
    """Check every ``*.jsonl`` file of ``folder``."""
    report = Report()
    for path in sorted(folder.glob("*.jsonl")):
        with path.open(encoding="utf-8") as lines:
            check_lines(lines, report=report)
    return report
