"""Retention and factory clean-up executed against the local Azure: the retire group's task bodies and operator.

One emulator serves the module (the demo world plus a ``FactoryIgnore`` VM). It is seeded with three dated
versions of two ImagePaths (catalogue VHDs + sidecars with the storage SDK, custom images in the labs through the
DevTest Labs SDK with the factory's tags), a version of an ImagePath whose golden image does not exist, an image a
lab does not subscribe to, and a user's image without the factory's marker. The tests run in file order: dry runs
for N = 3, 2, 1 first (nothing changes), then the racing checks, then N = 2 and N = 1 for real, then clean-up.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException
from azure.core.exceptions import ResourceExistsError
from azure.mgmt.devtestlabs.models import CustomImage
from azure.storage.blob import BlobClient, BlobServiceClient

from emulator.vhd import make_disk
from image_factory import naming
from image_factory.catalogue import sidecar_json
from image_factory.exceptions import ImageFactoryError
from image_factory.hooks.devtestlabs import DevTestLabsHook
from image_factory.hooks.lab_resources import custom_image_body
from image_factory.models import MANAGED_BY_TAG, ImageVersion, LabRef, Plan
from image_factory.retention.operator import ALREADY_GONE, DELETED, RetireOperator
from image_factory.retention.steps import Decided, decisions_of, record
from image_factory.run_context import RunContext, RunParams
from stack.localazure import LocalAzure
from tests.integration.conftest import configuration_on, delete_upload, quick_local_azure

pytestmark = [pytest.mark.emulator]

REPO = Path(__file__).resolve().parents[2]
SUB1 = "11111111-1111-4111-8111-111111111111"
SUB2 = "22222222-2222-4222-8222-222222222222"
LABS = {
    "ImageFactory": (SUB1, "rg-imagefactory"),
    "DevLab": (SUB1, "rg-dev"),
    "TestLab": (SUB1, "rg-test"),
    "QALab": (SUB2, "rg-qa"),
}
DC, UB, LEGACY = "Win2016/Datacenter.json", "Ubuntu/Ubuntu2204.json", "Win2008/Legacy.json"
D1, D2, D3 = "2025-01-01", "2025-01-02", "2025-01-03"
CONTAINER = "imagefactoryvhds"
USER_IMAGE = naming.image_name(DC, D1) + "-mine"
#: (lab, ImagePath, version) of every managed image seeded.
SEEDED_IMAGES = [
    *[("DevLab", p, v) for p in (DC, UB) for v in (D1, D2, D3)],
    ("DevLab", LEGACY, D2),
    *[("TestLab", DC, v) for v in (D1, D2, D3)],
    ("TestLab", UB, D2),
    *[("QALab", UB, v) for v in (D1, D2, D3)],
    *[("ImageFactory", UB, v) for v in (D1, D2, D3)],
]
SEEDED_CATALOGUE = [*[(p, v) for p in (DC, UB) for v in (D1, D2, D3)], (LEGACY, D1), (LEGACY, D2)]
#: What every N deletes on top of the rules that ignore N (removed golden image, unsubscribed lab).
ALWAYS = {
    ("catalogue_version", "(factory storage)", LEGACY, D1),
    ("catalogue_version", "(factory storage)", LEGACY, D2),
    ("custom_image", "DevLab", LEGACY, D2),
    ("custom_image", "TestLab", UB, D2),
}


def _older(version: str) -> set[tuple[str, str, str, str]]:
    """Everything seeded at ``version`` except the rules in ALWAYS: the catalogue and each lab's copies."""
    rows = {("catalogue_version", "(factory storage)", p, version) for p in (DC, UB)}
    rows |= {("custom_image", lab, p, v) for lab, p, v in SEEDED_IMAGES if v == version and p in (DC, UB)}
    return rows - {("custom_image", "TestLab", UB, D2)}


EXPECTED = {3: ALWAYS, 2: ALWAYS | _older(D1), 1: ALWAYS | _older(D1) | _older(D2)}


def _world(tmp: Path) -> Path:
    world = json.loads((REPO / "emulator" / "worlds" / "demo.json").read_text())
    factory = next(lab for lab in world["labs"] if lab["name"] == "ImageFactory")
    factory["vms"].append(
        {"name": "vm-keep", "os_type": "Linux", "tags": {"ImagePath": UB, "FactoryIgnore": "true"}, "disk_size_mib": 1}
    )
    path = tmp / "world.json"
    path.write_text(json.dumps(world))
    return path


