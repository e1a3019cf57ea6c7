"""Bodies of the DAG's ``@task`` steps: validate, list capture jobs, plan, verify.

The DAG file only wires these; each takes plain values (params, dates, run type) so it can be unit-tested
without Airflow running. Azure is reached only through the hooks, never at import time.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from image_factory import imagepaths, naming
from image_factory.configuration import Configuration, load_configuration
from image_factory.exceptions import ConfigurationError, ImageFactoryError
from image_factory.models import LabInventory, LabRef, Pair, Plan
from image_factory.settings import config_dir, report_dir

log = logging.getLogger(__name__)

BACKFILL_RUN_TYPE = "backfill"


def _names(values: Any) -> list[str]:
    if not values:
        return []
    return [str(v).strip() for v in values if str(v).strip()]


def check_params(params: Mapping[str, Any], config: Configuration) -> list[str]:
    """Return the problems of the run's params against the configuration (unknown labs or ImagePaths)."""
    problems: list[str] = []
    known = {lab.lab_name.casefold() for lab in config.labs}
    for name in _names(params.get("labs")):
        if name.casefold() not in known:
            listed = ", ".join(sorted(lab.lab_name for lab in config.labs))
            problems.append(f"param labs: {name!r} is not a lab in labs.json (known: {listed})")
    for path in _names(params.get("image_paths")):
        if not imagepaths.selected([path], config.golden_images):
            problems.append(f"param image_paths: {path!r} selects no golden image under GoldenImages/")
    poll = params.get("copy_poll_seconds", 1)
    if not isinstance(poll, int) or isinstance(poll, bool) or poll < 1:
        problems.append(f"param copy_poll_seconds: {poll!r} must be an integer of at least 1")
    return problems


def validate_config(params: Mapping[str, Any], folder: Path | None = None) -> dict[str, Any]:
    """Load and validate the configuration and the run's params; raise naming every problem."""
    config = load_configuration(folder or config_dir())
    problems = check_params(params, config)
    if problems:
        raise ConfigurationError("The run's params do not match the configuration", problems)
    summary = {
        "labs": [lab.lab_name for lab in config.labs],
        "golden_images": list(config.golden_images),
        "factory_lab": config.factory.lab_name,
    }
    log.info(
        "Configuration %s is valid: %d labs, %d golden images",
        config.config_dir,
        len(config.labs),
        len(config.golden_images),
    )
    return summary


def run_version(logical_date: datetime | None, run_after: datetime | None) -> str:
    """Return the run's version (UTC date of its logical date, or of ``run_after`` without one)."""
    return naming.version_for(logical_date, run_after or datetime.now(UTC))


def capture_skip_reason(params: Mapping[str, Any], run_type: str | None) -> str | None:
    """Return why this run captures nothing (capture off, dry run, backfill), or None."""
    if not params.get("capture", True):
        return "capture is off for this run (param capture=false)"
    if params.get("dry_run", False):
        return "dry run: nothing is captured"
    if str(run_type or "").lower().endswith(BACKFILL_RUN_TYPE):
        return "a backfill never captures: it distributes what the catalogue already holds"
    return None


def read_catalogue(config: Configuration) -> Any:
    """Read the factory catalogue (list the container, download the sidecars)."""
    from image_factory.catalogue import build_catalogue  # noqa: PLC0415 - keep imports light
    from image_factory.hooks.storage import FactoryStorageHook  # noqa: PLC0415

    storage = FactoryStorageHook(wasb_conn_id=config.factory.storage_conn_id)
    sidecars, vhds = storage.list_catalogue(config.factory.container)
    catalogue = build_catalogue(sidecars, vhds)
    for problem in catalogue.problems:
        log.warning("Catalogue: %s", problem)
    return catalogue


