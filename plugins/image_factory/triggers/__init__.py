"""Triggers of the factory: wait in the triggerer for blob copies and custom image creation."""

from __future__ import annotations

from typing import Any

from airflow.triggers.base import TriggerEvent


def event(payload: dict[str, Any]) -> TriggerEvent:
    """Build a ``TriggerEvent`` (typed wrapper: the class itself is untyped)."""
    return TriggerEvent(payload)  # type: ignore[no-untyped-call]
