"""The ``retire`` group's task bodies: ``decide`` what retention and clean-up delete, ``report`` what happened.

``decide`` gathers what the rules need (see ``facts``), logs the table and hands on, through XCom, the deletions
for the mapped ``delete`` task (its return value) and the decisions ``report`` needs (pushed under
``DECISIONS_XCOM_KEY``). ``report`` takes those decisions and the deletions' outcomes, writes the retire report
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

from image_factory.catalogue import Catalogue
from image_factory.config import Configuration, load_configuration
from image_factory.exceptions import ConfigurationError, ImageFactoryError
from image_factory.models import Plan
from image_factory.retention.decisions import Decision, RetentionPlan, limit_to_paths, merge
from image_factory.retention.in_flight import planned_versions
from image_factory.retention.table import render_table
from image_factory.settings import config_dir, report_dir
from image_factory.tasks import check_params, read_catalogue

log = logging.getLogger(__name__)

#: Params of the DAG this group reads (besides ``dry_run``, ``labs`` and ``image_paths``).
PARAM_RETIRE = "retire"
PARAM_CLEAN_FACTORY = "clean_factory"
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


def _names(values: Any) -> list[str]:
    if not values:
        return []
    return [str(v).strip() for v in values if str(v).strip()]


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


def _decide_plan(params: Mapping[str, Any], config: Configuration, catalogue: Catalogue, plan: Plan) -> RetentionPlan:
    """Run retention (unless ``retire`` is off) and clean-up (when ``clean_factory`` is on) on what Azure holds."""
    from image_factory.hooks.devtestlabs import DevTestLabsHook  # noqa: PLC0415 - light DAG parsing
    from image_factory.retention.facts import cleanup_decisions, retention_decisions  # noqa: PLC0415

    arm = DevTestLabsHook(arm_conn_id=config.factory.arm_conn_id)
    parts: list[RetentionPlan] = []
    if params.get(PARAM_RETIRE, True):
        parts.append(
            retention_decisions(
                config,
                arm,
                catalogue,
                in_flight=planned_versions(plan),
                lab_filter=_names(params.get("labs")) or None,
                dry_run=bool(params.get("dry_run", False)),
            )
        )
    else:
        parts.append(RetentionPlan(notes=(NOTE_RETENTION_OFF,)))
    if params.get(PARAM_CLEAN_FACTORY, False):
        parts.append(cleanup_decisions(config, arm, catalogue))
    return limit_to_paths(merge(*parts), _names(params.get("image_paths")))


def decide(
    params: Mapping[str, Any],
    *,
    plan_doc: Mapping[str, Any] | None,
    version: str,
    run_id: str,
    folder: Path | None = None,
) -> Decided:
    """Decide what retention and factory clean-up delete; log the table; return the deletions to map over (none
    in a dry run, or when both ``retire`` and ``clean_factory`` are off) and the decisions for ``report``."""
    retire_on = bool(params.get(PARAM_RETIRE, True))
    clean_on = bool(params.get(PARAM_CLEAN_FACTORY, False))
    dry_run = bool(params.get("dry_run", False))
    header = {"dag_run_id": run_id, "version": version, "dry_run": dry_run}
    if not retire_on and not clean_on:
        log.info("Nothing to do: params retire and clean_factory are both off")
        return Decided([], {**header, "deletions": [], "kept": [], "notes": [NOTE_BOTH_OFF]})
    if plan_doc is None:
        raise ImageFactoryError(
            "retire needs this run's plan to know which versions are in flight: the plan task failed or did not "
            "run (see its log); nothing was retired"
        )
    config = load_configuration(folder or config_dir())
    problems = check_params(params, config)
    if problems:
        raise ConfigurationError("The run's params do not match the configuration", problems)
    catalogue: Catalogue = read_catalogue(config)
    combined = _decide_plan(params, config, catalogue, Plan.from_dict(dict(plan_doc)))
    table = render_table(combined, dry_run=dry_run)
    log.info("%s:\n%s", "Dry run: retention would do this" if dry_run else "Retention and clean-up", table)
    items = [deletion_item(d, catalogue) for d in combined.deletions]
    decisions: dict[str, Any] = {
        **header,
        "retire": retire_on,
        "clean_factory": clean_on,
        "images_to_save": config.factory.images_to_save,
        "deletions": items,
        "kept": [k.to_dict() for k in combined.kept],
        "notes": list(combined.notes),
        "table": table,
    }
    if dry_run:
        log.info("Dry run: %d deletion(s) would be made; none is", len(items))
        return Decided([], decisions)
    return Decided(items, decisions)


def _write(path: Path, document: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")


def report(decisions: Mapping[str, Any] | None, outcomes: Iterable[Mapping[str, Any] | None] | None) -> dict[str, Any]:
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
