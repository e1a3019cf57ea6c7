"""Retention's decisions: one row per thing deleted or kept (and why), and the plan that collects them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from image_factory import imagepaths

Kind = Literal["custom_image", "catalogue_version", "factory_vm"]
Action = Literal["delete", "keep"]

#: ``where`` of the factory catalogue's rows.
FACTORY = "(factory storage)"


@dataclass(frozen=True)
class Decision:
    """One row of the retention table: what, where, and why it goes (or stays)."""

    action: Action
    kind: Kind
    where: str
    name: str
    reason: str
    image_path: str | None = None
    version: str | None = None
    subscription_id: str | None = None
    resource_group: str | None = None
    error: bool = False
    #: A version the PowerShell factory made, adopted (AdoptPowerShellImages): ``delete`` re-checks that it still is.
    adopted: bool = False

    def to_dict(self) -> dict[str, Any]:
        """Return the row as the plain dict that crosses XCom (a deletion the mapped ``delete`` task gets)."""
        return {
            "action": self.action,
            "kind": self.kind,
            "where": self.where,
            "name": self.name,
            "reason": self.reason,
            "image_path": self.image_path,
            "version": self.version,
            "subscription_id": self.subscription_id,
            "resource_group": self.resource_group,
            "error": self.error,
            "adopted": self.adopted,
        }


@dataclass(frozen=True)
class RetentionPlan:
    """What to delete, what a careless rule would have deleted but is kept, and notes on what was not looked at."""

    deletions: tuple[Decision, ...] = ()
    kept: tuple[Decision, ...] = ()
    notes: tuple[str, ...] = ()


def merge(*plans: RetentionPlan) -> RetentionPlan:
    """Join plans in order (catalogue, factory lab, labs, factory VMs…)."""
    return RetentionPlan(
        deletions=tuple(d for p in plans for d in p.deletions),
        kept=tuple(k for p in plans for k in p.kept),
        notes=tuple(n for p in plans for n in p.notes),
    )


def limit_to_paths(plan: RetentionPlan, selectors: Sequence[str]) -> RetentionPlan:
    """Keep only the decisions about ImagePaths the run's ``image_paths`` param selects."""
    if not selectors:
        return plan

    def wanted(d: Decision) -> bool:
        return bool(d.image_path) and any(imagepaths.selects(s, d.image_path or "") for s in selectors)

    dropped = sum(1 for d in plan.deletions if not wanted(d))
    notes = list(plan.notes)
    if dropped:
        notes.append(f"{dropped} deletion(s) left for a run without an image_paths filter")
    return RetentionPlan(
        deletions=tuple(d for d in plan.deletions if wanted(d)),
        kept=tuple(k for k in plan.kept if wanted(k)),
        notes=tuple(notes),
    )
