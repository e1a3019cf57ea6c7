"""The ``retire`` group's task bodies: ``decide`` what retention and clean-up delete, ``report`` what happened.

``decide`` gathers what the rules need (see ``facts``), logs the table and hands on, through XCom, the deletions
for the mapped ``delete`` task (its return value) and the decisions ``report`` needs (pushed under
``DECISIONS_XCOM_KEY``). ``report`` pulls those decisions and the deletions' outcomes, writes the retire report
for people (``<version>__<run>.retire.json`` next to verify's report, on its own host) and fails, after every
deletion ran, when clean-up met VMs that failed to provision. No task reads a file another task wrote: on Celery
the two may run on hosts that share no report folder.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from airflow.sdk.exceptions import AirflowFailException

from image_factory.catalogue import Catalogue
from image_factory.exceptions import ConfigurationError, ImageFactoryError
from image_factory.models import Plan
from image_factory.retention.decisions import Decision, RetentionPlan, limit_to_paths, merge
from image_factory.retention.in_flight import planned_versions
from image_factory.retention.table import render_table
from image_factory.run_context import RunContext
from image_factory.settings import report_dir
from image_factory.tasks import check_params, planned, read_catalogue

log = logging.getLogger(__name__)

#: Task ids of the group's steps, whose XCom ``report`` reads.
DECIDE_TASK_ID = "retire.decide"
DELETE_TASK_ID = "retire.delete"
#: XCom key under which ``decide`` hands its decisions to ``report`` (its return value is what ``delete`` maps).
DECISIONS_XCOM_KEY = "decisions"
#: Suffix of the report written next to verify's ``<version>__<run>.json`` report.
ARTIFACT_SUFFIX = ".retire.json"
NOTE_BOTH_OFF = "retire and clean_factory are both off"
NOTE_RETENTION_OFF = "retention is off for this run (param retire=false)"


@dataclass(frozen=True)
class Decided:
    """What ``decide`` hands on: the deletions to run (none in a dry run) and the decisions for ``report``."""

    #: One small dict per deletion, for the mapped ``delete`` task (catalogue versions add their ``blobs``).
    deletions: list[dict[str, Any]]
    #: JSON document: ``dag_run_id``, ``version``, ``dry_run``, ``retire``, ``clean_factory``, ``images_to_save``,
    #: ``deletions`` (decided, also in a dry run), ``kept``, ``notes``, ``table``.
    decisions: dict[str, Any]


def deletion_item(decision: Decision, catalogue: Catalogue) -> dict[str, Any]:
    """Return one deletion as the small dict the mapped ``delete`` task gets (catalogue versions: their blobs)."""
    item = decision.to_dict()
    if decision.kind == "catalogue_version":
        item["blobs"] = catalogue.blobs_of(decision.image_path or "", decision.version or "")
    return item


def artifact_path(version: str, run_id: str) -> Path:
    """Return where the retire report of a run goes (next to verify's report)."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", run_id)[:120]
    return report_dir() / f"{version}__{safe}{ARTIFACT_SUFFIX}"


def _decide_plan(run: RunContext, catalogue: Catalogue, plan: Plan) -> RetentionPlan:
    """Run retention (unless ``retire`` is off) and clean-up (when ``clean_factory`` is on) on what Azure holds."""
    from image_factory.retention.facts import cleanup_decisions, retention_decisions  # noqa: PLC0415 - light parsing

    parts: list[RetentionPlan] = []
    if run.params.retire:
        parts.append(retention_decisions(run, catalogue, in_flight=planned_versions(plan)))
    else:
        parts.append(RetentionPlan(notes=(NOTE_RETENTION_OFF,)))
    if run.params.clean_factory:
        parts.append(cleanup_decisions(run, catalogue))
    return limit_to_paths(merge(*parts), run.params.image_paths)


def decisions_of(run: RunContext, plan: Plan | None) -> Decided:
    """Decide what retention and factory clean-up delete and log the table; return the deletions to map over
    (none in a dry run, or when both ``retire`` and ``clean_factory`` are off) and the decisions for ``report``."""
    params = run.params
    header = {"dag_run_id": run.run_id, "version": run.version, "dry_run": params.dry_run}
    if not params.retire and not params.clean_factory:
        log.info("Nothing to do: params retire and clean_factory are both off")
        return Decided([], {**header, "deletions": [], "kept": [], "notes": [NOTE_BOTH_OFF]})
    if plan is None:
        # A failed plan never comes back: fail now instead of retrying for minutes.
        raise AirflowFailException(
            "retire needs this run's plan to know which versions are in flight: the plan task failed or did not "
            "run (see its log); nothing was retired"
        )
    problems = check_params(params, run.config)
    if problems:
        raise ConfigurationError("The run's params do not match the configuration", problems)
    catalogue = read_catalogue(run)
    combined = _decide_plan(run, catalogue, plan)
    table = render_table(combined, dry_run=params.dry_run)
    log.info("%s:\n%s", "Dry run: retention would do this" if params.dry_run else "Retention and clean-up", table)
    items = [deletion_item(d, catalogue) for d in combined.deletions]
    decisions: dict[str, Any] = {
        **header,
        "retire": params.retire,
        "clean_factory": params.clean_factory,
        "images_to_save": run.config.factory.images_to_save,
        "deletions": items,
        "kept": [k.to_dict() for k in combined.kept],
        "notes": list(combined.notes),
        "table": table,
    }
    if params.dry_run:
        log.info("Dry run: %d deletion(s) would be made; none is", len(items))
        return Decided([], decisions)
    return Decided(items, decisions)


def decide(run: RunContext) -> list[dict[str, Any]]:
    """The ``decide`` task: hand the decisions to ``report`` through XCom; return the deletions to map over."""
    decided = decisions_of(run, planned(run))
    # report may run on another host: it gets the decisions through XCom, never from this task's disk.
    run.xcom().xcom_push(key=DECISIONS_XCOM_KEY, value=decided.decisions)
    return decided.deletions


def _write(path: Path, document: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")


def report(run: RunContext) -> dict[str, Any]:
    """The ``report`` task: pull decide's decisions and the deletions' outcomes from XCom and record them."""
    ti = run.xcom()
    count = len(ti.xcom_pull(task_ids=DECIDE_TASK_ID) or [])
    outcomes = ti.xcom_pull(task_ids=DELETE_TASK_ID, map_indexes=list(range(count))) if count else []
    return record(ti.xcom_pull(task_ids=DECIDE_TASK_ID, key=DECISIONS_XCOM_KEY), outcomes)


def record(decisions: Mapping[str, Any] | None, outcomes: Iterable[Mapping[str, Any] | None] | None) -> dict[str, Any]:
    """Write decide's decisions and the deletions' outcomes as the retire report; fail naming the factory VMs
    that failed to provision (after every deletion ran)."""
    if not decisions:
        raise ImageFactoryError("retire.decide handed over no decisions (it failed or did not run); see its log")
    done = [dict(o) for o in outcomes or [] if o]
    document = {**decisions, "outcomes": done}
    path = artifact_path(str(decisions["version"]), str(decisions["dag_run_id"]))
    _write(path, document)
    log.info("Retention decisions and outcomes written to %s", path)
    deletions = list(document.get("deletions", []))
    dry_run = bool(document.get("dry_run"))
    counts: dict[str, int] = {}
    for outcome in done:
        key = str(outcome.get("outcome", "?")).split(":", 1)[0]
        counts[key] = counts.get(key, 0) + 1
    log.info(
        "Retention: %d decided, outcomes %s%s",
        len(deletions),
        ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none",
        " (dry run)" if dry_run else "",
    )
    errors = [d for d in deletions if d.get("error")]
    if errors and not dry_run:
        raise ImageFactoryError(
            "Factory clean-up met VMs that had failed to provision (deleted unless their delete task failed); "
            "check their templates and the lab:"
            + "".join(f"\n  - {d['where']} / {d['name']}: {d['reason']}" for d in errors)
        )
    for d in errors:
        log.warning("Dry run: %s / %s would be deleted: %s", d["where"], d["name"], d["reason"])
    return {"dry_run": dry_run, "decided": len(deletions), "outcomes": counts, "artifact": str(path)}
