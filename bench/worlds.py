"""Worlds, configuration folders and a pre-filled factory catalogue for benchmark scenarios."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from azure.storage.blob import BlobServiceClient, ContentSettings

REPO = Path(__file__).resolve().parents[1]
FACTORY_LAB = "ImageFactory"
FACTORY_ACCOUNT = "factorystore"
CONTAINER = "imagefactoryvhds"
MIB = 1024 * 1024

if str(REPO / "plugins") not in sys.path:
    sys.path.insert(0, str(REPO / "plugins"))


def generate_world(labs: int, images: int, regions: int = 1, **settings: float) -> dict[str, Any]:
    """Return a world with ``labs`` target labs and ``images`` factory VMs (``emulator.worlds.generate``)."""
    try:
        from emulator.worlds.generate import generate
    except ImportError:  # the generator is another part's: fall back to its command line
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "emulator.worlds.generate",
                "--labs",
                str(labs),
                "--images",
                str(images),
                "--regions",
                str(regions),
            ],
            cwd=REPO,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        world: dict[str, Any] = json.loads(out)
    else:
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
    for schema in ("labs.schema.json", "factory.schema.json"):
        if (source / schema).exists():
            shutil.copy(source / schema, config_dir / schema)
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


def seed_catalogue(info: Mapping[str, Any], world: Mapping[str, Any], version: str | None = None) -> list[str]:
    """Put one VHD + sidecar per factory VM into the factory catalogue (what capture would write); return names."""
    from emulator.vhd import make_disk
    from image_factory import naming
    from image_factory.catalogue import sidecar_json
    from image_factory.models import ImageVersion

    version = version or datetime.now(UTC).date().isoformat()
    acct = info["storage"][FACTORY_ACCOUNT]
    service = BlobServiceClient(
        acct["blob_endpoint"],
        credential={"account_name": FACTORY_ACCOUNT, "account_key": acct["account_key"]},
        connection_verify=info["ca_bundle"],
    )
    names: list[str] = []
    with service:
        container = service.get_container_client(CONTAINER)
        if not container.exists():
            container.create_container()
        for index, vm in enumerate(factory_lab(world).get("vms", [])):
            path = vm.get("tags", {}).get("ImagePath")
            if (
                not path
                or vm.get("power_state") != "deallocated"
                or vm.get("provisioning_state", "Succeeded") != "Succeeded"
            ):
                continue
            name = naming.image_name(path, version)
            data = make_disk(int(vm.get("disk_size_mib", 1)) * MIB, seed=index + 1)
            container.get_blob_client(naming.vhd_blob(name)).upload_blob(data, blob_type="PageBlob", overwrite=True)
            image = ImageVersion(
                image_name=name,
                image_path=path,
                version=version,
                vhd_blob=naming.vhd_blob(name),
                os_type=vm.get("os_type", "Windows"),
                sysprep=vm.get("tags", {}).get("ImageType", "Generalized") != "Specialized",
                description=f"{path} captured for the benchmark",
                timestamp=datetime.now(UTC).isoformat(),
                size_bytes=len(data),
                source_vm=vm["name"],
            )
            container.get_blob_client(naming.sidecar_blob(name)).upload_blob(
                sidecar_json(image), overwrite=True, content_settings=ContentSettings(content_type="application/json")
            )
            names.append(name)
    return names
