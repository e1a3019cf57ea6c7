"""Changing the local Azure between nights as an administrator would (control API), read back with the SDK."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.mgmt.compute.models import Disk
from azure.mgmt.devtestlabs import models
from azure.storage.blob import BlobClient, BlobType, ContainerClient

from emulator.vhd import footer_problem, make_disk
from tests.emulator.conftest import SUB1, EmulatorProcess, compute_client, control_get, control_post, dtl_client

pytestmark = pytest.mark.emulator

FACTORY, FACTORY_RG = "ImageFactory", "rg-imagefactory"
CREATED = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)
WORLD: dict[str, Any] = {
    "tenant_id": "72f988bf-0000-4000-8000-00000000f00d",
    "created": "2026-11-01T00:00:00Z",
    "principals": [
        {"name": "image-factory", "roles": [{"scope": f"/subscriptions/{SUB1}", "role": "Contributor"}]},
        {"name": "outsider", "roles": []},
    ],
    "subscriptions": [{"id": SUB1, "resource_groups": [{"name": FACTORY_RG}, {"name": "rg-dev"}, {"name": "rg-old"}]}],
    "labs": [
        {
            "name": FACTORY,
            "subscription": SUB1,
            "resource_group": FACTORY_RG,
            "storage_account": "factorystore",
            "vms": [
                {"name": f"vm-{n}", "tags": {"ImagePath": f"Win/{n}.json"}, "created": CREATED.isoformat()}
                for n in ("rebuilt", "cycled", "powered", "granted", "copied")
            ],
        },
        {"name": "DevLab", "subscription": SUB1, "resource_group": "rg-dev", "storage_account": "devlabstore"},
        {"name": "OldLab", "subscription": SUB1, "resource_group": "rg-old", "storage_account": "oldlabstore"},
    ],
}


@pytest.fixture(scope="module")
def azure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A local Azure of its own (these tests change its world), with short operations."""
    folder = tmp_path_factory.mktemp("world-changes")
    world = folder / "world.json"
    world.write_text(json.dumps(WORLD), encoding="utf-8")
    emulator = EmulatorProcess(world, folder)
    info = dict(emulator.info)
    control_post(info, "/config", {"lro_seconds": 0.5, "copy_seconds": 0.5})
    yield info
    assert emulator.stop() == 0, f"the emulator failed; see {emulator.log_path}"


def _vm_body(vm: str) -> dict[str, str]:
    return {"subscription": SUB1, "resource_group": FACTORY_RG, "lab": FACTORY, "vm": vm}


def _change(info: dict[str, Any], path: str, body: dict[str, Any]) -> dict[str, Any]:
    answer = control_post(info, path, body)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def _os_disk_id(info: dict[str, Any], vm: str) -> str:
    machine = dtl_client(info).virtual_machines.get(FACTORY_RG, FACTORY, vm, expand="properties($expand=computeVm)")
    assert machine.compute_vm is not None and machine.compute_vm.os_disk_id
    return machine.compute_vm.os_disk_id


def _disk(info: dict[str, Any], disk_id: str) -> Disk:
    parts = disk_id.split("/")
    return compute_client(info).disks.get(parts[4], parts[8])


def _grant(info: dict[str, Any], disk_id: str) -> str:
    parts = disk_id.split("/")
    access = compute_client(info).disks.begin_grant_access(
        parts[4], parts[8], {"access": "Read", "durationInSeconds": 600}
    )
    sas = access.result().access_sas
    assert sas
    return sas


def _revoke(info: dict[str, Any], disk_id: str) -> None:
    parts = disk_id.split("/")
    compute_client(info).disks.begin_revoke_access(parts[4], parts[8]).result()


def _vhd_digest(info: dict[str, Any], disk_id: str) -> str:
    """Read the disk's VHD through a read SAS, as capture does; check its footer; return its SHA-256."""
    blob = BlobClient.from_blob_url(_grant(info, disk_id), connection_verify=info["ca_bundle"])
    data = blob.download_blob().readall()
    _revoke(info, disk_id)
    assert footer_problem(data[-512:], len(data)) is None
    return hashlib.sha256(data).hexdigest()


def test_initial_disks_take_their_times_from_the_world_file(azure: dict[str, Any]) -> None:
    props = _disk(azure, _os_disk_id(azure, "vm-rebuilt")).properties
    assert props is not None
    assert props.time_created == props.last_ownership_update_time == CREATED
    lab = dtl_client(azure).labs.get("rg-dev", "DevLab")
    assert lab.created_date == datetime(2026, 11, 1, tzinfo=UTC)