@pytest.fixture(scope="module")
def azure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalAzure]:
    tmp = tmp_path_factory.mktemp("retention-azure")
    with quick_local_azure(_world(tmp), tmp) as local:
        yield local


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory, azure: LocalAzure) -> Iterator[Path]:
    """A Configuration/ copy, the connections and the report folder pointed at this module's local Azure."""
    with configuration_on(azure, tmp_path_factory.mktemp("retention-config") / "Configuration", SUB1) as folder:
        yield folder


def keep(folder: Path, n: int) -> None:
    path = folder / "factory.json"
    doc = json.loads(path.read_text())
    doc["ImagesToSave"] = n
    path.write_text(json.dumps(doc))


def _catalogue_client(azure: LocalAzure) -> Any:
    acct = azure.info["storage"]["factorystore"]
    service = BlobServiceClient(
        acct["blob_endpoint"],
        credential={"account_name": "factorystore", "account_key": acct["account_key"]},
        connection_verify=azure.ca_bundle,
    )
    client = service.get_container_client(CONTAINER)
    with contextlib.suppress(ResourceExistsError):
        client.create_container()
    return client


def _upload_page_blob(blob: Any, data: bytes) -> None:
    blob.create_page_blob(size=len(data))
    blob.upload_page(data, offset=0, length=len(data))


def _seed_catalogue(azure: LocalAzure) -> None:
    client = _catalogue_client(azure)
    disk = make_disk(64 * 1024, seed=1)
    now = datetime.now(UTC).isoformat()
    for path, version in SEEDED_CATALOGUE:
        name = naming.image_name(path, version)
        source = {(UB, D3): "vm-ubuntu", (DC, D3): "vm-datacenter"}.get((path, version))
        # vm-datacenter's sidecar predates the VM (a VM re-created since): not captured. The others: just now.
        stamp = f"{version}T02:00:00+00:00" if source == "vm-datacenter" else now
        _seed_version(client, disk, name, path=path, version=version, stamp=stamp, source=source)


def _seed_version(
    client: Any, disk: bytes, name: str, *, path: str, version: str, stamp: str, source: str | None
) -> None:
    image = ImageVersion(
        image_name=name,
        image_path=path,
        version=version,
        vhd_blob=naming.vhd_blob(name),
        os_type="Linux" if path == UB else "Windows",
        sysprep=True,
        timestamp=stamp,
        source_vm=source,
    )
    _upload_page_blob(client.get_blob_client(image.vhd_blob), disk)
    client.upload_blob(f"{name}.json", sidecar_json(image), overwrite=True)


def _lab_upload(hook: DevTestLabsHook, lab: str, blob: str, data: bytes | None, azure: LocalAzure) -> BlobClient:
    sub, rg = LABS[lab]
    url = hook.generate_upload_uri(sub, rg, lab, blob)
    client = BlobClient.from_blob_url(url, connection_verify=azure.ca_bundle)
    if data is not None:
        _upload_page_blob(client, data)
    return client


def _seed_images(azure: LocalAzure) -> None:
    hook = DevTestLabsHook()
    disk = make_disk(64 * 1024, seed=2)
    uploads = {lab: _lab_upload(hook, lab, "seed.vhd", disk, azure) for lab in LABS}
    bodies: list[tuple[str, str, CustomImage]] = []
    for lab, path, version in SEEDED_IMAGES:
        body = custom_image_body(
            vhd_name="seed.vhd",
            os_type="Linux" if path == UB else "Windows",
            sysprep=True,
            image_path=path,
            version=version,
        )
        bodies.append((lab, naming.image_name(path, version), body))
    # A user's image: same ImagePath tag, a factory-like name, no ManagedBy marker.
    user = custom_image_body(vhd_name="seed.vhd", os_type="Windows", sysprep=True, image_path=DC, version=D1)
    user.tags = {k: v for k, v in (user.tags or {}).items() if k != MANAGED_BY_TAG}
    bodies.append(("DevLab", USER_IMAGE, user))
    for lab, name, body in bodies:
        sub, rg = LABS[lab]
        hook.client(sub).custom_images.begin_create_or_update(rg, lab, name, body, polling=False).result()
    _wait(azure, lambda s: all(i["provisioning_state"] == "Succeeded" for i in _images(s)))
    for blob in uploads.values():
        delete_upload(blob)


