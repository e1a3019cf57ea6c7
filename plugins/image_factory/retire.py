"""Retention and factory clean-up, executed: the bodies of the DAG's ``retire`` group (decide, delete, report).

``decide`` gathers what ``retention.retention_plan`` and ``retention.cleanup_plan`` need (catalogue, one inventory
per lab and of the factory lab, golden images, ``ImagesToSave``, the factory VMs) and what must survive: the
versions this run planned and every version whose VHD is still in some lab's ``uploads`` container (a
distribution in flight, e.g. a backfill beside this run). It logs the table, writes a JSON artifact next to
verify's report and returns the deletions as small dicts for the mapped ``delete`` task. ``delete_one`` deletes
one of them idempotently (already gone is success); ``report`` records the outcomes and fails the task, after
every deletion ran, when clean-up met VMs that failed to provision.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from azure.core.exceptions import HttpResponseError

from image_factory import imagepaths, naming
from image_factory.catalogue import build_catalogue, parse_sidecar, parse_timestamp
from image_factory.configuration import Configuration, FactorySettings, load_configuration
from image_factory.exceptions import AzureRequestError, ConfigurationError, ImageFactoryError
from image_factory.models import IMAGE_PATH_TAG, ImageVersion, LabInventory, LabRef, Plan
from image_factory.redact import redact
from image_factory.retention import Decision, RetentionPlan, VmFacts, cleanup_plan, render_table, retention_plan
from image_factory.settings import config_dir, report_dir
from image_factory.tasks import check_params, take_inventories

if TYPE_CHECKING:
    from image_factory.capture_rules import FactoryVm
    from image_factory.hooks.devtestlabs import DevTestLabsHook
    from image_factory.hooks.storage import FactoryStorageHook

log = logging.getLogger(__name__)

#: Params of the DAG this group reads (besides ``dry_run``, ``labs`` and ``image_paths``).
PARAM_RETIRE = "retire"
PARAM_CLEAN_FACTORY = "clean_factory"
#: Suffix of the artifact written next to verify's ``<version>__<run>.json`` report.
ARTIFACT_SUFFIX = ".retire.json"
#: What a deletion ended as (``delete_one``'s answer).
DELETED = "deleted"
ALREADY_GONE = "already gone"
REFUSED = "refused"
KEEP_UPLOAD_UNKNOWN = "could not check the lab's uploads"


def _names(values: Any) -> list[str]:
    if not values:
        return []
    return [str(v).strip() for v in values if str(v).strip()]


# Catalogue ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CatalogueBlobs:
    """The factory catalogue as retention sees it: versions, and the blobs that make up each version."""

    #: One image per (ImagePath, version): what keep-N counts.
    images: tuple[ImageVersion, ...] = ()
    #: Every readable sidecar's image, superseded duplicates included (their ``sourceVm`` counts as captured).
    all_images: tuple[ImageVersion, ...] = ()
    #: (ImagePath key, version) → the blobs of that version in the factory container, sidecars first.
    blobs: Mapping[tuple[str, str], tuple[str, ...]] = field(default_factory=dict)
    problems: tuple[str, ...] = ()

    def blobs_of(self, image_path: str, version: str) -> list[str]:
        """Return the sidecar(s) then the VHD(s) of one version (every copy of it, superseded ones included)."""
        return list(self.blobs.get((imagepaths.key(image_path), version), ()))


def catalogue_blobs(sidecars: Iterable[tuple[str, bytes]], vhds: set[str]) -> CatalogueBlobs:
    """Index a catalogue listing (sidecar name + bytes, VHD names) by version, with each version's blobs."""
    entries = list(sidecars)
    catalogue = build_catalogue(entries, vhds)
    found_sidecars: dict[tuple[str, str], list[str]] = {}
    found_vhds: dict[tuple[str, str], list[str]] = {}
    every: list[ImageVersion] = []
    for blob_name, data in sorted(entries, key=lambda e: e[0]):
        try:
            image = parse_sidecar(blob_name, data)
        except ImageFactoryError:
            continue
        every.append(image)
        ident = (imagepaths.key(image.image_path), image.version)
        found_sidecars.setdefault(ident, []).append(blob_name)
        if image.vhd_blob in vhds and image.vhd_blob not in found_vhds.get(ident, []):
            found_vhds.setdefault(ident, []).append(image.vhd_blob)
    blobs = {
        ident: tuple(found_sidecars.get(ident, []) + found_vhds.get(ident, []))
        for ident in set(found_sidecars) | set(found_vhds)
    }
    return CatalogueBlobs(
        images=tuple(catalogue.images),
        all_images=tuple(every),
        blobs=blobs,
        problems=tuple(catalogue.problems),
    )


