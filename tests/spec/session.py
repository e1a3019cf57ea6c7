"""The session-wide spec check: every local Azure a test session starts records its ARM answers; at the end of the
session they are checked against the kept specification, and any drift fails the session.

``pytest_configure`` points ``LOCAL_AZURE_RECORD_DIR`` at a fresh folder (child processes inherit it, so the
emulators of tests/emulator, tests/integration, tests/e2e and the drills all record); ``pytest_sessionfinish`` checks
the folder and turns the exit status into a failure when an answer drifted; the terminal summary says what was
checked. A folder already named by ``LOCAL_AZURE_RECORD_DIR`` is used and kept; ours is removed unless it drifted.
A pytest plugin: ``tests/conftest.py`` loads it for every session (``-p tests.spec.session`` elsewhere).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from emulator.arm.recorder import RECORD_DIR_ENV
from tests.spec.records import Report, check_folder

_FOLDER = pytest.StashKey[Path]()
_OWNED = pytest.StashKey[bool]()
_REPORT = pytest.StashKey[Report]()


def pytest_configure(config: pytest.Config) -> None:
    """Turn recording on for every local Azure this session starts."""
    if hasattr(config, "workerinput"):
        return  # a pytest-xdist worker: the controller's folder is inherited through the environment
    given = os.environ.get(RECORD_DIR_ENV)
    folder = Path(given) if given else Path(tempfile.mkdtemp(prefix="arm-answers-"))
    folder.mkdir(parents=True, exist_ok=True)
    os.environ[RECORD_DIR_ENV] = str(folder)
    config.stash[_FOLDER] = folder
    config.stash[_OWNED] = not given


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Check the session's recorded answers; a drift from the specification fails the session."""
    config = session.config
    folder = config.stash.get(_FOLDER, None)
    if folder is None or not folder.is_dir():
        return
    report = check_folder(folder)
    config.stash[_REPORT] = report
    if report.problems:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    elif config.stash.get(_OWNED, False):
        shutil.rmtree(folder, ignore_errors=True)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, exitstatus: int, config: pytest.Config) -> None:
    """Say how many answers were checked, and every drift."""
    report = config.stash.get(_REPORT, None)
    if report is None or not report.records:
        return
    reporter = terminalreporter
    reporter.section("ARM answers vs Azure's REST specification", sep="-", red=bool(report.problems))
    for line in report.lines():
        reporter.write_line(line)
    if report.problems:
        folder = config.stash[_FOLDER]
        reporter.write_line(f"DRIFT from the specification: the session fails; the answers are kept in {folder}")