def test_rebuild_gives_a_new_disk(azure: dict[str, Any]) -> None:
    old_id = _os_disk_id(azure, "vm-rebuilt")
    old = _disk(azure, old_id).properties
    old_digest = _vhd_digest(azure, old_id)
    started = datetime.now(UTC)
    answer = _change(azure, "/vms/rebuild", _vm_body("vm-rebuilt"))
    new_id = _os_disk_id(azure, "vm-rebuilt")
    assert answer["previous_disk"]["id"] == old_id and answer["disk"]["id"] == new_id != old_id
    new = _disk(azure, new_id).properties
    assert old is not None and new is not None
    assert new.unique_id != old.unique_id
    assert new.time_created is not None and new.time_created >= started > old.time_created
    assert new.last_ownership_update_time is not None and new.last_ownership_update_time >= started
    assert new.disk_state == "Reserved" and new.disk_size_bytes == old.disk_size_bytes
    assert _vhd_digest(azure, new_id) != old_digest
    with pytest.raises(ResourceNotFoundError) as gone:
        _disk(azure, old_id)
    assert gone.value.error is not None and gone.value.error.code == "ResourceNotFound"
    machine = dtl_client(azure).virtual_machines.get(FACTORY_RG, FACTORY, "vm-rebuilt")
    assert machine.tags == {"ImagePath": "Win/rebuilt.json"} and machine.last_known_power_state == "Stopped"
    state = control_get(azure, "/state")
    assert state["world_changes"][-1]["change"] == "rebuild"
    blobs = {b["name"] for b in state["blobs"]["diskstore"]["disks"]}
    assert answer["disk"]["blob"].rsplit("/", 1)[1] in blobs
    assert answer["previous_disk"]["blob"].rsplit("/", 1)[1] not in blobs


def test_cycle_keeps_the_disk_and_changes_its_content(azure: dict[str, Any]) -> None:
    disk_id = _os_disk_id(azure, "vm-cycled")
    before = _disk(azure, disk_id).properties
    digest = _vhd_digest(azure, disk_id)
    answer = _change(azure, "/vms/cycle", _vm_body("vm-cycled"))
    assert answer["power_state"] == "deallocated" and answer["disk"]["boots"] == 1
    after = _disk(azure, disk_id).properties
    assert before is not None and after is not None
    assert _os_disk_id(azure, "vm-cycled") == disk_id
    assert (after.unique_id, after.time_created) == (before.unique_id, before.time_created)
    assert after.last_ownership_update_time is not None and before.last_ownership_update_time is not None
    assert after.last_ownership_update_time > before.last_ownership_update_time
    assert after.disk_state == "Reserved"
    assert _vhd_digest(azure, disk_id) != digest


def test_cycling_a_running_vm_boots_it_once_more(azure: dict[str, Any]) -> None:
    body = _vm_body("vm-cycled")
    _change(azure, "/vms/power", {**body, "state": "running"})
    answer = _change(azure, "/vms/cycle", body)
    assert answer["previous_disk"]["boots"] == 2 and answer["disk"]["boots"] == 3
    assert answer["power_state"] == "deallocated"


def test_power_state_moves_the_ownership_time(azure: dict[str, Any]) -> None:
    disk_id = _os_disk_id(azure, "vm-powered")
    body = _vm_body("vm-powered")
    times = [_disk(azure, disk_id).properties.last_ownership_update_time]  # type: ignore[union-attr]
    running = _change(azure, "/vms/power", {**body, "state": "running"})
    assert running["changed"] and running["previous_power_state"] == "deallocated"
    props = _disk(azure, disk_id).properties
    assert props is not None and props.disk_state == "Attached"
    times.append(props.last_ownership_update_time)
    with pytest.raises(HttpResponseError) as refused:
        _grant(azure, disk_id)
    assert refused.value.status_code == 409
    assert not _change(azure, "/vms/power", {**body, "state": "running"})["changed"]
    _change(azure, "/vms/power", {**body, "state": "stopped"})
    assert _disk(azure, disk_id).properties.last_ownership_update_time == times[-1]  # type: ignore[union-attr]
    _change(azure, "/vms/power", {**body, "state": "deallocated"})
    props = _disk(azure, disk_id).properties
    assert props is not None and props.disk_state == "Reserved"
    times.append(props.last_ownership_update_time)
    assert times == sorted(times) and len(set(times)) == 3


def test_a_disk_with_an_active_sas_is_not_changed(azure: dict[str, Any]) -> None:
    disk_id = _os_disk_id(azure, "vm-granted")
    parts = disk_id.split("/")
    control_post(azure, "/config", {"lro_seconds": 5})
    try:
        granting = compute_client(azure).disks.begin_grant_access(
            parts[4], parts[8], {"access": "Read", "durationInSeconds": 600}
        )
        busy = control_post(azure, "/vms/rebuild", _vm_body("vm-granted"))
        assert busy.status_code == 409 and "in progress" in busy.json()["error"]
        granting.result()
    finally:
        control_post(azure, "/config", {"lro_seconds": 0.5})
    for path in ("/vms/cycle", "/vms/rebuild"):
        refused = control_post(azure, path, _vm_body("vm-granted"))
        assert refused.status_code == 409 and "active SAS" in refused.json()["error"]
    _revoke(azure, disk_id)
    _change(azure, "/vms/cycle", _vm_body("vm-granted"))