def read_catalogue_blobs(storage: FactoryStorageHook, container: str) -> CatalogueBlobs:
    """List the factory container and index it (see ``catalogue_blobs``)."""
    sidecars, vhds = storage.list_catalogue(container)
    result = catalogue_blobs(sidecars, vhds)
    for problem in result.problems:
        log.warning("Catalogue: %s", problem)
    return result


# What must survive -------------------------------------------------------------------------------------------
def planned_versions(plan: Plan) -> set[tuple[str, str]]:
    """Return the (ImagePath, version) this run distributes or expects to exist: retention never deletes them."""
    found = {(pair.image_path, pair.version) for pair in plan.pairs}
    found.update((path, version) for _lab, path, version in plan.expected)
    return found


@dataclass(frozen=True)
class UploadCheck:
    """One ``uploads/<blob>`` to look for in one lab, and the version it would protect."""

    subscription_id: str
    resource_group: str
    lab_name: str
    blob: str
    image_path: str
    version: str


def upload_checks(
    deletions: Iterable[Decision], labs: Sequence[LabRef], inventories: Mapping[str, LabInventory]
) -> list[UploadCheck]:
    """Return the uploads to look for before deleting: the image's own lab, and for a catalogue version every
    lab of labs.json that subscribes to its ImagePath (a copy of it can only be running into one of those)."""
    checks: dict[tuple[str, str, str], UploadCheck] = {}

    def add(sub: str, rg: str, lab: str, d: Decision) -> None:
        blob = naming.vhd_blob(d.name)
        checks.setdefault(
            (sub.lower(), lab.lower(), blob.lower()),
            UploadCheck(sub, rg, lab, blob, d.image_path or "", d.version or ""),
        )

    for d in deletions:
        if not d.image_path or not d.version:
            continue
        if d.kind == "custom_image" and d.subscription_id and d.resource_group:
            add(d.subscription_id, d.resource_group, d.where, d)
        elif d.kind == "catalogue_version":
            for lab in labs:
                inv = inventories.get(lab.key)
                if inv is None or inv.status != "ok" or not inv.resource_group:
                    continue
                if any(imagepaths.selects(s, d.image_path) for s in lab.image_paths):
                    add(lab.subscription_id, inv.resource_group, lab.lab_name, d)
    return list(checks.values())


def upload_present(arm: DevTestLabsHook, check: UploadCheck) -> bool:
    """Tell whether ``uploads/<blob>`` exists in the lab (through a ``generateUploadUri`` SAS, never logged)."""
    from image_factory.hooks.storage import sas_copy_state  # noqa: PLC0415 - light imports
    from image_factory.redact import mask  # noqa: PLC0415

    url = arm.generate_upload_uri(check.subscription_id, check.resource_group, check.lab_name, check.blob)
    mask(url)
    return sas_copy_state(url, arm.settings.connection_verify).exists


def uploading_versions(arm: DevTestLabsHook, checks: Iterable[UploadCheck], notes: list[str]) -> set[tuple[str, str]]:
    """Return the versions with a VHD in some lab's ``uploads`` (or whose uploads could not be checked)."""
    busy: set[tuple[str, str]] = set()
    for check in checks:
        ident = (check.image_path, check.version)
        if ident in busy:
            continue
        try:
            present = upload_present(arm, check)
        except (AzureRequestError, HttpResponseError) as exc:
            notes.append(f"{check.lab_name}: {KEEP_UPLOAD_UNKNOWN} for {check.blob} ({redact(str(exc))}): kept")
            busy.add(ident)
            continue
        if present:
            log.info("%s: uploads/%s exists: %s %s is in flight", check.lab_name, check.blob, *ident)
            busy.add(ident)
    return busy


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def captured_vms(vms: Iterable[tuple[FactoryVm, datetime | None]], images: Iterable[ImageVersion]) -> set[str]:
    """Return the factory VMs whose capture succeeded: a sidecar names the VM as ``sourceVm``, for the VM's own
    ImagePath, written after the VM was created (a VM re-created under the same name is not captured yet)."""
    by_vm: dict[str, list[ImageVersion]] = {}
    for image in images:
        if image.source_vm:
            by_vm.setdefault(image.source_vm.casefold(), []).append(image)
    captured: set[str] = set()
    for vm, created in vms:
        tag = vm.tag(IMAGE_PATH_TAG)
        if not tag:
            continue
        for image in by_vm.get(vm.name.casefold(), []):
            if imagepaths.key(image.image_path) != imagepaths.key(tag):
                continue
            written = parse_timestamp(image.timestamp)
            if created is None or (written is not None and written >= _aware(created)):
                captured.add(vm.name)
                break
    return captured


# Deciding ----------------------------------------------------------------------------------------------------
def _merge(*plans: RetentionPlan) -> RetentionPlan:
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


