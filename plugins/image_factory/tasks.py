"""Bodies of the DAG's ``@task`` steps: validate, list capture jobs, plan, hand over the waves, verify.

Each takes the run's :class:`~image_factory.run_context.RunContext` (params, day, configuration, hooks), so it
can be unit-tested without Airflow running. Azure is reached only through the context's hooks, never at import.
What one step hands the next travels by XCom under the keys below, never through a file.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from image_factory import imagepaths, inventories, naming, uploads_left
from image_factory.build.outcomes import build_summary, built_vm_names
from image_factory.capture_rules import CaptureDecision, decide_captures, select_candidates, source_of
from image_factory.catalogue import Catalogue, build_catalogue
from image_factory.configuration import Configuration
from image_factory.exceptions import ConfigurationError, ImageFactoryError
from image_factory.fanout import fanout_waves
from image_factory.fleet.model import behind_labs, build_fleet, stale_labs
from image_factory.fleet.snapshot import FLEET_XCOM_KEY, build_snapshot
from image_factory.models import LabInventory, LabRef, Pair, Plan
from image_factory.planner import plan
from image_factory.redact import mask
from image_factory.report import build_matrix, plan_table
from image_factory.run_context import RunContext, RunParams, fails_fast
from image_factory.settings import report_dir

log = logging.getLogger(__name__)

#: Task ids and XCom keys of what ``plan`` hands the later steps.
PLAN_TASK_ID = "plan"
PLAN_XCOM_KEY = "plan"
REGIONAL_XCOM_KEY = "regional"
#: Task id of the step that lists the capture jobs, and the XCom key of its per-ImagePath summary for verify.
CAPTURE_JOBS_TASK_ID = "capture.list_factory_vms"
CAPTURE_SUMMARY_XCOM_KEY = "capture_summary"


def check_params(params: RunParams, config: Configuration) -> list[str]:
    """Return the problems of the run's params against the configuration (unknown labs or ImagePaths)."""
    problems = list(params.problems)
    known = {lab.lab_name.casefold() for lab in config.labs}
    for name in params.labs:
        if name.casefold() not in known:
            listed = ", ".join(sorted(lab.lab_name for lab in config.labs))
            problems.append(f"param labs: {name!r} is not a lab in labs.json (known: {listed})")
    for name, paths in (
        ("image_paths", params.image_paths),
        ("recapture", params.recapture),
        ("build_paths", params.build_paths),
    ):
        for path in paths:
            if not imagepaths.selected([path], config.golden_images):
                problems.append(f"param {name}: {path!r} selects no golden image under GoldenImages/")
    return problems


def _checked_config(run: RunContext) -> Configuration:
    """Return the run's configuration, refusing params that do not match it."""
    problems = check_params(run.params, run.config)
    if problems:
        raise ConfigurationError("The run's params do not match the configuration", problems)
    return run.config


def checked_config(run: RunContext) -> Configuration:
    """Return the run's configuration, refusing params that do not match it (``ConfigurationError``)."""
    return _checked_config(run)


@fails_fast(ConfigurationError)
def validate_config(run: RunContext) -> dict[str, Any]:
    """Load and validate the configuration and the run's params; raise naming every problem.

    Loading the configuration logs each of its warnings (what the factory ignores or does instead of failing).
    """
    config = _checked_config(run)
    log.info(
        "Configuration %s is valid: %d labs, %d golden images, %d warning(s)",
        config.config_dir,
        len(config.labs),
        len(config.golden_images),
        len(config.warnings),
    )
    return {
        "labs": [lab.lab_name for lab in config.labs],
        "golden_images": list(config.golden_images),
        "factory_lab": config.factory.lab_name,
        "warnings": [str(w) for w in config.warnings],
    }


def capture_skip_reason(run: RunContext) -> str | None:
    """Return why this run captures nothing (capture off, dry run, backfill), or None."""
    if not run.params.capture:
        return "capture is off for this run (param capture=false)"
    if run.params.dry_run:
        return "dry run: nothing is captured"
    if run.is_backfill:
        return "a backfill never captures: it distributes what the catalogue already holds"
    return None