def list_capture_jobs(
    params: Mapping[str, Any],
    *,
    run_type: str | None,
    logical_date: datetime | None,
    run_after: datetime | None,
    folder: Path | None = None,
) -> list[dict[str, Any]]:
    """Return the capture jobs of this run (as dicts for mapping), or [] when the run must not capture."""
    reason = capture_skip_reason(params, run_type)
    if reason:
        log.info("Not capturing: %s", reason)
        return []
    from image_factory.capture_rules import select_candidates  # noqa: PLC0415
    from image_factory.hooks.devtestlabs import DevTestLabsHook  # noqa: PLC0415

    config = load_configuration(folder or config_dir())
    version = run_version(logical_date, run_after)
    factory = config.factory
    vms = DevTestLabsHook(arm_conn_id=factory.arm_conn_id).list_vms(
        factory.subscription_id, factory.resource_group, factory.lab_name
    )
    jobs, skipped = select_candidates(vms, read_catalogue(config), version, config.golden_images)
    for vm in skipped:
        (log.warning if vm.is_warning else log.info)("Skipping VM %s: %s", vm.vm_name, vm.reason)
    selectors = _names(params.get("image_paths"))
    if selectors:
        jobs = [j for j in jobs if imagepaths.selected(selectors, [j.image_path])]
    log.info("Capturing %d VM(s) for version %s: %s", len(jobs), version, ", ".join(j.vm_name for j in jobs) or "-")
    return [job.to_dict() for job in jobs]


def take_inventories(config: Configuration, labs: Sequence[LabRef], *, locate: bool = True) -> dict[str, LabInventory]:
    """Inventory every lab once (one lab read + one custom image list each; ``locate=False``: the list alone)."""
    from image_factory.hooks.devtestlabs import DevTestLabsHook  # noqa: PLC0415

    hook = DevTestLabsHook(arm_conn_id=config.factory.arm_conn_id)
    inventories: dict[str, LabInventory] = {}
    for lab in labs:
        inventory = hook.inventory(lab, locate=locate)
        if inventory.status != "ok":
            log.warning("Lab %s: %s (%s)", lab.lab_name, inventory.status, inventory.message)
        inventories[lab.key] = inventory
    return inventories


def _selected_labs(config: Configuration, params: Mapping[str, Any]) -> list[LabRef]:
    wanted = {n.casefold() for n in _names(params.get("labs"))}
    return [lab for lab in config.labs if not wanted or lab.lab_name.casefold() in wanted]


def make_plan(
    params: Mapping[str, Any],
    *,
    logical_date: datetime | None,
    run_after: datetime | None,
    folder: Path | None = None,
) -> Plan:
    """Read the catalogue and one inventory per lab, and plan the distribution."""
    from image_factory.hooks.devtestlabs import DevTestLabsHook  # noqa: PLC0415
    from image_factory.planner import plan  # noqa: PLC0415
    from image_factory.report import plan_table  # noqa: PLC0415

    config = load_configuration(folder or config_dir())
    problems = check_params(params, config)
    if problems:
        # plan runs even when capture failed (all_done), so it re-checks what validate_config refused.
        raise ConfigurationError("The run's params do not match the configuration", problems)
    factory = config.factory
    catalogue = read_catalogue(config)
    factory_lab = DevTestLabsHook(arm_conn_id=factory.arm_conn_id).get_lab(
        factory.subscription_id, factory.resource_group, factory.lab_name
    )
    labs = _selected_labs(config, params)
    result = plan(
        labs=config.labs,
        catalogue_images=catalogue.images,
        inventories=take_inventories(config, labs),
        factory_location=str(factory_lab.location or ""),
        run_version=run_version(logical_date, run_after),
        images_to_save=factory.images_to_save,
        lab_filter=_names(params.get("labs")) or None,
        path_filter=_names(params.get("image_paths")) or None,
    )
    log.info("Distribution plan:\n%s", plan_table(result))
    return result