def deletion_item(decision: Decision, catalogue: CatalogueBlobs) -> dict[str, Any]:
    """Return one deletion as the small dict the mapped ``delete`` task gets (catalogue versions: their blobs)."""
    item = decision.to_dict()
    if decision.kind == "catalogue_version":
        item["blobs"] = catalogue.blobs_of(decision.image_path or "", decision.version or "")
    return item


def artifact_path(version: str, run_id: str) -> Path:
    """Return where the retire artifact of a run goes (next to verify's report)."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", run_id)[:120]
    return report_dir() / f"{version}__{safe}{ARTIFACT_SUFFIX}"


def _write(path: Path, document: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")


def _factory_ref(factory: FactorySettings) -> LabRef:
    return LabRef(factory.subscription_id, factory.lab_name, (), factory.resource_group)


def _retention(
    config: Configuration,
    arm: DevTestLabsHook,
    catalogue: CatalogueBlobs,
    *,
    in_flight: set[tuple[str, str]],
    lab_filter: list[str] | None,
    dry_run: bool,
) -> RetentionPlan:
    factory = config.factory
    wanted = {n.casefold() for n in lab_filter} if lab_filter else None
    labs = [lab for lab in config.labs if wanted is None or lab.lab_name.casefold() in wanted]
    inventories = take_inventories(config, labs, locate=False)
    factory_inventory = arm.inventory(_factory_ref(factory), locate=False)
    if factory_inventory.status != "ok":
        log.warning("Factory lab %s: %s (%s)", factory.lab_name, factory_inventory.status, factory_inventory.message)

    def decide_with(protected: set[tuple[str, str]]) -> RetentionPlan:
        return retention_plan(
            labs=config.labs,
            catalogue=catalogue.images,
            inventories=inventories,
            golden_images=config.golden_images,
            images_to_save=factory.images_to_save,
            factory=factory_inventory,
            in_flight=protected,
            lab_filter=lab_filter,
        )

    first = decide_with(in_flight)
    if not first.deletions:
        return first
    if dry_run:
        note = "dry run: the labs' uploads were not checked (a real run also keeps versions still being uploaded)"
        return RetentionPlan(first.deletions, first.kept, (*first.notes, note))
    notes: list[str] = []
    busy = uploading_versions(arm, upload_checks(first.deletions, config.labs, inventories), notes)
    if not busy and not notes:
        return first
    again = decide_with(in_flight | busy)
    return RetentionPlan(again.deletions, again.kept, (*again.notes, *notes))


def _cleanup(config: Configuration, arm: DevTestLabsHook, catalogue: CatalogueBlobs) -> RetentionPlan:
    factory = config.factory
    vms = arm.list_vms_created(factory.subscription_id, factory.resource_group, factory.lab_name)
    facts = [VmFacts(vm.name, dict(vm.tags), vm.provisioning_state, vm.power_state) for vm, _created in vms]
    return cleanup_plan(
        vms=facts,
        captured_vms=captured_vms(vms, catalogue.all_images),
        where=factory.lab_name,
        subscription_id=factory.subscription_id,
        resource_group=factory.resource_group,
    )


def decide(
    params: Mapping[str, Any],
    *,
    plan_doc: Mapping[str, Any] | None,
    version: str,
    run_id: str,
    folder: Path | None = None,
) -> list[dict[str, Any]]:
    """Decide what retention and factory clean-up delete; log the table, write the artifact, return the
    deletions to map over (none in a dry run, or when both ``retire`` and ``clean_factory`` are off)."""
    retire_on = bool(params.get(PARAM_RETIRE, True))
    clean_on = bool(params.get(PARAM_CLEAN_FACTORY, False))
    dry_run = bool(params.get("dry_run", False))
    if not retire_on and not clean_on:
        log.info("Nothing to do: params retire and clean_factory are both off")
        _write(
            artifact_path(version, run_id),
            {
                "dag_run_id": run_id,
                "version": version,
                "dry_run": dry_run,
                "deletions": [],
                "kept": [],
                "notes": ["retire and clean_factory are both off"],
            },
        )
        return []
    if plan_doc is None:
        raise ImageFactoryError(
            "retire needs this run's plan to know which versions are in flight: the plan task failed or did not "
            "run (see its log); nothing was retired"
        )
    from image_factory.hooks.devtestlabs import DevTestLabsHook  # noqa: PLC0415 - light DAG parsing
    from image_factory.hooks.storage import FactoryStorageHook  # noqa: PLC0415

    config = load_configuration(folder or config_dir())
    problems = check_params(params, config)
    if problems:
        raise ConfigurationError("The run's params do not match the configuration", problems)
    factory = config.factory
    arm = DevTestLabsHook(arm_conn_id=factory.arm_conn_id)
    catalogue = read_catalogue_blobs(FactoryStorageHook(wasb_conn_id=factory.storage_conn_id), factory.container)
    parts: list[RetentionPlan] = []
    if retire_on:
        parts.append(
            _retention(
                config,
                arm,
                catalogue,
                in_flight=planned_versions(Plan.from_dict(dict(plan_doc))),
                lab_filter=_names(params.get("labs")) or None,
                dry_run=dry_run,
            )
        )
    else:
        parts.append(RetentionPlan(notes=("retention is off for this run (param retire=false)",)))
    if clean_on:
        parts.append(_cleanup(config, arm, catalogue))
    combined = limit_to_paths(_merge(*parts), _names(params.get("image_paths")))
    table = render_table(combined, dry_run=dry_run)
    log.info("%s:\n%s", "Dry run: retention would do this" if dry_run else "Retention and clean-up", table)
    items = [deletion_item(d, catalogue) for d in combined.deletions]
    document: dict[str, Any] = {
        "dag_run_id": run_id,
        "version": version,
        "dry_run": dry_run,
        "retire": retire_on,
        "clean_factory": clean_on,
        "images_to_save": factory.images_to_save,
        "deletions": items,
        "kept": [k.to_dict() for k in combined.kept],
        "notes": list(combined.notes),
        "table": table,
    }
    path = artifact_path(version, run_id)
    _write(path, document)
    log.info("Retention decisions written to %s", path)
    if dry_run:
        log.info("Dry run: %d deletion(s) would be made; none is", len(items))
        return []
    return items


# Deleting ----------------------------------------------------------------------------------------------------
def delete_one(item: Mapping[str, Any], settings: FactorySettings) -> str:
    """Delete one decided item; return ``deleted``, ``already gone`` or ``refused: …`` (never deletes what the
    factory did not make: a custom image is re-read and must still carry the factory's marker)."""
    from image_factory.hooks.devtestlabs import DevTestLabsHook  # noqa: PLC0415
    from image_factory.hooks.storage import FactoryStorageHook  # noqa: PLC0415

    kind = item.get("kind")
    name = str(item["name"])
    if kind == "catalogue_version":
        storage = FactoryStorageHook(wasb_conn_id=settings.storage_conn_id)
        blobs = [str(b) for b in item.get("blobs") or []]
        # Sidecars first: the version leaves the catalogue at once, so no planner can pick a half-deleted one.
        gone = [storage.delete(settings.container, blob) for blob in blobs]
        return DELETED if any(gone) else ALREADY_GONE
    sub, rg, lab = str(item["subscription_id"]), str(item["resource_group"]), str(item["where"])
    arm = DevTestLabsHook(arm_conn_id=settings.arm_conn_id)
    if kind == "custom_image":
        image = arm.get_custom_image(sub, rg, lab, name)
        if image is None:
            return ALREADY_GONE
        if not image.managed:
            return f"{REFUSED}: {name} in {lab} no longer carries the factory's marker tag"
        arm.delete_custom_image(sub, rg, lab, name)
        return DELETED
    if kind == "factory_vm":
        return DELETED if arm.delete_vm(sub, rg, lab, name) else ALREADY_GONE
    raise ImageFactoryError(f"unknown deletion kind {kind!r} for {name}")


# Reporting ---------------------------------------------------------------------------------------------------
def report(outcomes: Iterable[Mapping[str, Any]] | None, *, version: str, run_id: str) -> dict[str, Any]:
    """Add the deletions' outcomes to the artifact; fail naming the factory VMs that failed to provision."""
    path = artifact_path(version, run_id)
    if not path.exists():
        raise ImageFactoryError("retire.decide wrote no decisions (it failed or did not run); see its log")
    document = json.loads(path.read_text(encoding="utf-8"))
    done = [dict(o) for o in outcomes or [] if o]
    document["outcomes"] = done
    _write(path, document)
    planned = len(document.get("deletions", []))
    dry_run = bool(document.get("dry_run"))
    counts: dict[str, int] = {}
    for outcome in done:
        key = str(outcome.get("outcome", "?")).split(":", 1)[0]
        counts[key] = counts.get(key, 0) + 1
    log.info(
        "Retention: %d decided, outcomes %s%s",
        planned,
        ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none",
        " (dry run)" if dry_run else "",
    )
    errors = [d for d in document.get("deletions", []) if d.get("error")]
    if errors and not dry_run:
        raise ImageFactoryError(
            "Factory clean-up met VMs that had failed to provision (deleted unless their delete task failed); "
            "check their templates and the lab:"
            + "".join(f"\n  - {d['where']} / {d['name']}: {d['reason']}" for d in errors)
        )
    for d in errors:
        log.warning("Dry run: %s / %s would be deleted: %s", d["where"], d["name"], d["reason"])
    return {"dry_run": dry_run, "decided": planned, "outcomes": counts, "artifact": str(path)}
