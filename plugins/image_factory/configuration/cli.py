"""Check a configuration folder: ``python -m image_factory.configuration [DIR]`` (``make validate``).

Exit status 0 when the configuration is valid (warnings are printed but allowed), 1 when it has errors, 2 on a
usage error. Errors and warnings go to stderr as ``file:line: location: message`` (with ``--json`` too); the
summary, or the JSON report holding both, to stdout. A warning says what the factory does instead of failing (an
unknown key is ignored, an ImagePath selecting nothing leaves that lab without it).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from image_factory.configuration.findings import Report
from image_factory.configuration.validator import validate_configuration
from image_factory.settings import config_dir as default_config_dir


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m image_factory.configuration",
        description="Validate labs.json, factory.json and GoldenImages/ of an Image Factory configuration.",
    )
    parser.add_argument(
        "config_dir",
        nargs="?",
        type=Path,
        help="configuration folder (default: $IMAGE_FACTORY_CONFIG_DIR or <repo>/Configuration)",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON on stdout")
    return parser


def _print_findings(report: Report) -> None:
    for finding in report.errors:
        print(f"error: {finding}", file=sys.stderr)
    for finding in report.warnings:
        print(f"warning: {finding}", file=sys.stderr)


def _print_text(report: Report) -> None:
    _print_findings(report)
    status = "valid" if report.ok else "INVALID"
    print(
        f"{report.config_dir}: configuration {status}: {len(report.errors)} error(s), {len(report.warnings)} warning(s)"
    )


def _print_json(report: Report) -> None:
    _print_findings(report)
    document = {
        "config_dir": str(report.config_dir),
        "ok": report.ok,
        "errors": [asdict(f) for f in report.errors],
        "warnings": [asdict(f) for f in report.warnings],
    }
    print(json.dumps(document, indent=2))


def main(argv: Sequence[str] | None = None) -> int:
    """Validate the folder named on the command line and return the process exit status."""
    args = _parser().parse_args(argv)
    config_dir: Path = args.config_dir or default_config_dir()
    report = validate_configuration(config_dir)
    (_print_json if args.json else _print_text)(report)
    return 0 if report.ok else 1