def _wait(azure: LocalAzure, done: Any, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not done(azure.state()):
        assert time.monotonic() < deadline, "the local Azure did not settle"
        time.sleep(0.2)


def _images(state: dict[str, Any]) -> list[dict[str, Any]]:
    return [dict(i, lab=lab["name"]) for lab in state["labs"] for i in lab["images"]]


def managed_images(state: dict[str, Any]) -> set[tuple[str, str, str]]:
    return {
        (i["lab"], i["tags"]["ImagePath"], i["tags"]["ImageFactory.Version"])
        for i in _images(state)
        if i["tags"].get(MANAGED_BY_TAG)
    }


def catalogue_blobs(state: dict[str, Any]) -> set[str]:
    return {b["name"] for b in state["blobs"]["factorystore"].get(CONTAINER, [])}


def vms(state: dict[str, Any]) -> set[str]:
    factory = next(lab for lab in state["labs"] if lab["name"] == "ImageFactory")
    return {vm["name"] for vm in factory["vms"]}


@pytest.fixture(scope="module")
def seeded(azure: LocalAzure, config: Path) -> dict[str, Any]:
    _seed_catalogue(azure)
    _seed_images(azure)
    return azure.state()


NO_PLAN = Plan().to_dict()


def rows(items: list[dict[str, Any]]) -> set[tuple[str, str, str, str]]:
    return {(i["kind"], i["where"], i["image_path"], i["version"]) for i in items}


def decide(
    params: dict[str, Any], *, plan_doc: dict[str, Any] | None, version: str, run_id: str, folder: Path
) -> Decided:
    """Run the decide step on this run's plan (None: the plan task failed) as the DAG's task would."""
    run = RunContext(params=RunParams.from_mapping(params), day=version, run_id=run_id, folder=folder)
    return decisions_of(run, Plan.from_dict(plan_doc) if plan_doc is not None else None)


def decide_dry(params: dict[str, Any], plan: dict[str, Any], run_id: str, config: Path) -> dict[str, Any]:
    """Decide in a dry run: nothing to map over; return the decisions handed on to report."""
    result: Decided = decide({**params, "dry_run": True}, plan_doc=plan, version=D3, run_id=run_id, folder=config)
    assert result.deletions == []
    return result.decisions


@pytest.mark.parametrize("n", [3, 2, 1])
def test_dry_run_reports_keep_n_and_changes_nothing(azure: LocalAzure, config: Path, seeded: Any, n: int) -> None:
    keep(config, n)
    azure.post("/reset-stats", {})
    before = azure.state()
    doc = decide_dry({}, NO_PLAN, f"dry-{n}", config)
    assert azure.state() == before
    stats = azure.stats()["arm"]
    assert stats["writes"] == 0 and stats["actions"] == 0
    assert rows(doc["deletions"]) == EXPECTED[n]
    assert "would delete" in doc["table"]
    assert USER_IMAGE not in json.dumps(doc["deletions"]), "a user's image is never a candidate"
    catalogue = [d for d in doc["deletions"] if d["kind"] == "catalogue_version"]
    assert all(len(d["blobs"]) == 2 and d["blobs"][0].endswith(".json") for d in catalogue)


def test_retention_reads_each_lab_with_one_image_list(azure: LocalAzure, config: Path, seeded: Any) -> None:
    """Retention needs the images, not the lab's region: one list per lab (and the factory), no lab read."""
    keep(config, 3)
    azure.post("/reset-stats", {})
    decide_dry({}, NO_PLAN, "reads", config)
    requests = azure.stats()["arm"]["requests"]
    labs = len(json.loads((config / "labs.json").read_text(encoding="utf-8-sig"))["Labs"])
    assert requests.get("Labs_Get", 0) == 0
    assert requests["CustomImages_List"] == labs + 1


def test_an_inventory_without_a_lab_read_still_finds_a_missing_lab(azure: LocalAzure, config: Path) -> None:
    hook = DevTestLabsHook()
    missing = hook.inventory(LabRef(SUB1, "NoSuchLab", (), "rg-dev"), locate=False)
    assert missing.status == "not_found" and "NoSuchLab" in missing.message and "labs.json" in missing.message
    found = hook.inventory(LabRef(SUB1, "DevLab", (), "rg-dev"), locate=False)
    assert found.status == "ok" and found.resource_group == "rg-dev" and found.location is None
    assert found.images == hook.inventory(LabRef(SUB1, "DevLab", (), "rg-dev")).images


#: What a version planned for, or uploading into, QALab keeps: QALab's copy and the catalogue's (its source).
QALAB_UB_D1 = {("custom_image", "QALab", UB, D1), ("catalogue_version", "(factory storage)", UB, D1)}


def test_a_version_this_run_planned_is_kept_in_that_lab_and_the_catalogue(config: Path, seeded: Any) -> None:
    keep(config, 2)
    plan = Plan(expected=(("QALab", UB, D1),)).to_dict()
    doc = decide_dry({}, plan, "planned", config)
    assert rows(doc["deletions"]) == EXPECTED[2] - QALAB_UB_D1
    kept = {(k["where"], k["version"]) for k in doc["kept"] if k["image_path"] == UB}
    assert ("QALab", D1) in kept and ("(factory storage)", D1) in kept
    # Another lab's copy of that version is not what QALab's distribution uses.
    assert {("custom_image", lab, UB, D1) for lab in ("DevLab", "ImageFactory")} <= rows(doc["deletions"])


def test_an_upload_in_flight_protects_its_version(azure: LocalAzure, config: Path, seeded: Any) -> None:
    keep(config, 2)
    hook = DevTestLabsHook()
    blob = _lab_upload(hook, "QALab", naming.vhd_blob(naming.image_name(UB, D1)), make_disk(64 * 1024, 3), azure)
    try:
        racing = decide({}, plan_doc=NO_PLAN, version=D3, run_id="racing", folder=config)
    finally:
        delete_upload(blob)
    assert rows(racing.deletions) == EXPECTED[2] - QALAB_UB_D1
    assert racing.decisions["deletions"] == racing.deletions
    kept = [k for k in racing.decisions["kept"] if (k["image_path"], k["version"]) == (UB, D1)]
    assert {(k["kind"], k["where"], UB, D1) for k in kept} == QALAB_UB_D1
    assert all("still uploading" in k["reason"] for k in kept)


def execute(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [RetireOperator(task_id=f"delete_{i}", deletion=item).execute({}) for i, item in enumerate(items)]  # type: ignore[arg-type]


def test_keep_two_then_one_deletes_the_older_versions_and_spares_the_user_image(
    azure: LocalAzure, config: Path, seeded: Any
) -> None:
    for n, run_id in ((2, "real-2"), (1, "real-1")):
        keep(config, n)
        result = decide({}, plan_doc=NO_PLAN, version=D3, run_id=run_id, folder=config)
        items = result.deletions
        assert rows(items) == EXPECTED[n] - (EXPECTED[2] if n == 1 else set())
        outcomes = execute(items)
        assert {o["outcome"] for o in outcomes} == {DELETED}
        assert record(result.decisions, outcomes)["outcomes"] == {DELETED: len(items)}
        _wait(azure, lambda s: all(i["provisioning_state"] == "Succeeded" for i in _images(s)))
        # Idempotent: a retry of every deletion finds it gone.
        assert {o["outcome"] for o in execute(items)} == {ALREADY_GONE}
    state = azure.state()
    newest = {(lab, p, v) for lab, p, v in SEEDED_IMAGES if v == D3}
    assert managed_images(state) == newest
    assert USER_IMAGE in {i["name"] for i in _images(state)}
    stems = {naming.image_name(p, v) for p, v in SEEDED_CATALOGUE if v == D3 and p != LEGACY}
    assert catalogue_blobs(state) == {f"{s}{ext}" for s in stems for ext in (".json", ".vhd")}
    assert decide({}, plan_doc=NO_PLAN, version=D3, run_id="after", folder=config).deletions == []


def test_factory_clean_up_deletes_captured_and_failed_vms_then_fails(azure: LocalAzure, config: Path) -> None:
    # vm-datacenter-wip was captured (a same-day copy of the Datacenter image names it), then started again.
    wip = naming.image_name(DC, D3) + "-wip"
    now = datetime.now(UTC).isoformat()
    _seed_version(
        _catalogue_client(azure),
        make_disk(64 * 1024, 4),
        wip,
        path=DC,
        version=D3,
        stamp=now,
        source="vm-datacenter-wip",
    )
    params = {"retire": False, "clean_factory": True}
    clean = decide(params, plan_doc=NO_PLAN, version=D3, run_id="clean", folder=config)
    items = clean.deletions
    assert {(i["name"], i["error"]) for i in items} == {("vm-ubuntu", False), ("vm-broken", True)}
    kept = {k["name"]: k["reason"] for k in clean.decisions["kept"]}
    assert "FactoryIgnore" in kept["vm-keep"]
    assert "untagged" in kept["vm-scratch"]
    assert "not captured" in kept["vm-datacenter"], "its sidecar predates the VM"
    assert "running" in kept["vm-datacenter-wip"]
    before = vms(azure.state())
    outcomes = execute(items)
    with pytest.raises(ImageFactoryError, match="vm-broken"):
        record(clean.decisions, outcomes)
    assert vms(azure.state()) == before - {"vm-ubuntu", "vm-broken"}
    assert decide(params, plan_doc=NO_PLAN, version=D3, run_id="clean-again", folder=config).deletions == []


def test_without_a_plan_nothing_is_retired(config: Path) -> None:
    with pytest.raises(AirflowFailException, match="plan"):
        decide({}, plan_doc=None, version=D3, run_id="no-plan", folder=config)
