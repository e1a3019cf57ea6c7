"""Deferrable operators of the factory: capture a factory VM, distribute an image to a lab."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from image_factory.configuration import FactorySettings


def factory_settings() -> FactorySettings:
    """Load factory.json from the configured folder (a local file read) at execution time."""
    from image_factory.configuration import load_factory_settings  # noqa: PLC0415 - keep DAG parsing light
    from image_factory.settings import config_dir  # noqa: PLC0415

    return load_factory_settings(config_dir())


def poll_seconds(value: Any, default: float) -> float:
    """Turn a (possibly templated, so string) poll interval into seconds, at least 0.1."""
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return default
    return max(seconds, 0.1)


def require_keys(value: Any, required: Sequence[str], what: str, hint: str) -> None:
    """Refuse a dict argument that lacks ``required`` keys (a templated string is only known at run time)."""
    if isinstance(value, dict):
        missing = [k for k in required if k not in value]
        if missing:
            raise ValueError(f"{what} lacks {', '.join(missing)}: {hint}")
