"""Generate a large world: ``python -m emulator.worlds.generate --labs 100 --images 50 --regions 3 > world.json``.

The world has a factory lab (``ImageFactory`` in ``rg-imagefactory``, account ``factorystore``) with one
deallocated, generalized VM per image (ImagePath ``Gen/Image{i:03}.json``), and ``--labs`` target labs named
``Lab{n:03}`` spread over two subscriptions and ``--regions`` regions, each with its own storage account.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

FACTORY_SUBSCRIPTION = "11111111-1111-4111-8111-111111111111"
OTHER_SUBSCRIPTION = "22222222-2222-4222-8222-222222222222"
TENANT = "72f988bf-0000-4000-8000-00000000f00d"
SUBSCRIPTIONS = (FACTORY_SUBSCRIPTION, OTHER_SUBSCRIPTION)
REGIONS = ("westeurope", "northeurope", "eastus", "westus2", "southeastasia", "uksouth")


def image_path(index: int) -> str:
    """Return the ImagePath of generated image ``index``."""
    return f"Gen/Image{index:03}.json"


def _factory_lab(images: int) -> dict[str, Any]:
    """The factory lab, with one deallocated VM per image (every fourth one Linux)."""
    vms = [
        {
            "name": f"vm-image{i:03}",
            "os_type": "Linux" if i % 4 == 3 else "Windows",
            "tags": {"ImagePath": image_path(i)},
            "power_state": "deallocated",
            "disk_size_mib": 1,
        }
        for i in range(images)
    ]
    return {
        "name": "ImageFactory",
        "subscription": FACTORY_SUBSCRIPTION,
        "resource_group": "rg-imagefactory",
        "location": REGIONS[0],
        "storage_account": "factorystore",
        "vms": vms,
    }


def _target_lab(n: int, regions: int) -> dict[str, Any]:
    """Target lab ``n``: subscriptions alternate, regions cycle, each lab in its own group and account."""
    return {
        "name": f"Lab{n:03}",
        "subscription": SUBSCRIPTIONS[n % 2],
        "resource_group": f"rg-lab{n:03}",
        "location": REGIONS[n % regions],
        "storage_account": f"lab{n:03}store",
    }


def _principals() -> list[dict[str, Any]]:
    """The factory's principal (Contributor and Storage Blob Data Contributor on both subscriptions), a reader of
    the first and an outsider."""
    scopes = [f"/subscriptions/{sub}" for sub in SUBSCRIPTIONS]
    return [
        {
            "name": "image-factory",
            "client_id": "a1b2c3d4-0000-4000-8000-000000000001",
            "roles": [
                *({"scope": scope, "role": "Contributor"} for scope in scopes),
                *({"scope": scope, "role": "Storage Blob Data Contributor"} for scope in scopes),
            ],
        },
        {
            "name": "reader",
            "client_id": "a1b2c3d4-0000-4000-8000-000000000002",
            "roles": [{"scope": scopes[0], "role": "Reader"}],
        },
        {"name": "outsider", "client_id": "a1b2c3d4-0000-4000-8000-000000000003", "roles": []},
    ]


def generate(labs: int, images: int, regions: int) -> dict[str, Any]:
    """Build the world document."""
    if labs < 0 or images < 0 or not 1 <= regions <= len(REGIONS):
        raise ValueError(f"need labs >= 0, images >= 0 and 1 <= regions <= {len(REGIONS)}")
    lab_docs = [_factory_lab(images), *(_target_lab(n, regions) for n in range(labs))]
    groups: dict[str, list[str]] = {sub: [] for sub in SUBSCRIPTIONS}
    for lab in lab_docs:
        groups[lab["subscription"]].append(lab["resource_group"])
    return {
        "tenant_id": TENANT,
        "default_principal": "image-factory",
        "principals": _principals(),
        "subscriptions": [
            {"id": sub, "name": f"Subscription {i + 1}", "resource_groups": [{"name": g} for g in groups[sub]]}
            for i, sub in enumerate(SUBSCRIPTIONS)
        ],
        "labs": lab_docs,
        "settings": {"lro_seconds": 2, "copy_seconds": 2, "page_size": 50, "token_lifetime": 3600},
    }


def main(argv: list[str] | None = None) -> int:
    """Print a generated world on stdout."""
    parser = argparse.ArgumentParser(prog="python -m emulator.worlds.generate", description=__doc__.splitlines()[0])
    parser.add_argument("--labs", type=int, default=100, help="number of target labs (default 100)")
    parser.add_argument("--images", type=int, default=50, help="number of factory VMs / images (default 50)")
    parser.add_argument("--regions", type=int, default=3, help="number of regions the labs spread over (default 3)")
    args = parser.parse_args(argv)
    try:
        world = generate(args.labs, args.images, args.regions)
    except ValueError as exc:
        parser.error(str(exc))
    json.dump(world, sys.stdout, indent=1)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
