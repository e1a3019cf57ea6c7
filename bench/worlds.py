"""Worlds, configuration folders and a pre-filled factory catalogue for benchmark scenarios.

Worlds come from the emulator's generator; the configuration folder is written from ``Configuration/`` read as
data; the catalogue is written in the sidecar format of docs/ARCHITECTURE.md. Nothing here imports the product.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from azure.storage.blob import BlobServiceClient, ContentSettings

from emulator.vhd import FOOTER_SIZE, make_disk
from emulator.worlds.generate import generate

REPO = Path(__file__).resolve().parents[1]
FACTORY_LAB = "ImageFactory"
FACTORY_ACCOUNT = "factorystore"
CONTAINER = "imagefactoryvhds"
MIB = 1024 * 1024
#: ``schemaVersion`` of the sidecars the factory's capture writes.
SIDECAR_SCHEMA_VERSION = 2


def generate_world(labs: int, images: int, regions: int = 1, **settings: float) -> dict[str, Any]:
    """Return a world with ``labs`` target labs and ``images`` factory VMs (``emulator.worlds.generate``)."""
    world = generate(labs, images, regions)
    world.setdefault("settings", {}).update(settings)
    return world


def factory_lab(world: Mapping[str, Any]) -> Mapping[str, Any]:
    """Return the factory lab of a world."""
    for lab in world["labs"]:
        if lab["name"] == FACTORY_LAB:
            return dict(lab)
    raise ValueError(f"the world has no lab named {FACTORY_LAB}")


def target_labs(world: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """Return every lab but the factory."""
    return [lab for lab in world["labs"] if lab["name"] != FACTORY_LAB]


def image_paths(world: Mapping[str, Any]) -> list[str]:
    """Return the ImagePath tags of the factory VMs."""
    return [
        str(vm["tags"]["ImagePath"]) for vm in factory_lab(world).get("vms", []) if vm.get("tags", {}).get("ImagePath")
    ]


def labs_json(world: Mapping[str, Any], selectors: Sequence[str] | None = None) -> dict[str, Any]:
    """Return a ``Labs.json`` giving every target lab ``selectors`` (default: each image's top folder)."""
    if selectors is None:
        selectors = sorted({p.split("/")[0] for p in image_paths(world)})
    return {
        "Labs": [
            {
                "SubscriptionId": lab["subscription"],
                "LabName": lab["name"],
                "ResourceGroup": lab["resource_group"],
                "ImagePaths": list(selectors),
            }
            for lab in target_labs(world)
        ]
    }


def write_world(path: Path, world: Mapping[str, Any]) -> Path:
    """Write a world file; return its path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(world, indent=1) + "\n", encoding="utf-8")
    return path


def write_config(
    config_dir: Path,
    world: Mapping[str, Any],
    *,
    max_concurrent_jobs: int = 20,
    selectors: Sequence[str] | None = None,
    labs_doc: Mapping[str, Any] | None = None,
) -> Path:
    """Write a configuration folder (labs.json, factory.json, GoldenImages) matching ``world``."""
    shutil.rmtree(config_dir, ignore_errors=True)
    config_dir.mkdir(parents=True)
    source = REPO / "Configuration"
    factory = json.loads((source / "factory.json").read_text(encoding="utf-8-sig"))
    lab = factory_lab(world)
    factory["Factory"] = {
        "SubscriptionId": lab["subscription"],
        "ResourceGroup": lab["resource_group"],
        "LabName": lab["name"],
    }
    factory["MaxConcurrentJobs"] = max_concurrent_jobs
    (config_dir / "factory.json").write_text(json.dumps(factory, indent=2) + "\n", encoding="utf-8")
    doc = labs_doc if labs_doc is not None else labs_json(world, selectors)
    (config_dir / "labs.json").write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    template = (source / "GoldenImages" / "Win2016" / "Datacenter.json").read_text(encoding="utf-8")
    for path in image_paths(world):
        target = config_dir / "GoldenImages" / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(template, encoding="utf-8")
    return config_dir


def catalogue_name(image_path: str, version: str) -> str:
    """Return the name capture gives a generated world's ImagePath (``Folder/File.json``) at ``version``.

    The rule is the product's (docs/ARCHITECTURE.md "Image identity"), written here for the plain paths
    ``emulator.worlds.generate`` makes, so that the benchmark does not import the product; a unit test holds the two
    to the same answer.
    """
    *folders, file = image_path.split("/")
    stem = "_".join((*folders[-1:], file.removesuffix(".json")))
    digest = hashlib.sha256(image_path.casefold().encode("utf-8")).hexdigest()[:8]
    return f"{stem}-{version}-{digest}"


@dataclass(frozen=True)
class CatalogueEntry:
    """One factory VM as capture would have catalogued it: its image name, VHD blob and sidecar document."""

    name: str
    disk_seed: int
    #: The VHD's data part (the footer comes on top).
    data_bytes: int
    sidecar: dict[str, Any]

    @property
    def vhd_blob(self) -> str:
        """The VHD's blob name in the factory container."""
        return f"{self.name}.vhd"

    @property
    def sidecar_blob(self) -> str:
        """The sidecar's blob name in the factory container."""
        return f"{self.name}.json"


def capturable(vm: Mapping[str, Any]) -> bool:
    """Tell whether capture would catalogue ``vm``: tagged, deallocated and provisioned."""
    return bool(
        vm.get("tags", {}).get("ImagePath")
        and vm.get("power_state") == "deallocated"
        and vm.get("provisioning_state", "Succeeded") == "Succeeded"
    )


def catalogue_entries(world: Mapping[str, Any], version: str, timestamp: str) -> list[CatalogueEntry]:
    """Return the catalogue capture would write for the factory VMs of ``world`` (the sidecar format of
    docs/ARCHITECTURE.md, ``schemaVersion`` 2); the disk of VM ``i`` is ``make_disk(size, seed=i + 1)``."""
    entries: list[CatalogueEntry] = []
    for index, vm in enumerate(factory_lab(world).get("vms", [])):
        if not capturable(vm):
            continue
        path = str(vm["tags"]["ImagePath"])
        name = catalogue_name(path, version)
        data_bytes = int(vm.get("disk_size_mib", 1)) * MIB
        sidecar = {
            "imageName": name,
            "imagePath": path,
            "description": f"{path} captured for the benchmark",
            "osType": vm.get("os_type", "Windows"),
            "vhdFileName": f"{name}.vhd",
            "timestamp": timestamp,
            "version": version,
            "generalized": vm.get("tags", {}).get("ImageType", "Generalized") != "Specialized",
            "sizeBytes": data_bytes + FOOTER_SIZE,
            "sourceVm": vm["name"],
            "footerSha256": None,
            "schemaVersion": SIDECAR_SCHEMA_VERSION,
        }
        entries.append(CatalogueEntry(name, index + 1, data_bytes, sidecar))
    return entries


def seed_catalogue(info: Mapping[str, Any], world: Mapping[str, Any], version: str | None = None) -> list[str]:
    """Put one VHD + sidecar per factory VM into the factory catalogue (what capture would write); return names."""
    now = datetime.now(UTC)
    entries = catalogue_entries(world, version or now.date().isoformat(), now.isoformat())
    acct = info["storage"][FACTORY_ACCOUNT]
    service = BlobServiceClient(
        acct["blob_endpoint"],
        credential={"account_name": FACTORY_ACCOUNT, "account_key": acct["account_key"]},
        connection_verify=info["ca_bundle"],
    )
    with service:
        container = service.get_container_client(CONTAINER)
        if not container.exists():
            container.create_container()
        for entry in entries:
            data = make_disk(entry.data_bytes, seed=entry.disk_seed)
            container.get_blob_client(entry.vhd_blob).upload_blob(data, blob_type="PageBlob", overwrite=True)
            container.get_blob_client(entry.sidecar_blob).upload_blob(
                (json.dumps(entry.sidecar, indent=2, ensure_ascii=False) + "\n").encode("utf-8"),
                overwrite=True,
                content_settings=ContentSettings(content_type="application/json"),
            )
    return [entry.name for entry in entries]
