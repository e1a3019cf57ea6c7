"""The fleet snapshot verify hands over by XCom: what the labs hold, the catalogue, what this run distributed.

A small JSON document (no secret: names, versions, states, sizes, ARM ids), stored by Airflow in its metadata
database like any XCom, so the api-server of any deployment (LocalExecutor or Celery) reads the same thing.
:func:`image_factory.fleet.model.build_fleet` turns the newest snapshots into the fleet.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from image_factory import imagepaths
from image_factory.catalogue import Catalogue, version_from_name
from image_factory.fleet.model import SNAPSHOT_SCHEMA
from image_factory.models import ImageVersion, LabInventory, LabRef

#: The XCom key verify pushes the snapshot under (pushed before verify may fail, so a failed night has one too).
FLEET_XCOM_KEY = "fleet"
#: Task id of verify, whose XCom the api-server reads.
VERIFY_TASK_ID = "verify"
#: The mapped tasks that distribute a pair, in the order of their waves.
DISTRIBUTE_TASK_IDS = ("distribute", "distribute_regional")


def _catalogue_entry(image: ImageVersion) -> dict[str, Any]:
    return {
        "version": image.version,
        "size_bytes": image.size_bytes,
        "captured": image.timestamp,
        "source_vm": image.source_vm,
        "source_disk": image.source.disk_unique_id if image.source else None,
        "by_powershell": image.by_powershell,
    }


def catalogue_document(catalogue: Catalogue) -> dict[str, list[dict[str, Any]]]:
    """Return the catalogue's usable versions per ImagePath (newest first), with size and capture source."""
    out: dict[str, list[dict[str, Any]]] = {}
    for image in catalogue.images:  # already newest first
        out.setdefault(imagepaths.normalize(image.image_path), []).append(_catalogue_entry(image))
    return out


def held_document(inventory: LabInventory) -> dict[str, list[dict[str, Any]]]:
    """Return what a lab holds per ImagePath: each custom image's version, provisioning state and creation."""
    out: dict[str, list[dict[str, Any]]] = {}
    for image in inventory.images:
        version = image.version or version_from_name(image.name)
        if not image.image_path or not version:
            continue
        out.setdefault(imagepaths.normalize(image.image_path), []).append(
            {
                "version": version,
                "state": image.provisioning_state,
                "created": image.created.isoformat() if image.created else None,
            }
        )
    return out


def _lab_entry(lab: LabRef, inventory: LabInventory | None) -> dict[str, Any]:
    if inventory is None:
        return {"name": lab.lab_name, "status": "error", "message": "lab not inventoried", "held": {}}
    return {
        "name": lab.lab_name,
        "status": inventory.status,
        "message": inventory.message,
        "held": held_document(inventory),
    }


def pair_tasks(waves: Sequence[Sequence[Mapping[str, Any]]]) -> list[dict[str, Any]]:
    """Return each distributed pair with the task id and map index that distributed it.

    ``waves`` are the lists the distribute tasks were mapped over, in :data:`DISTRIBUTE_TASK_IDS` order: the
    n-th item of a wave is map index n of its task.
    """
    out: list[dict[str, Any]] = []
    for task_id, wave in zip(DISTRIBUTE_TASK_IDS, waves, strict=False):
        for index, pair in enumerate(wave):
            out.append(
                {
                    "lab": pair["lab_name"],
                    "image_path": imagepaths.normalize(pair["image_path"]),
                    "version": pair["version"],
                    "label": f"{pair['lab_name']} / {pair['image_name']}",
                    "task_id": task_id,
                    "map_index": index,
                }
            )
    return out


def _problems_by_lab(labs: Iterable[LabRef], problems: Sequence[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for lab in labs:
        prefix = f"{lab.lab_name}: "
        mine = [p for p in problems if p.startswith(prefix)]
        if mine:
            out[lab.lab_name] = mine
    return out


def build_snapshot(
    *,
    run_id: str,
    day: str,
    dry_run: bool,
    all_labs: Sequence[LabRef],
    inventories: Mapping[str, LabInventory],
    inventoried: Sequence[LabRef],
    catalogue: Catalogue,
    golden_images: Sequence[str],
    waves: Sequence[Sequence[Mapping[str, Any]]] = (),
    problems: Sequence[str] = (),
    freshness_days: int | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Return the fleet snapshot of one verify.

    ``all_labs`` is labs.json (the fleet's rows and subscriptions); ``inventoried`` the labs this run read, with
    their ``inventories`` keyed by :attr:`LabRef.key`.
    """
    return {
        "schema": SNAPSHOT_SCHEMA,
        "run_id": run_id,
        "day": day,
        "dry_run": dry_run,
        "taken_at": (now or datetime.now(UTC)).astimezone(UTC).isoformat(),
        "freshness_days": freshness_days,
        "golden_images": [imagepaths.normalize(p) for p in golden_images],
        "all_labs": [{"name": lab.lab_name, "image_paths": list(lab.image_paths)} for lab in all_labs],
        "labs": [_lab_entry(lab, inventories.get(lab.key)) for lab in inventoried],
        "catalogue": catalogue_document(catalogue),
        "pairs": pair_tasks(waves),
        "problems": _problems_by_lab(inventoried, problems),
    }