def test_a_copy_taken_before_a_change_keeps_its_bytes(azure: dict[str, Any]) -> None:
    """Capture copies the disk away; changing the disk afterwards must not change the copy."""
    disk_id = _os_disk_id(azure, "vm-copied")
    account = azure["storage"]["factorystore"]
    container = ContainerClient(
        account["blob_endpoint"],
        "captured",
        credential={"account_name": "factorystore", "account_key": account["account_key"]},
        connection_verify=azure["ca_bundle"],
    )
    container.create_container()
    target = container.get_blob_client("copied.vhd")
    target.start_copy_from_url(_grant(azure, disk_id))  # as capture copies: asynchronously
    deadline = time.monotonic() + 30
    while (status := target.get_blob_properties().copy.status) == "pending" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert status == "success"
    _revoke(azure, disk_id)
    copied = hashlib.sha256(target.download_blob().readall()).hexdigest()
    _change(azure, "/vms/cycle", _vm_body("vm-copied"))
    _change(azure, "/vms/rebuild", _vm_body("vm-copied"))
    assert hashlib.sha256(target.download_blob().readall()).hexdigest() == copied


def test_a_deleted_lab_answers_404(azure: dict[str, Any]) -> None:
    client = dtl_client(azure)
    uri = client.labs.generate_upload_uri("rg-old", "OldLab", blob_name="img.vhd").upload_uri
    assert uri
    BlobClient.from_blob_url(uri, connection_verify=azure["ca_bundle"]).upload_blob(
        make_disk(1024 * 1024, 3), blob_type=BlobType.PAGEBLOB
    )
    image = models.CustomImage(vhd=models.CustomImagePropertiesCustom(image_name="img.vhd", os_type="Windows"))
    client.custom_images.begin_create_or_update("rg-old", "OldLab", "img", image).result()
    answer = _change(azure, "/labs/delete", {"subscription": SUB1, "resource_group": "rg-old", "lab": "OldLab"})
    assert answer["custom_images"] == ["img"] and answer["vms"] == []
    with pytest.raises(ResourceNotFoundError) as lab_gone:
        client.labs.get("rg-old", "OldLab")
    assert lab_gone.value.error is not None and lab_gone.value.error.code == "ResourceNotFound"
    with pytest.raises(ResourceNotFoundError) as images_gone:
        list(client.custom_images.list("rg-old", "OldLab"))
    assert images_gone.value.error is not None and images_gone.value.error.code == "ParentResourceNotFound"
    with pytest.raises(ResourceNotFoundError):
        client.labs.generate_upload_uri("rg-old", "OldLab", blob_name="again.vhd")
    assert "OldLab" not in {lab.name for lab in client.labs.list_by_subscription()}
    state = control_get(azure, "/state")
    assert "OldLab" not in {lab["name"] for lab in state["labs"]}
    assert state["world_changes"][-1]["change"] == "delete-lab"
    assert control_post(azure, "/labs/delete", {"lab": "OldLab"}).status_code == 404


def test_deleting_the_factory_lab_takes_its_vms_and_disks(azure: dict[str, Any]) -> None:
    disk_id = _os_disk_id(azure, "vm-powered")
    answer = _change(azure, "/labs/delete", {"lab": FACTORY})
    assert disk_id in answer["disks"] and "vm-powered" in answer["vms"]
    with pytest.raises(ResourceNotFoundError) as gone:
        _disk(azure, disk_id)
    assert gone.value.error is not None and gone.value.error.code == "ResourceGroupNotFound"
    assert control_get(azure, "/state")["blobs"]["diskstore"]["disks"] == []


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/vms/rebuild", {"vm": "vm-cycled"}, 400),
        ("/vms/rebuild", {"lab": "DevLab"}, 400),
        ("/vms/cycle", {"lab": "DevLab", "vm": "vm-nowhere"}, 404),
        ("/vms/power", {"lab": "DevLab", "vm": "x", "state": "hibernated"}, 400),
        ("/vms/power", {"lab": "DevLab", "vm": "x", "state": "running"}, 404),
        ("/labs/delete", {"lab": "NoSuchLab"}, 404),
        ("/labs/delete", [], 400),
    ],
)
def test_bad_change_requests(azure: dict[str, Any], path: str, body: Any, status: int) -> None:
    assert control_post(azure, path, body).status_code == status