def read_catalogue(run: RunContext) -> Catalogue:
    """Read the factory catalogue (list the container, download the sidecars)."""
    sidecars, vhds = run.storage().list_catalogue(run.config.factory.container)
    catalogue = build_catalogue(sidecars, vhds)
    for problem in catalogue.problems:
        log.warning("Catalogue: %s", problem)
    return catalogue


def decide_capture(run: RunContext) -> CaptureDecision:
    """List the factory VMs, read each candidate's OS disk once (``Disks_Get``) and decide what to capture."""
    factory = run.config.factory
    vms = run.devtestlabs().list_vms(factory.subscription_id, factory.resource_group, factory.lab_name)
    built = built_vm_names(run)
    if built is not None:
        # A build night captures what it built, never a hand-built VM of the same ImagePath.
        log.info("This run builds: capturing only the %d VM(s) it built", len(built))
        vms = [vm for vm in vms if vm.name.casefold() in built]
    candidates, skipped = select_candidates(vms, run.config.golden_images)
    if run.params.image_paths:
        candidates = [c for c in candidates if imagepaths.selected(run.params.image_paths, [c.image_path])]
    compute = run.compute() if candidates else None
    sources = {
        c.vm.name: source_of(c.vm, compute.disk_fingerprint(c.vm.os_disk_id) if compute and c.vm.os_disk_id else None)
        for c in candidates
    }
    decided = decide_captures(
        candidates, sources, read_catalogue(run), run.day, recapture=run.params.recapture, run_id=run.run_id
    )
    return CaptureDecision(decided.jobs, skipped + decided.skipped, decided.summaries)


@fails_fast(ConfigurationError)
def list_capture_jobs(run: RunContext) -> list[dict[str, Any]]:
    """Return the capture jobs of this run (as dicts for mapping), or [] when the run must not capture.

    Hands verify, through XCom, one line per ImagePath considered: ``captured <version> from <vm>`` or
    ``unchanged since <version>``.
    """
    _checked_config(run)  # it runs after the builds whatever they did (all_done): refuse what validate refused
    reason = capture_skip_reason(run)
    if reason:
        log.info("Not capturing: %s", reason)
        run.xcom().xcom_push(key=CAPTURE_SUMMARY_XCOM_KEY, value={})
        return []
    decided = decide_capture(run)
    for vm in decided.skipped:
        (log.warning if vm.is_warning else log.info)("Skipping VM %s: %s", vm.vm_name, vm.reason)
    run.xcom().xcom_push(key=CAPTURE_SUMMARY_XCOM_KEY, value=decided.summary())
    names = ", ".join(f"{j.vm_name} as {j.version}" for j in decided.jobs) or "-"
    log.info("Capturing %d VM(s) on %s: %s", len(decided.jobs), run.day, names)
    return [job.to_dict() for job in decided.jobs]


def take_inventories(run: RunContext, labs: Sequence[LabRef], *, locate: bool = True) -> dict[str, LabInventory]:
    """Inventory every lab once, ``ArmBudget.Concurrency`` at a time and paced (``image_factory.inventories``)."""
    return inventories.take_inventories(
        run.devtestlabs(), labs, locate=locate, concurrency=run.config.factory.arm_budget.concurrency
    )


def make_plan(run: RunContext) -> Plan:
    """Read the catalogue and one inventory per lab, and plan the distribution."""
    # plan runs even when capture failed (all_done), so it re-checks what validate_config refused.
    config = _checked_config(run)
    factory = config.factory
    catalogue = read_catalogue(run)
    factory_lab = run.devtestlabs().get_lab(factory.subscription_id, factory.resource_group, factory.lab_name)
    result = plan(
        labs=config.labs,
        catalogue_images=catalogue.images,
        inventories=take_inventories(run, run.selected_labs()),
        factory_location=str(factory_lab.location or ""),
        images_to_save=factory.images_to_save,
        golden_images=config.golden_images,
        lab_filter=list(run.params.labs) or None,
        path_filter=list(run.params.image_paths) or None,
    )
    log.info("Distribution plan:\n%s", plan_table(result))
    return result


