"""What retention and factory clean-up need from Azure, read through the hooks, and the rules applied to it.

Retention reads one custom image list per lab and of the factory lab (no lab read: labs.json names the resource
group), and, before a real run deletes anything, looks for each candidate's VHD in the labs' ``uploads``
containers (a distribution in flight, e.g. a backfill beside this run). Clean-up lists the factory VMs.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

from azure.core.exceptions import HttpResponseError

from image_factory.exceptions import AzureRequestError
from image_factory.models import LabRef
from image_factory.redact import redact
from image_factory.retention.decisions import RetentionPlan
from image_factory.retention.factory_vms import captured_vms, cleanup_plan, powershell_captured_vms
from image_factory.retention.images import retention_plan
from image_factory.retention.in_flight import UploadCheck, upload_checks
from image_factory.tasks import take_inventories

if TYPE_CHECKING:
    from image_factory.catalogue import Catalogue
    from image_factory.hooks.devtestlabs import DevTestLabsHook
    from image_factory.run_context import RunContext

log = logging.getLogger(__name__)

KEEP_UPLOAD_UNKNOWN = "could not check the lab's uploads"
NOTE_DRY_RUN_UPLOADS = (
    "dry run: the labs' uploads were not checked (a real run also keeps versions still being uploaded)"
)


def upload_present(arm: DevTestLabsHook, check: UploadCheck) -> bool:
    """Tell whether ``uploads/<blob>`` exists in the lab (through a ``generateUploadUri`` SAS, never logged)."""
    from image_factory.hooks.storage import sas_copy_state  # noqa: PLC0415 - light imports
    from image_factory.redact import mask  # noqa: PLC0415

    url = arm.generate_upload_uri(check.subscription_id, check.resource_group, check.lab_name, check.blob)
    mask(url)
    return sas_copy_state(url, arm.settings.connection_verify).exists


def uploading_versions(
    arm: DevTestLabsHook, checks: Iterable[UploadCheck], notes: list[str]
) -> set[tuple[str, str, str]]:
    """Return (lab, ImagePath, version) of the VHDs in a lab's ``uploads`` (or whose uploads could not be checked):
    a copy into that lab is in flight, so that lab's image and the catalogue version must stay."""
    busy: set[tuple[str, str, str]] = set()
    for check in checks:
        ident = (check.lab_name, check.image_path, check.version)
        if ident in busy:
            continue
        try:
            present = upload_present(arm, check)
        except (AzureRequestError, HttpResponseError) as exc:
            notes.append(f"{check.lab_name}: {KEEP_UPLOAD_UNKNOWN} for {check.blob} ({redact(str(exc))}): kept")
            busy.add(ident)
            continue
        if present:
            log.info(
                "%s: uploads/%s exists: %s %s is in flight", check.lab_name, check.blob, check.image_path, check.version
            )
            busy.add(ident)
    return busy


def retention_decisions(
    run: RunContext, catalogue: Catalogue, *, in_flight: set[tuple[str, str, str]]
) -> RetentionPlan:
    """Read the labs and the factory lab, decide; in a real run decide again keeping what is still uploading."""
    config, arm = run.config, run.devtestlabs()
    factory = config.factory
    inventories = take_inventories(run, run.selected_labs(), locate=False)
    factory_ref = LabRef(factory.subscription_id, factory.lab_name, (), factory.resource_group)
    factory_inventory = arm.inventory(factory_ref, locate=False)
    if factory_inventory.status != "ok":
        log.warning("Factory lab %s: %s (%s)", factory.lab_name, factory_inventory.status, factory_inventory.message)

    def decide_with(protected: set[tuple[str, str, str]]) -> RetentionPlan:
        return retention_plan(
            labs=config.labs,
            catalogue=catalogue.images,
            inventories=inventories,
            golden_images=config.golden_images,
            images_to_save=factory.images_to_save,
            factory=factory_inventory,
            in_flight=protected,
            lab_filter=run.params.labs or None,
            adopt_powershell=factory.adopt_powershell_images,
        )

    first = decide_with(in_flight)
    if not first.deletions:
        return first
    if run.params.dry_run:
        return RetentionPlan(first.deletions, first.kept, (*first.notes, NOTE_DRY_RUN_UPLOADS))
    notes: list[str] = []
    busy = uploading_versions(arm, upload_checks(first.deletions, config.labs, inventories), notes)
    if not busy and not notes:
        return first
    again = decide_with(in_flight | busy)
    return RetentionPlan(again.deletions, again.kept, (*again.notes, *notes))


def cleanup_decisions(run: RunContext, catalogue: Catalogue) -> RetentionPlan:
    """List the factory VMs and decide which clean-up deletes."""
    factory = run.config.factory
    vms = run.devtestlabs().list_vms(factory.subscription_id, factory.resource_group, factory.lab_name)
    return cleanup_plan(
        vms=vms,
        captured_vms=captured_vms(vms, catalogue.all_images),
        powershell_captured=powershell_captured_vms(vms, catalogue.all_images),
        where=factory.lab_name,
        subscription_id=factory.subscription_id,
        resource_group=factory.resource_group,
    )
