"""The whole configuration folder: validate it into a Report (the CLI) or load it into a Configuration (tasks).

One implementation serves both. Every check is local and cheap (no network): files are refused by size before
they are parsed, JSON is parsed with duplicate-key detection, labs.json and factory.json are checked against the
product's JSON Schemas and then semantically (duplicate labs, ImagePaths that leave GoldenImages or name files
ambiguously, cron schedule, ARM templates). Lenient where the PowerShell factory was, always saying so with a
warning: unknown keys are ignored, an ImagePath naming a file by its stem selects it (``Configuration.labs``
spell it canonically), and one that selects nothing leaves that lab without it while its other paths run.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from image_factory.configuration.factory import (
    FACTORY_FILE_NAME,
    FactorySettings,
    check_factory,
    find_factory_file,
)
from image_factory.configuration.findings import Finding, Report, sorted_findings
from image_factory.configuration.golden import check_golden, match_image_paths, unused_images
from image_factory.configuration.labs import LABS_FILE_NAMES, check_labs, find_labs_file
from image_factory.exceptions import ConfigurationError
from image_factory.models import LabRef

log = logging.getLogger(__name__)


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
class _Outcome:
    """Everything one pass over a folder found: the findings and what could be loaded."""

    errors: list[Finding] = field(default_factory=list)
    warnings: list[Finding] = field(default_factory=list)
    labs: tuple[LabRef, ...] = ()
    labs_file: Path | None = None
    factory: FactorySettings | None = None
    images: list[str] = field(default_factory=list)

    def report(self, config_dir: Path) -> Report:
        return Report(config_dir, tuple(sorted_findings(self.errors)), tuple(sorted_findings(self.warnings)))


def _validate_labs(config_dir: Path, root: Path, out: _Outcome) -> None:
    """Check labs.json and match its ImagePaths against the golden images found."""
    try:
        out.labs_file = find_labs_file(config_dir)
    except ConfigurationError as exc:
        out.errors.append(Finding(str(config_dir / LABS_FILE_NAMES[0]), "", str(exc)))
        return
    col, labs = check_labs(out.labs_file)
    if labs:
        used, labs = match_image_paths(col, root, labs, out.images)
        out.warnings.extend(unused_images(root, out.images, used))
    out.errors.extend(col.errors)
    out.warnings.extend(col.warnings)
    out.labs = tuple(lab for _, lab in labs)


def _validate_factory(config_dir: Path, out: _Outcome) -> None:
    try:
        col, out.factory = check_factory(find_factory_file(config_dir))
    except ConfigurationError as exc:
        out.errors.append(Finding(str(config_dir / FACTORY_FILE_NAME), "", str(exc)))
        return
    out.errors.extend(col.errors)
    out.warnings.extend(col.warnings)


def _validate(config_dir: Path) -> _Outcome:
    out = _Outcome()
    if not config_dir.is_dir():
        out.errors.append(Finding(str(config_dir), "", "is not a folder; pass the Configuration folder"))
        return out
    golden_errors, out.images, root = check_golden(config_dir)
    out.errors.extend(golden_errors)
    _validate_labs(config_dir, root, out)
    _validate_factory(config_dir, out)
    return out


def validate_configuration(config_dir: str | os.PathLike[str]) -> Report:
    """Check a whole configuration folder; never raise for a bad configuration (see ``Report.errors``)."""
    report = _validate(Path(config_dir)).report(Path(config_dir))
    log.debug("Validated %s: %d errors, %d warnings", config_dir, len(report.errors), len(report.warnings))
    return report


def load_configuration(config_dir: str | os.PathLike[str]) -> Configuration:
    """Load and validate a configuration folder; raise ConfigurationError listing every error."""
    path = Path(config_dir)
    out = _validate(path)
    report = out.report(path)
    if report.errors or out.factory is None or out.labs_file is None:
        raise ConfigurationError(f"Configuration {path} is invalid", [str(f) for f in report.errors])
    for warning in report.warnings:
        log.warning("%s", warning)
    return Configuration(path, out.labs_file, out.labs, out.factory, tuple(out.images), report.warnings)
