"""Hooks of every test session: the local Azure's ARM answers are recorded and checked against Azure's spec."""

from __future__ import annotations

pytest_plugins = ["tests.spec.session"]