def pairs_for_mapping(result: Plan, params: Mapping[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Return the two waves to map over (``direct``: from the factory; ``regional``: from a seed lab).

    Both are empty in a dry run.
    """
    from image_factory.planner import fanout_waves  # noqa: PLC0415

    if params.get("dry_run", False):
        log.info("Dry run: %d pair(s) would be distributed; nothing is", len(result.pairs))
        return {"direct": [], "regional": []}
    direct, regional = fanout_waves(result.pairs)
    if regional:
        log.info(
            "Region fan-out: %d pair(s) copy from a lab of their own region instead of across regions",
            len(regional),
        )
    return {"direct": [p.to_dict() for p in direct], "regional": [p.to_dict() for p in regional]}


def cleanup_seed_uploads(direct: Sequence[Mapping[str, Any]] | None) -> int:
    """Delete the uploads that region seeds kept for their region (already gone = fine); return how many."""
    from image_factory import naming  # noqa: PLC0415
    from image_factory.hooks.devtestlabs import DevTestLabsHook  # noqa: PLC0415
    from image_factory.hooks.storage import delete_sas_blob  # noqa: PLC0415
    from image_factory.redact import mask  # noqa: PLC0415

    seeds = [Pair.from_dict(dict(p)) for p in direct or () if p.get("keep_upload")]
    if not seeds:
        return 0
    settings = load_configuration(config_dir()).factory
    arm = DevTestLabsHook(arm_conn_id=settings.arm_conn_id)
    deleted = 0
    for seed in seeds:
        url = arm.generate_upload_uri(
            seed.subscription_id, seed.resource_group, seed.lab_name, naming.vhd_blob(seed.image_name)
        )
        mask(url)
        if delete_sas_blob(url, arm.settings.connection_verify):
            deleted += 1
            log.info("%s: deleted the upload kept for its region", seed.label)
    return deleted


def _report_path(version: str, run_id: str) -> Path:
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", run_id)[:120]
    return report_dir() / f"{version}__{safe}.json"


def write_report(document: Mapping[str, Any], version: str, run_id: str) -> Path:
    """Write the verify report as JSON and return its path."""
    path = _report_path(version, run_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")
    return path


def verify(
    plan_doc: Mapping[str, Any] | None,
    params: Mapping[str, Any],
    *,
    version: str,
    run_id: str,
    folder: Path | None = None,
) -> dict[str, Any]:
    """Re-inventory the labs, compare with the plan's expectations, write the report; raise on problems."""
    from image_factory.report import build_matrix, plan_table  # noqa: PLC0415

    if plan_doc is None:
        raise ImageFactoryError("verify found no plan: the plan task failed or did not run; see its log")
    result = Plan.from_dict(dict(plan_doc))
    config = load_configuration(folder or config_dir())
    labs = _selected_labs(config, params)
    matrix = build_matrix(labs, result.expected, take_inventories(config, labs, locate=False))
    dry_run = bool(params.get("dry_run", False))
    matrix_text = matrix.render()
    document: dict[str, Any] = {
        "run_id": run_id,
        "version": version,
        "dry_run": dry_run,
        "matrix": matrix.to_dict(),
        "matrix_text": matrix_text,
        "plan_table": plan_table(result),
    }
    if dry_run:
        # Nothing was distributed: the report is what a real run would do, and the labs as they are now.
        log.info("Dry run: this is what a real run would do:\n%s", document["plan_table"])
        log.info("Labs now:\n%s", matrix_text)
        document["would_distribute"] = [p.label for p in result.pairs]
        document["problems"] = []
    else:
        log.info("Labs after the run:\n%s", matrix_text)
        document["problems"] = matrix.problems()
    path = write_report(document, version, run_id)
    log.info("Report written to %s", path)
    problems = document["problems"]
    if problems:
        raise ImageFactoryError("Some labs miss images they should have:" + "".join(f"\n  - {p}" for p in problems))
    return {
        "dry_run": dry_run,
        "expected": len(result.expected),
        "would_distribute": len(result.pairs) if dry_run else 0,
        "report": str(path),
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
