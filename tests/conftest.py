"""Hooks of every test session: the local Azure's ARM answers are recorded and checked against Azure's spec."""

from __future__ import annotations

import pytest

from tests.spec import session as spec_check


def pytest_configure(config: pytest.Config) -> None:
    """Turn the local Azure's answer recording on for this session."""
    spec_check.configure(config)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Check the recorded answers; drift fails the session."""
    spec_check.finish(session)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, exitstatus: int, config: pytest.Config) -> None:
    """Report what the spec check saw."""
    spec_check.summary(terminalreporter, config)
