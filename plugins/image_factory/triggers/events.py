"""The events the factory's triggers fire, one small type per kind, told apart by ``kind``.

An event travels as today's plain dict (``TriggerEvent(payload)``, JSON in the metadata DB): ``payload()``
writes it, ``parse_event`` reads it back in the operator's resume method. ``status`` is ``"success"`` or
``"error"``; ``message`` is what a person reads in the task log (never a SAS: it is redacted where it is made).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

from airflow.triggers.base import TriggerEvent

Status = Literal["success", "error"]


@dataclass(frozen=True, kw_only=True)
class _Event:
    status: Status
    label: str
    message: str


@dataclass(frozen=True, kw_only=True)
class CopyEvent(_Event):
    """A watched blob copy ended (success, failed/aborted, gone, replaced) or was still pending at its deadline."""

    kind: Literal["copy"] = "copy"
    blob: str
    copy_id: str | None = None
    size: int | None = None
    timeout: bool = False


@dataclass(frozen=True, kw_only=True)
class ImageEvent(_Event):
    """A custom image Succeeded, ended Failed/Canceled, vanished or was still provisioning at its deadline."""

    kind: Literal["image"] = "image"
    image_name: str
    provisioning_state: str | None = None
    timeout: bool = False


@dataclass(frozen=True, kw_only=True)
class ErrorEvent(_Event):
    """A step of the trigger raised (its type and redacted text are in ``message``)."""

    kind: Literal["error"] = "error"
    status: Status = "error"


FactoryEvent = CopyEvent | ImageEvent | ErrorEvent
_KINDS: dict[str, type[CopyEvent] | type[ImageEvent] | type[ErrorEvent]] = {
    "copy": CopyEvent,
    "image": ImageEvent,
    "error": ErrorEvent,
}


def payload(fired: FactoryEvent) -> dict[str, Any]:
    """Return the event as the plain dict a ``TriggerEvent`` carries."""
    return dataclasses.asdict(fired)


def trigger_event(fired: FactoryEvent) -> TriggerEvent:
    """Wrap the event for the triggerer (``TriggerEvent`` itself is untyped)."""
    return TriggerEvent(payload(fired))  # type: ignore[no-untyped-call]


def parse_event(data: dict[str, Any]) -> FactoryEvent:
    """Read an event dict back into its type; an unknown or missing ``kind`` reads as an ``ErrorEvent``."""
    cls = _KINDS.get(str(data.get("kind")))
    if cls is None:
        return ErrorEvent(label=str(data.get("label", "")), message=str(data.get("message", "unknown error")))
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in names})
