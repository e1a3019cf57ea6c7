"""What the ``build`` group hands later steps through XCom: the plan's summary and the VMs it built.

Capture reads :func:`built_vm_names` (a build night captures only the VMs this run built), the clean-up after
capture deletes them once captured, verify's report shows :func:`build_summary`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from image_factory.run_context import RunContext

LIST_TASK_ID = "build.list_builds"
BUILD_TASK_ID = "build.build_vm"
#: XCom key (on ``list_builds``) of ``{"building": bool, "dry_run": bool, "jobs": {ImagePath: description}}``.
SUMMARY_XCOM_KEY = "build_summary"


def _summary(run: RunContext) -> Mapping[str, Any]:
    return dict(run.xcom().xcom_pull(task_ids=LIST_TASK_ID, key=SUMMARY_XCOM_KEY) or {})


def built(run: RunContext) -> list[dict[str, Any]]:
    """Return the outcome of every build that succeeded (``image_path``, ``vm_name``, ``action``)."""
    ti = run.xcom()
    count = len(ti.xcom_pull(task_ids=LIST_TASK_ID) or [])
    outcomes = ti.xcom_pull(task_ids=BUILD_TASK_ID, map_indexes=list(range(count))) if count else []
    if isinstance(outcomes, Mapping):  # one map index comes back as its value alone
        outcomes = [outcomes]
    return [dict(o) for o in outcomes or () if isinstance(o, Mapping) and o.get("vm_name")]


def built_vm_names(run: RunContext) -> set[str] | None:
    """Return the (case-folded) names of the VMs this run built, or None when this run does not build."""
    if not _summary(run).get("building"):
        return None
    return {str(o["vm_name"]).casefold() for o in built(run)}


def build_summary(run: RunContext) -> dict[str, str]:
    """Return one line per template the run built or would build: ``built as VM …``, ``failed: see …``."""
    summary = _summary(run)
    jobs: Mapping[str, str] = summary.get("jobs") or {}
    if not summary.get("building"):
        prefix = "would build " if summary.get("dry_run") else ""
        return {path: f"{prefix}{text}" for path, text in jobs.items()}
    done = {str(o["image_path"]): str(o["vm_name"]) for o in built(run)}
    return {
        path: f"built as VM {done[path]}" if path in done else f"build failed ({text}): see the task build.build_vm"
        for path, text in jobs.items()
    }
