"""What validation finds: one finding (file, line, JSON path, message), a folder's report, a file's collector."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from image_factory.configuration.scanner import JsonPath, Locator

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


@dataclass
class Collector:
    """Findings of one file, and the locator that finds their lines in its text."""

    file: Path
    locator: Locator | None = None
    errors: list[Finding] = field(default_factory=list)
    warnings: list[Finding] = field(default_factory=list)

    def add(self, path: JsonPath, message: str, severity: Severity = "error", line: int | None = None) -> None:
        """Record a finding at ``path`` (a JSON path), looking up its line in the file's text."""
        if line is None and self.locator is not None:
            line = self.locator.line_of(path)
        finding = Finding(str(self.file), format_location(path), message, line, severity)
        (self.errors if severity == "error" else self.warnings).append(finding)


def format_location(path: Sequence[str | int]) -> str:
    """Render a JSON path as ``Labs[2].ImagePaths[0]``."""
    out = ""
    for step in path:
        if isinstance(step, int):
            out += f"[{step}]"
        else:
            out += f".{step}" if out else step
    return out


def sorted_findings(findings: list[Finding]) -> list[Finding]:
    """Order findings by file, line and location (the order people read a report in)."""
    return sorted(findings, key=lambda f: (f.file, f.line or 0, f.location))