def pairs_for_mapping(result: Plan, params: RunParams) -> dict[str, list[dict[str, Any]]]:
    """Return the two waves to map over (``direct``: from the factory; ``regional``: from a seed lab).

    Both are empty in a dry run.
    """
    if params.dry_run:
        log.info("Dry run: %d pair(s) would be distributed; nothing is", len(result.pairs))
        return {"direct": [], "regional": []}
    direct, regional = fanout_waves(result.pairs)
    if regional:
        log.info(
            "Region fan-out: %d pair(s) copy from a lab of their own region instead of across regions",
            len(regional),
        )
    return {"direct": [p.to_dict() for p in direct], "regional": [p.to_dict() for p in regional]}


@fails_fast(ConfigurationError)
def plan_distribution(run: RunContext) -> list[dict[str, Any]]:
    """Plan the run; hand the plan and the regional wave to later steps; return the direct wave to map over."""
    result = make_plan(run)
    waves = pairs_for_mapping(result, run.params)
    ti = run.xcom()
    ti.xcom_push(key=PLAN_XCOM_KEY, value=result.to_dict())
    ti.xcom_push(key=REGIONAL_XCOM_KEY, value=waves["regional"])
    return waves["direct"]


def planned(run: RunContext) -> Plan | None:
    """Return this run's plan as ``plan`` handed it over, or None when plan failed or did not run."""
    document = run.xcom().xcom_pull(task_ids=PLAN_TASK_ID, key=PLAN_XCOM_KEY)
    return Plan.from_dict(dict(document)) if document is not None else None


def regional_pairs(run: RunContext) -> list[dict[str, Any]]:
    """Return the pairs that copy from a lab of their own region (region fan-out), after the direct wave."""
    return list(run.xcom().xcom_pull(task_ids=PLAN_TASK_ID, key=REGIONAL_XCOM_KEY) or [])


def cleanup_seed_uploads(run: RunContext) -> int:
    """Delete the uploads region seeds kept for their region (already gone = fine); return how many.

    Deleted with the ARM connection's Entra token (the upload SAS grants no delete). One the principal may not
    delete (no *Storage Blob Data Contributor* on the lab's storage account) stays, and is handed to verify's
    report under ``uploads_left.XCOM_KEY``: this task never fails for it.
    """
    from image_factory.hooks.uploads import delete_upload  # noqa: PLC0415 - light DAG parsing

    direct = run.xcom().xcom_pull(task_ids=PLAN_TASK_ID)
    seeds = [Pair.from_dict(dict(p)) for p in direct or () if p.get("keep_upload")]
    left: list[dict[str, Any]] = []
    deleted = 0
    if seeds:
        arm = run.devtestlabs()
        for seed in seeds:
            url = arm.generate_upload_uri(
                seed.subscription_id, seed.resource_group, seed.lab_name, naming.vhd_blob(seed.image_name)
            )
            mask(url)
            verify = arm.settings.connection_verify
            outcome = delete_upload(url, arm.clients.credential, lab=seed.lab_name, verify=verify)
            if outcome.status == "deleted":
                deleted += 1
                log.info("%s: deleted the upload kept for its region", seed.label)
            elif outcome.left is not None:
                left.append(outcome.left.to_dict())
                log.info("%s: the upload kept for its region stays (%s)", seed.label, outcome.left.reason)
    run.xcom().xcom_push(key=uploads_left.XCOM_KEY, value=left)
    return deleted


def _report_path(day: str, run_id: str) -> Path:
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", run_id)[:120]
    return report_dir() / f"{day}__{safe}.json"


