"""``python -m image_factory.image_list [--config DIR] [--json]``: which image versions every lab holds.

The PowerShell factory's OutputImageList, for a person comparing the old factory with this one: per lab of
labs.json, the factory lab and the factory catalogue, every image version (ImagePath, version, name, who made it,
state). It reads Azure through the product's hooks on the Airflow connections factory.json names (for example
from ``AIRFLOW_CONN_IMAGE_FACTORY_ARM`` / ``AIRFLOW_CONN_IMAGE_FACTORY_STORAGE``), and changes nothing.
Exit status 0, 1 when the configuration is invalid or Azure cannot be read at all, 2 on a usage error.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from azure.core.exceptions import AzureError

from image_factory import imagepaths, versions
from image_factory.catalogue import Catalogue, build_catalogue, version_from_name
from image_factory.exceptions import ImageFactoryError
from image_factory.models import LabImage, LabInventory, LabRef
from image_factory.retention.decisions import FACTORY
from image_factory.retention.powershell import MADE_BY_LABEL, made_by, version_of

if TYPE_CHECKING:
    from image_factory.configuration import Configuration

COLUMNS = ("lab", "image_path", "version", "name", "made_by", "state")
CATALOGUED = "catalogued"


@dataclass(frozen=True)
class Row:
    """One image version in one place."""

    lab: str
    image_path: str
    version: str
    name: str
    made_by: str
    state: str


def lab_rows(where: str, images: Iterable[LabImage]) -> list[Row]:
    """Return a lab's custom images as rows (an image nobody tagged with an ImagePath too: made by ``unknown``)."""
    rows: list[Row] = []
    for image in images:
        maker = made_by(image)
        if maker == "factory":
            version = image.version or ""
        elif maker == "powershell":
            version = version_of(image) or ""
        else:
            version = image.version or version_from_name(image.name) or ""
        path = imagepaths.normalize(image.image_path or "")
        rows.append(Row(where, path, version, image.name, MADE_BY_LABEL[maker], image.provisioning_state))
    return rows


def catalogue_rows(catalogue: Catalogue) -> list[Row]:
    """Return the factory catalogue's usable versions as rows (``made by`` from the sidecar's ``schemaVersion``)."""
    return [
        Row(
            FACTORY,
            imagepaths.normalize(i.image_path),
            i.version,
            i.image_name,
            MADE_BY_LABEL["powershell" if i.by_powershell else "factory"],
            CATALOGUED,
        )
        for i in catalogue.images
    ]


def sorted_rows(rows: Iterable[Row]) -> list[Row]:
    """Order rows by place, ImagePath, then version newest first."""
    by_version = sorted(rows, key=lambda r: (versions.sort_key(r.version), r.name), reverse=True)
    return sorted(by_version, key=lambda r: (r.lab.casefold(), imagepaths.key(r.image_path)))


def render_table(rows: Sequence[Row], notes: Sequence[str] = ()) -> str:
    """Return the rows as a text table, the notes below it."""
    table = [COLUMNS, *((r.lab, r.image_path, r.version, r.name, r.made_by, r.state) for r in rows)]
    widths = [max(len(line[i]) for line in table) for i in range(len(COLUMNS))]
    lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(line)).rstrip() for line in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    if not rows:
        lines.append("(no image in any lab)")
    lines.extend(f"note: {n}" for n in notes)
    return "\n".join(lines)


def to_document(rows: Sequence[Row], notes: Sequence[str] = ()) -> dict[str, Any]:
    """Return the rows as the ``--json`` document: ``{"images": [...], "notes": [...]}``."""
    return {"images": [asdict(r) for r in rows], "notes": list(notes)}


def _inventory_rows(label: str, inventory: LabInventory, notes: list[str]) -> list[Row]:
    if inventory.status != "ok":
        notes.append(f"{label}: not listed ({inventory.status}: {inventory.message})")
        return []
    return lab_rows(label, inventory.images)


def read_rows(config: Configuration) -> tuple[list[Row], list[str]]:
    """Read every lab, the factory lab and the catalogue through the hooks; return the rows and notes."""
    from image_factory.hooks.devtestlabs import DevTestLabsHook  # noqa: PLC0415 - the SDKs only when run
    from image_factory.hooks.storage import FactoryStorageHook  # noqa: PLC0415

    factory = config.factory
    arm = DevTestLabsHook(arm_conn_id=factory.arm_conn_id)
    notes: list[str] = []
    rows: list[Row] = []
    try:
        factory_ref = LabRef(factory.subscription_id, factory.lab_name, (), factory.resource_group)
        for ref in (factory_ref, *config.labs):
            rows.extend(_inventory_rows(ref.lab_name, arm.inventory(ref, locate=False), notes))
    finally:
        arm.close()
    sidecars, vhds = FactoryStorageHook(wasb_conn_id=factory.storage_conn_id).list_catalogue(factory.container)
    catalogue = build_catalogue(sidecars, vhds)
    rows.extend(catalogue_rows(catalogue))
    notes.extend(f"catalogue: {p}" for p in catalogue.problems)
    return sorted_rows(rows), notes


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m image_factory.image_list",
        description="List the image versions every lab of labs.json, the factory lab and the catalogue hold.",
    )
    parser.add_argument(
        "--config", type=Path, help="configuration folder (default: $IMAGE_FACTORY_CONFIG_DIR or <repo>/Configuration)"
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; return its exit status."""
    from image_factory.configuration import load_configuration  # noqa: PLC0415
    from image_factory.settings import config_dir  # noqa: PLC0415

    args = _parser().parse_args(argv)
    # The SDKs log every request; Airflow's logging writes to stdout: stdout is the list's alone.
    logging.getLogger("azure").setLevel(logging.WARNING)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            rows, notes = read_rows(load_configuration(args.config or config_dir()))
    except (ImageFactoryError, AzureError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(to_document(rows, notes), indent=2) if args.json else render_table(rows, notes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
