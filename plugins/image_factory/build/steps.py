"""The ``build`` steps' bodies: plan the builds (``list_builds``) and clean the built VMs after capture.

Both take the run's :class:`~image_factory.run_context.RunContext`, so they are unit-tested without Airflow.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from image_factory.build.outcomes import SUMMARY_XCOM_KEY, built
from image_factory.build.plan import plan_builds, skip_reason, templates_to_build
from image_factory.build.template import TemplateError
from image_factory.configuration.findings import Collector
from image_factory.configuration.golden import MAX_TEMPLATE_BYTES, golden_images_dir
from image_factory.configuration.reader import read_json
from image_factory.run_context import RunContext
from image_factory.settings import config_dir
from image_factory.tasks import checked_config, read_catalogue

log = logging.getLogger(__name__)


def read_template(image_path: str, folder: Path | None = None) -> dict[str, Any]:
    """Read a golden image template with the configuration's reader (any encoding it accepts)."""
    path = golden_images_dir(folder or config_dir()) / image_path
    col = Collector(path)
    ok, doc = read_json(col, MAX_TEMPLATE_BYTES)
    if not ok or not isinstance(doc, dict):
        raise TemplateError("; ".join(str(f) for f in col.errors) or f"{path} is not a JSON object")
    return doc


def list_builds(run: RunContext) -> list[dict[str, Any]]:
    """Return the build jobs of this run (none when it does not build, or in a dry run, which only lists them)."""
    config = checked_config(run)
    reason = skip_reason(run.params, config.factory, is_backfill=run.is_backfill)
    if reason:
        log.info("Not building: %s", reason)
        run.xcom().xcom_push(key=SUMMARY_XCOM_KEY, value={"building": False, "dry_run": run.params.dry_run})
        return []
    paths = templates_to_build(run.selected_labs(), config.golden_images, run.params)
    jobs = plan_builds(paths, lambda p: read_template(p, config.config_dir), run.run_id)
    table = "".join(f"\n  {job.image_path}: {job.describe()}" for job in jobs) or " nothing (no lab subscribes)"
    dry = run.params.dry_run
    log.info(
        "%s %d template(s) in %s:%s",
        "Dry run: would build" if dry else "Building",
        len(jobs),
        config.factory.lab_name,
        table,
    )
    for job in jobs:
        if job.error:
            log.error("%s cannot be built: %s", job.image_path, job.error)
    run.xcom().xcom_push(
        key=SUMMARY_XCOM_KEY,
        value={"building": not dry, "dry_run": dry, "jobs": {job.image_path: job.describe() for job in jobs}},
    )
    return [] if dry else [job.to_dict() for job in jobs]


def clean_built(run: RunContext) -> dict[str, list[str]]:
    """Delete the VMs this run built once captured (the original's CleanUpFactory); keep and name the others."""
    names = {str(o["vm_name"]).casefold() for o in built(run)}
    if not names:
        return {"deleted": [], "kept": []}
    from image_factory.retention.factory_vms import captured_vms  # noqa: PLC0415 - light DAG parsing

    factory = run.config.factory
    hook = run.devtestlabs()
    vms = [
        vm
        for vm in hook.list_vms(factory.subscription_id, factory.resource_group, factory.lab_name)
        if vm.name.casefold() in names
    ]
    captured = captured_vms(vms, read_catalogue(run).images)
    deleted: list[str] = []
    kept: list[str] = []
    for vm in sorted(vms, key=lambda v: v.name.casefold()):
        if vm.name not in captured:
            log.warning("Built VM %s was not captured: kept for a look (delete it by hand once done)", vm.name)
            kept.append(vm.name)
            continue
        hook.delete_vm(factory.subscription_id, factory.resource_group, factory.lab_name, vm.name)
        log.info("Deleted built VM %s: captured into the catalogue", vm.name)
        deleted.append(vm.name)
    return {"deleted": deleted, "kept": kept}