def write_report(document: Mapping[str, Any], day: str, run_id: str) -> Path:
    """Write the verify report as JSON (for people: no task reads it) and return its path."""
    path = _report_path(day, run_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")
    return path


def capture_summary(run: RunContext) -> dict[str, str]:
    """Return what the capture step said of each ImagePath (empty when it captured nothing or did not run)."""
    return dict(run.xcom().xcom_pull(task_ids=CAPTURE_JOBS_TASK_ID, key=CAPTURE_SUMMARY_XCOM_KEY) or {})


def _verify_document(run: RunContext, result: Plan, inventories: Mapping[str, LabInventory]) -> dict[str, Any]:
    labs = run.selected_labs()
    capture = capture_summary(run)
    log.info(
        "Capture:%s", "".join(f"\n  {path}: {text}" for path, text in sorted(capture.items())) or " nothing this run"
    )
    matrix = build_matrix(labs, result.expected, inventories)
    matrix_text = matrix.render()
    document: dict[str, Any] = {
        "run_id": run.run_id,
        "version": run.day,
        "dry_run": run.params.dry_run,
        "matrix": matrix.to_dict(),
        "matrix_text": matrix_text,
        "plan_table": plan_table(result),
        "capture": capture,
        "build": build_summary(run),
    }
    document["uploads_left"] = _uploads_left(run)
    if run.params.dry_run:
        # Nothing was distributed: the report is what a real run would do, and the labs as they are now.
        log.info("Dry run: this is what a real run would do:\n%s", document["plan_table"])
        log.info("Labs now:\n%s", matrix_text)
        document["would_distribute"] = [p.label for p in result.pairs]
        # A lab that cannot be read would fail the real run too: a dry run says so.
        document["problems"] = matrix.lab_problems()
    else:
        log.info("Labs after the run:\n%s", matrix_text)
        document["problems"] = matrix.problems()
    return document


def fleet_snapshot(run: RunContext, inventories: Mapping[str, LabInventory], problems: Sequence[str]) -> dict[str, Any]:
    """Return the fleet snapshot of this verify (what the labs hold, the catalogue, this run's pairs)."""
    try:
        catalogue = read_catalogue(run)
    except Exception as exc:  # the view's data never fails verify
        log.warning("Fleet snapshot without the catalogue: it could not be read (%s)", exc)
        catalogue = Catalogue()
    return build_snapshot(
        run_id=run.run_id,
        day=run.day,
        dry_run=run.params.dry_run,
        all_labs=run.config.labs,
        inventories=inventories,
        inventoried=run.selected_labs(),
        catalogue=catalogue,
        golden_images=run.config.golden_images,
        waves=[list(run.xcom().xcom_pull(task_ids=PLAN_TASK_ID) or ()), regional_pairs(run)],
        problems=problems,
        freshness_days=run.config.factory.freshness_days,
    )


def _uploads_left(run: RunContext) -> list[dict[str, Any]]:
    """Say once per lab which uploads this run left (and what they cost, and the fix); never a problem."""
    found = uploads_left.collect(run.xcom())
    labs = uploads_left.by_lab(found, run.devtestlabs().settings.principal) if found else []
    for lab in labs:
        log.warning("%s", lab.message())
    return [lab.to_dict() for lab in labs]


def verify(run: RunContext) -> dict[str, Any]:
    """Re-inventory the labs, compare with the plan's expectations, write the report; raise on problems.

    Before it may raise, hands the fleet view its snapshot (XCom key ``fleet``), so a failed night shows too.
    """
    result = planned(run)
    if result is None:
        raise ImageFactoryError("verify found no plan: the plan task failed or did not run; see its log")
    labs = run.selected_labs()
    inventories = take_inventories(run, labs, locate=False)
    document = _verify_document(run, result, inventories)
    path = write_report(document, run.day, run.run_id)
    log.info("Report written to %s", path)
    problems = document["problems"]
    snapshot = fleet_snapshot(run, inventories, problems)
    run.xcom().xcom_push(key=FLEET_XCOM_KEY, value=snapshot)
    if problems:
        raise ImageFactoryError(
            "Some labs cannot be read or miss images they should have:" + "".join(f"\n  - {p}" for p in problems)
        )
    fleet = build_fleet([snapshot])
    return {
        "dry_run": run.params.dry_run,
        "expected": len(result.expected),
        "would_distribute": len(result.pairs) if run.params.dry_run else 0,
        "uploads_left": {lab["lab"]: lab["bytes"] for lab in document["uploads_left"]},
        "report": str(path),
        # Of the labs this run read: those behind the catalogue (or missing an image) and those stale.
        "behind_labs": [row.name for row in behind_labs(fleet) if row.status != "unknown"],
        "stale_labs": [row.name for row in stale_labs(fleet)],
    }


def on_failure(context: Mapping[str, Any]) -> None:
    """Log a failed task; the place to hook notifications (mail, Teams, a ticket) in."""
    ti = context.get("task_instance") or context.get("ti")
    exc = context.get("exception")
    log.error(
        "Image factory task failed: %s (run %s): %s",
        getattr(ti, "task_id", "?"),
        getattr(context.get("dag_run"), "run_id", "?"),
        exc,
    )
