"""DevTest Labs through the unmodified SDK: labs, paging, VMs, generateUploadUri, custom image LROs."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.mgmt.devtestlabs import models
from azure.storage.blob import BlobClient, BlobType

from emulator.vhd import make_disk
from tests.emulator.conftest import SUB1, SUB2, aio_dtl_client, control_get, control_post, dtl_client

pytestmark = pytest.mark.emulator

MIB = 1024 * 1024


def _upload(
    info: dict[str, Any], rg: str, lab: str, blob: str, data: bytes, *, blob_type: BlobType, sub: str = SUB1
) -> str:
    """Upload ``data`` as ``uploads/<blob>`` of a lab through its generateUploadUri SAS; return the SAS URL."""
    uri = dtl_client(info, sub).labs.generate_upload_uri(rg, lab, blob_name=blob).upload_uri
    assert uri is not None
    client = BlobClient.from_blob_url(uri, connection_verify=info["ca_bundle"])
    client.upload_blob(data, blob_type=blob_type, overwrite=True)
    return uri


def _image(blob: str, os_type: str = "Windows", sys_prep: bool = True, **tags: str) -> models.CustomImage:
    return models.CustomImage(
        vhd=models.CustomImagePropertiesCustom(image_name=blob, os_type=os_type, sys_prep=sys_prep),
        tags=tags or None,
        description="made by a test",
    )


def test_labs_by_subscription_and_resource_group(local_azure: dict[str, Any]) -> None:
    sub1 = sorted(lab.name for lab in dtl_client(local_azure, SUB1).labs.list_by_subscription())
    assert sub1 == ["DevLab", "ImageFactory", "TestLab"]
    sub2 = [lab.name for lab in dtl_client(local_azure, SUB2).labs.list_by_subscription()]
    assert sub2 == ["QALab"]
    in_rg = [lab.name for lab in dtl_client(local_azure, SUB1).labs.list_by_resource_group("rg-test")]
    assert in_rg == ["TestLab"]


def test_lab_properties(local_azure: dict[str, Any]) -> None:
    lab = dtl_client(local_azure, SUB2).labs.get("rg-qa", "QALab")
    assert lab.location == "northeurope"
    assert lab.provisioning_state == "Succeeded"
    assert lab.default_storage_account is not None and lab.default_storage_account.endswith(
        "/storageAccounts/qalabstore"
    )
    assert lab.lab_storage_type == "Premium"
    assert lab.id == f"/subscriptions/{SUB2}/resourcegroups/rg-qa/providers/microsoft.devtestlab/labs/qalab"


def test_paging_with_page_size_one(settings: dict[str, Any]) -> None:
    assert control_post(settings, "/config", {"page_size": 1}).status_code == 200
    control_post(settings, "/reset-stats", {})
    pages = list(dtl_client(settings, SUB1).labs.list_by_subscription().by_page())
    names = [lab.name for page in pages for lab in page]
    assert len(pages) == 3
    assert sorted(names) == ["DevLab", "ImageFactory", "TestLab"]
    assert control_get(settings, "/stats")["arm"]["requests"]["Labs_ListBySubscription"] == 3
    vms = list(dtl_client(settings).virtual_machines.list("rg-imagefactory", "ImageFactory", top=2))
    assert len(vms) == 2


def test_filter_and_orderby(local_azure: dict[str, Any]) -> None:
    client = dtl_client(local_azure)
    tagged = list(
        client.virtual_machines.list(
            "rg-imagefactory", "ImageFactory", filter="tags/ImagePath eq 'Win2016/Datacenter.json'"
        )
    )
    assert sorted(vm.name for vm in tagged) == ["vm-broken", "vm-datacenter", "vm-datacenter-wip"]
    ordered = [vm.name for vm in client.virtual_machines.list("rg-imagefactory", "ImageFactory", orderby="name desc")]
    assert ordered == sorted(ordered, reverse=True)
    with pytest.raises(HttpResponseError) as caught:
        list(client.virtual_machines.list("rg-imagefactory", "ImageFactory", filter="startswith(name, 'vm')"))
    assert caught.value.status_code == 400


def test_factory_vms_with_compute_expansion(local_azure: dict[str, Any]) -> None:
    vms = {
        vm.name: vm
        for vm in dtl_client(local_azure).virtual_machines.list(
            "rg-imagefactory", "ImageFactory", expand="properties($expand=computeVm)"
        )
    }
    assert set(vms) == {
        "vm-vs2017",
        "vm-datacenter",
        "vm-sqlexpress",
        "vm-ubuntu",
        "vm-datacenter-wip",
        "vm-scratch",
        "vm-broken",
    }
    ubuntu = vms["vm-ubuntu"]
    assert ubuntu.os_type == "Linux"
    assert ubuntu.tags == {"ImagePath": "Ubuntu/Ubuntu2204.json"}
    assert ubuntu.compute_vm is not None and ubuntu.compute_vm.statuses is not None
    codes = {s.code for s in ubuntu.compute_vm.statuses}
    assert codes == {"PowerState/deallocated", "ProvisioningState/succeeded"}
    assert "/providers/Microsoft.Compute/disks/" in (ubuntu.compute_vm.os_disk_id or "")
    assert vms["vm-sqlexpress"].tags == {"ImagePath": "Win2016/SQLExpress.json", "ImageType": "Specialized"}
    wip = vms["vm-datacenter-wip"].compute_vm
    assert wip is not None and wip.statuses is not None
    assert "PowerState/running" in {s.code for s in wip.statuses}
    assert vms["vm-broken"].provisioning_state == "Failed"
    assert vms["vm-scratch"].tags == {}
    plain = dtl_client(local_azure).virtual_machines.get("rg-imagefactory", "ImageFactory", "vm-ubuntu")
    assert plain.compute_vm is None
    assert plain.os_type == "Linux"


def test_generate_upload_uri_is_a_write_sas_for_one_blob(local_azure: dict[str, Any]) -> None:
    response = dtl_client(local_azure).labs.generate_upload_uri("rg-test", "TestLab", blob_name="probe.vhd")
    uri = response.upload_uri or ""
    assert uri.startswith(local_azure["storage"]["testlabstore"]["blob_endpoint"] + "/uploads/probe.vhd?")
    assert "sp=rcw&" in uri + "&"
    issued = control_get(local_azure, "/stats")["sas_issued"]
    assert any(entry["purpose"] == "upload" and entry["blob"] == "probe.vhd" for entry in issued)
    client = BlobClient.from_blob_url(uri, connection_verify=local_azure["ca_bundle"])
    client.upload_blob(make_disk(MIB, 5), blob_type=BlobType.PAGEBLOB, overwrite=True)
    other = BlobClient.from_blob_url(
        uri.replace("/probe.vhd?", "/other.vhd?"), connection_verify=local_azure["ca_bundle"]
    )
    with pytest.raises(HttpResponseError) as caught:
        other.upload_blob(b"x" * 512, blob_type=BlobType.PAGEBLOB)
    assert caught.value.status_code == 403


def test_custom_image_lifecycle(local_azure: dict[str, Any]) -> None:
    name = f"img-{uuid.uuid4().hex[:8]}"
    blob = f"{name}.vhd"
    _upload(local_azure, "rg-dev", "DevLab", blob, make_disk(2 * MIB, 7), blob_type=BlobType.PAGEBLOB)
    client = dtl_client(local_azure)
    poller = client.custom_images.begin_create_or_update(
        "rg-dev", "DevLab", name, _image(blob, "Linux", False, ImagePath="Ubuntu/Ubuntu2204.json")
    )
    creating = client.custom_images.get("rg-dev", "DevLab", name)
    assert creating.provisioning_state == "Creating"
    with pytest.raises(ResourceExistsError) as conflict:
        client.custom_images.begin_create_or_update("rg-dev", "DevLab", name, _image(blob))
    assert conflict.value.status_code == 409
    image = poller.result()
    assert image.provisioning_state == "Succeeded"
    assert image.vhd is not None and image.vhd.image_name == blob and image.vhd.os_type == "Linux"
    assert image.vhd.sys_prep is False
    assert image.tags == {"ImagePath": "Ubuntu/Ubuntu2204.json"}
    assert name in {i.name for i in client.custom_images.list("rg-dev", "DevLab")}
    state = control_get(local_azure, "/state")
    devlab = next(lab for lab in state["labs"] if lab["name"] == "DevLab")
    recorded = next(i for i in devlab["images"] if i["name"] == name)
    assert recorded["size_bytes"] == 2 * MIB + 512 and recorded["footer_sha256"]
    client.custom_images.begin_delete("rg-dev", "DevLab", name).result()
    with pytest.raises(ResourceNotFoundError):
        client.custom_images.get("rg-dev", "DevLab", name)
    assert name not in {i.name for i in client.custom_images.list("rg-dev", "DevLab")}
    client.custom_images.begin_delete("rg-dev", "DevLab", name).result()  # absent: 204, still fine


def test_delete_image_of_missing_lab_is_parent_not_found(local_azure: dict[str, Any]) -> None:
    with pytest.raises(ResourceNotFoundError) as caught:
        dtl_client(local_azure).custom_images.begin_delete("rg-dev", "NoSuchLab", "img").result()
    assert caught.value.error is not None and caught.value.error.code == "ParentResourceNotFound"


def _bad_vhd_cases() -> list[tuple[str, bytes | None, BlobType, str]]:
    good = make_disk(MIB, 3)
    other_size = make_disk(2 * MIB, 3)
    corrupted = good[:-512] + bytes(512)
    wrong_size = good[:-512] + other_size[-512:]
    return [
        ("missing", None, BlobType.PAGEBLOB, "was not found"),
        ("block", good, BlobType.BLOCKBLOB, "page blob"),
        ("oddsize", good + b"x", BlobType.BLOCKBLOB, "page blob"),
        ("footer", corrupted, BlobType.PAGEBLOB, "footer"),
        ("size", wrong_size, BlobType.PAGEBLOB, "size mismatch"),
    ]


@pytest.mark.parametrize(
    ("case", "data", "blob_type", "expected"), _bad_vhd_cases(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_custom_image_from_bad_vhd_fails(
    local_azure: dict[str, Any], case: str, data: bytes | None, blob_type: BlobType, expected: str
) -> None:
    name = f"bad-{case}-{uuid.uuid4().hex[:6]}"
    blob = f"{name}.vhd"
    if data is not None:
        _upload(local_azure, "rg-test", "TestLab", blob, data, blob_type=blob_type)
    client = dtl_client(local_azure)
    poller = client.custom_images.begin_create_or_update("rg-test", "TestLab", name, _image(blob))
    with pytest.raises(HttpResponseError) as caught:
        poller.result()
    assert caught.value.error is not None and caught.value.error.code == "InvalidVhd"
    assert expected in str(caught.value)
    assert client.custom_images.get("rg-test", "TestLab", name).provisioning_state == "Failed"


def test_custom_image_needs_a_valid_body(local_azure: dict[str, Any]) -> None:
    client = dtl_client(local_azure)
    bad = models.CustomImage(vhd=models.CustomImagePropertiesCustom(image_name="x.vhd", os_type="Solaris"))
    with pytest.raises(HttpResponseError) as caught:
        client.custom_images.begin_create_or_update("rg-dev", "DevLab", "bad-body", bad)
    assert caught.value.status_code == 400
    assert caught.value.error is not None and caught.value.error.code == "InvalidParameter"
    with pytest.raises(HttpResponseError) as empty:
        client.custom_images.begin_create_or_update("rg-dev", "DevLab", "bad-body", models.CustomImage())
    assert empty.value.status_code == 400


async def test_custom_image_with_the_async_client(local_azure: dict[str, Any]) -> None:
    name = f"aio-{uuid.uuid4().hex[:8]}"
    blob = f"{name}.vhd"
    _upload(local_azure, "rg-qa", "QALab", blob, make_disk(MIB, 11), blob_type=BlobType.PAGEBLOB, sub=SUB2)
    client = aio_dtl_client(local_azure, SUB2)
    async with client:
        poller = await client.custom_images.begin_create_or_update(
            "rg-qa", "QALab", name, _image(blob, "Windows", False)
        )
        image = await poller.result()
        assert image.provisioning_state == "Succeeded"
        names = [i.name async for i in client.custom_images.list("rg-qa", "QALab")]
        assert name in names
        labs = [lab.name async for lab in client.labs.list_by_subscription()]
        assert labs == ["QALab"]
        delete = await client.custom_images.begin_delete("rg-qa", "QALab", name)
        await delete.result()
        with pytest.raises(ResourceNotFoundError):
            await client.custom_images.get("rg-qa", "QALab", name)
    await client._config.credential.close()  # type: ignore[attr-defined]


def test_stats_count_operations_and_lros(local_azure: dict[str, Any]) -> None:
    control_post(local_azure, "/reset-stats", {})
    name = f"stats-{uuid.uuid4().hex[:6]}"
    client = dtl_client(local_azure)
    client.labs.get("rg-dev", "DevLab")
    poller = client.custom_images.begin_create_or_update("rg-dev", "DevLab", name, _image("nothing.vhd"))
    with pytest.raises(HttpResponseError):
        poller.result()
    arm = control_get(local_azure, "/stats")["arm"]
    assert arm["requests"]["Labs_Get"] == 1
    assert arm["requests"]["CustomImages_CreateOrUpdate"] == 1
    assert arm["reads"] >= 1 and arm["writes"] == 1
    assert arm["lros_started"] == 1 and arm["lros_finished"] == 1
    assert arm["lro_polls"] >= 1
