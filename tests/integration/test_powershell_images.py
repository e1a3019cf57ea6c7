"""The PowerShell factory's images and catalogue versions, retired against the local Azure: kept, or adopted.

One emulator (the demo world) serves the module. DevLab is seeded, through the DevTest Labs SDK, with the
original's images of ``Win2016\\Datacenter.json`` (``…-Nov-1-2026``, its same-day rebuild ``…A``, ``…-Nov-2-2026``:
the ``ImagePath`` tag with backslashes, no ``ImageFactory.ManagedBy``), one image of this factory, and images that
are no one's to delete: an untagged one with the original's name, a tagged one with another name, the original's
image of a golden image this factory does not know. The factory catalogue gets the original's guid-named VHDs with
UTF-16 sidecars and ``Get-Date`` timestamps. The tests run in file order: the image list command's JSON, a
``dag.test()`` dry run with adoption on (its retire table), adoption off (dry run, then for real), then on (dry
run, a deletion refused once adoption is switched off again, then for real).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import ResourceExistsError
from azure.storage.blob import BlobClient, BlobServiceClient

from emulator.vhd import make_disk
from image_factory import naming
from image_factory.hooks.devtestlabs import DevTestLabsHook
from image_factory.hooks.lab_resources import custom_image_body
from image_factory.models import IMAGE_PATH_TAG, MANAGED_BY_TAG, Plan
from image_factory.retention.operator import DELETED, REFUSED, RetireOperator
from image_factory.retention.powershell import KEEP_NOT_ADOPTED
from image_factory.retention.steps import Decided, decisions_of
from image_factory.run_context import RunContext, RunParams
from stack.localazure import LocalAzure
from tests.integration.conftest import configuration_on, delete_upload, quick_local_azure, run_dag

pytestmark = [pytest.mark.emulator]

REPO = Path(__file__).resolve().parents[2]
SUB, RG, LAB = "11111111-1111-4111-8111-111111111111", "rg-dev", "DevLab"
DC, TAG = "Win2016/Datacenter.json", "Win2016\\Datacenter.json"
CONTAINER = "imagefactoryvhds"
TODAY = "2026-12-01"
OURS = naming.image_name(DC, TODAY)
#: The original's images of DC, oldest first (A: the Nov 1 rebuild, the day's second image).
LEGACY = ["Win2016_Datacenter-Nov-1-2026", "Win2016_Datacenter-Nov-1-2026A", "Win2016_Datacenter-Nov-2-2026"]
UNTAGGED = "Win2016_Datacenter-Oct-1-2026"
RENAMED = "Win2016_Datacenter-golden"
UNKNOWN_PATH = "Retired_Image-Oct-2-2026"
#: The original's catalogue: guid → (image name, Get-Date timestamp).
SIDECARS = {
    "0a1b2c3d-0000-4000-8000-000000000001": ("Win2016_Datacenter-Nov-1-2026", "11/1/2026 3:04:05 AM"),
    "0a1b2c3d-0000-4000-8000-000000000002": ("Win2016_Datacenter-Nov-1-2026A", "11/1/2026 4:04:05 PM"),
    "0a1b2c3d-0000-4000-8000-000000000003": ("Win2016_Datacenter-Nov-2-2026", "11/2/2026 3:04:05 AM"),
}
NO_PLAN = Plan().to_dict()


@pytest.fixture(scope="module")
def azure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalAzure]:
    tmp = tmp_path_factory.mktemp("powershell-azure")
    with quick_local_azure(REPO / "emulator" / "worlds" / "demo.json", tmp) as local:
        yield local


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory, azure: LocalAzure) -> Iterator[Path]:
    with configuration_on(azure, tmp_path_factory.mktemp("powershell-config") / "Configuration", SUB) as folder:
        yield folder


def adopt(folder: Path, on: bool) -> None:
    path = folder / "factory.json"
    doc = json.loads(path.read_text(encoding="utf-8-sig"))
    doc["ImagesToSave"] = 2
    doc["AdoptPowerShellImages"] = on
    path.write_text(json.dumps(doc), encoding="utf-8")


def _seed_catalogue(azure: LocalAzure) -> None:
    acct = azure.info["storage"]["factorystore"]
    service = BlobServiceClient(
        acct["blob_endpoint"],
        credential={"account_name": "factorystore", "account_key": acct["account_key"]},
        connection_verify=azure.ca_bundle,
    )
    client = service.get_container_client(CONTAINER)
    with contextlib.suppress(ResourceExistsError):
        client.create_container()
    disk = make_disk(64 * 1024, seed=7)
    for guid, (name, stamp) in SIDECARS.items():
        vhd = client.get_blob_client(f"{guid}.vhd")
        vhd.create_page_blob(size=len(disk))
        vhd.upload_page(disk, offset=0, length=len(disk))
        doc = {
            "imageName": name,
            "imagePath": TAG,
            "description": "Windows Server 2016 Datacenter",
            "osType": "Windows",
            "vhdFileName": f"{guid}.vhd",
            "timestamp": stamp,
        }
        # Windows PowerShell's Out-File: UTF-16 with a BOM.
        client.upload_blob(f"{guid}.json", json.dumps(doc, indent=4).encode("utf-16"), overwrite=True)


def _seed_images(azure: LocalAzure) -> None:
    hook = DevTestLabsHook()
    upload = BlobClient.from_blob_url(
        hook.generate_upload_uri(SUB, RG, LAB, "seed.vhd"), connection_verify=azure.ca_bundle
    )
    disk = make_disk(64 * 1024, seed=8)
    upload.create_page_blob(size=len(disk))
    upload.upload_page(disk, offset=0, length=len(disk))
    bodies = {
        OURS: custom_image_body(vhd_name="seed.vhd", os_type="Windows", sysprep=True, image_path=DC, version=TODAY)
    }
    # The original's images: only the ImagePath tag (as its CreateImageFromVHD template set it).
    for name, tag in [
        *((n, TAG) for n in LEGACY),
        (UNTAGGED, None),
        (RENAMED, TAG),
        (UNKNOWN_PATH, "Retired\\Image.json"),
    ]:
        body = custom_image_body(vhd_name="seed.vhd", os_type="Windows", sysprep=True, image_path=DC, version=TODAY)
        body.tags = {IMAGE_PATH_TAG: tag} if tag else {}
        bodies[name] = body
    for name, body in bodies.items():
        hook.client(SUB).custom_images.begin_create_or_update(RG, LAB, name, body, polling=False).result()
    deadline = time.monotonic() + 30
    while not all(i["provisioning_state"] == "Succeeded" for i in _images(azure)):
        assert time.monotonic() < deadline, "the local Azure did not settle"
        time.sleep(0.2)
    delete_upload(upload)


def _images(azure: LocalAzure) -> list[dict[str, Any]]:
    images: list[dict[str, Any]] = next(lab for lab in azure.state()["labs"] if lab["name"] == LAB)["images"]
    return images


def image_names(azure: LocalAzure) -> set[str]:
    return {i["name"] for i in _images(azure)}


def catalogue_blobs(azure: LocalAzure) -> set[str]:
    return {b["name"] for b in azure.state()["blobs"]["factorystore"].get(CONTAINER, [])}


@pytest.fixture(scope="module")
def seeded(azure: LocalAzure, config: Path) -> None:
    _seed_catalogue(azure)
    _seed_images(azure)


def decide(folder: Path, run_id: str, *, dry_run: bool) -> Decided:
    run = RunContext(params=RunParams.from_mapping({"dry_run": dry_run}), day=TODAY, run_id=run_id, folder=folder)
    return decisions_of(run, Plan.from_dict(NO_PLAN))


def execute(items: list[dict[str, Any]]) -> list[str]:
    return [RetireOperator(task_id=f"delete_{i}", deletion=item).execute({})["outcome"] for i, item in enumerate(items)]


def rows(items: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    return {(i["where"], i["name"], i["version"]) for i in items}


ALL_IMAGES = {OURS, *LEGACY, UNTAGGED, RENAMED, UNKNOWN_PATH}
ALL_BLOBS = {f"{guid}{ext}" for guid in SIDECARS for ext in (".json", ".vhd")}


def test_the_image_list_command_shows_who_made_each_version(azure: LocalAzure, config: Path, seeded: None) -> None:
    env = {**os.environ, **azure.connections_env(subscription_id=SUB), "PYTHONPATH": str(REPO / "plugins")}
    done = subprocess.run(
        [sys.executable, "-m", "image_factory.image_list", "--config", str(config), "--json"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    listed = {(r["lab"], r["name"]): (r["image_path"], r["version"], r["made_by"]) for r in doc["images"]}
    assert listed[(LAB, LEGACY[1])] == (DC, "2026-11-01.2", "PowerShell factory")
    assert listed[(LAB, OURS)] == (DC, TODAY, "this factory")
    assert listed[(LAB, UNTAGGED)] == ("", "2026-10-01", "unknown")
    assert listed[(LAB, RENAMED)][2] == "unknown"
    assert listed[("(factory storage)", LEGACY[2])] == (DC, "2026-11-02", "PowerShell factory")
    assert {r["lab"] for r in doc["images"]} == {LAB, "(factory storage)"}
    assert doc["notes"] == []


@pytest.mark.airflow
def test_a_dag_test_dry_run_shows_them_in_the_retire_table(
    azure: LocalAzure, config: Path, seeded: None, airflow_home: dict[str, str]
) -> None:
    adopt(config, True)
    env = {
        **airflow_home,
        **azure.connections_env(subscription_id=SUB),
        "IMAGE_FACTORY_CONFIG_DIR": str(config),
        "IMAGE_FACTORY_REPORT_DIR": str(config.parent / "reports"),
    }
    result = run_dag(env, {"dry_run": True, "capture": False}, f"{TODAY}T02:00:00")
    assert result["state"] == "success", result["log"]
    assert "Dry run: retention would do this" in result["output"]
    assert re.search(rf"would delete\s+custom_image\s+{LAB}\s+{LEGACY[0]}\s", result["output"])
    assert "adopted from the PowerShell factory" in result["output"]
    assert image_names(azure) == ALL_IMAGES and catalogue_blobs(azure) == ALL_BLOBS


def test_adoption_off_lists_the_powershell_images_as_kept_and_deletes_none(
    azure: LocalAzure, config: Path, seeded: None
) -> None:
    adopt(config, False)
    dry = decide(config, "off-dry", dry_run=True).decisions
    assert "made by the PowerShell factory, kept (AdoptPowerShellImages is off)" in dry["table"]
    kept = {(k["where"], k["name"]): k["reason"] for k in dry["kept"]}
    for name in [*LEGACY, UNKNOWN_PATH]:
        assert kept[(LAB, name)] == KEEP_NOT_ADOPTED
    for name, _stamp in SIDECARS.values():
        assert kept[("(factory storage)", name)] == KEEP_NOT_ADOPTED
    assert (LAB, UNTAGGED) not in kept and (LAB, RENAMED) not in kept
    assert any(UNTAGGED in n and "no ImagePath tag" in n for n in dry["notes"])
    real = decide(config, "off-real", dry_run=False)
    assert real.deletions == []
    assert image_names(azure) == ALL_IMAGES and catalogue_blobs(azure) == ALL_BLOBS


def test_adoption_on_deletes_the_powershell_versions_beyond_keep_n_and_nothing_else(
    azure: LocalAzure, config: Path, seeded: None
) -> None:
    adopt(config, True)
    dry = decide(config, "on-dry", dry_run=True).decisions
    beyond = {
        (LAB, LEGACY[0], "2026-11-01"),
        (LAB, LEGACY[1], "2026-11-01.2"),
        ("(factory storage)", LEGACY[0], "2026-11-01"),
    }
    assert rows(dry["deletions"]) == beyond
    assert "would delete" in dry["table"]
    assert image_names(azure) == ALL_IMAGES

    real = decide(config, "on-real", dry_run=False)
    assert rows(real.deletions) == beyond and all(d["adopted"] for d in real.deletions)
    # Switched off between decide and delete: the image is refused, not deleted.
    adopt(config, False)
    first = next(d for d in real.deletions if d["kind"] == "custom_image")
    assert execute([first])[0].startswith(REFUSED)
    assert first["name"] in image_names(azure)
    adopt(config, True)
    assert execute(real.deletions) == [DELETED] * len(real.deletions)

    # Keep-N across both kinds: this factory's image and the newest PowerShell one stay; no one else's goes.
    assert image_names(azure) == ALL_IMAGES - {LEGACY[0], LEGACY[1]}
    guid = next(g for g, (n, _s) in SIDECARS.items() if n == LEGACY[0])
    assert catalogue_blobs(azure) == ALL_BLOBS - {f"{guid}.json", f"{guid}.vhd"}
    assert decide(config, "on-again", dry_run=False).deletions == []


def test_a_powershell_image_whose_tag_changed_is_refused(azure: LocalAzure, config: Path, seeded: None) -> None:
    adopt(config, True)
    item = {
        "kind": "custom_image",
        "where": LAB,
        "name": RENAMED,
        "image_path": DC,
        "version": "2026-10-01",
        "subscription_id": SUB,
        "resource_group": RG,
        "adopted": True,
    }
    assert execute([item])[0].startswith(REFUSED)
    assert RENAMED in image_names(azure)
    assert MANAGED_BY_TAG not in next(i for i in _images(azure) if i["name"] == RENAMED)["tags"]
