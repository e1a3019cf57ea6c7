"""Managed disks through the unmodified Compute SDK: get, grant (read SAS to the page blob) and revoke."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.mgmt.compute.aio import ComputeManagementClient as AsyncComputeManagementClient
from azure.storage.blob import BlobClient

from emulator.vhd import footer_problem
from tests.emulator.conftest import SUB1, aio_credential, compute_client, control_get, dtl_client

pytestmark = pytest.mark.emulator


def _disk(info: dict[str, Any], vm: str) -> tuple[str, str]:
    machine = dtl_client(info).virtual_machines.get(
        "rg-imagefactory", "ImageFactory", vm, expand="properties($expand=computeVm)"
    )
    assert machine.compute_vm is not None and machine.compute_vm.os_disk_id
    parts = machine.compute_vm.os_disk_id.split("/")
    return parts[4], parts[8]


def test_disk_get(local_azure: dict[str, Any]) -> None:
    group, name = _disk(local_azure, "vm-datacenter")
    disk = compute_client(local_azure).disks.get(group, name)
    assert disk.id == f"/subscriptions/{SUB1}/resourceGroups/{group}/providers/Microsoft.Compute/disks/{name}"
    assert (disk.name, disk.type, disk.location) == (name, "Microsoft.Compute/disks", "westeurope")
    assert disk.sku is not None and disk.sku.name == "Premium_LRS"
    props = disk.properties
    assert props is not None
    assert (props.os_type, props.hyper_v_generation, props.creation_data.create_option) == (
        "Windows",
        "V1",
        "FromImage",
    )
    assert (props.disk_size_gb, props.disk_size_bytes) == (1, 2 * 1024 * 1024)
    assert props.unique_id and uuid.UUID(props.unique_id)
    assert (props.provisioning_state, props.disk_state) == ("Succeeded", "Reserved")
    # The demo world names no creation time: its disks were made, and their VMs last deallocated, at a fixed time.
    assert props.time_created == props.last_ownership_update_time == datetime(2026, 1, 1, tzinfo=UTC)
    again = compute_client(local_azure, principal="reader").disks.get(group, name).properties
    assert again is not None and again.unique_id == props.unique_id and again.time_created == props.time_created


def test_disk_body_uses_azure_names_and_time_format(local_azure: dict[str, Any]) -> None:
    group, name = _disk(local_azure, "vm-ubuntu")
    raw = compute_client(local_azure).disks.get(group, name, cls=lambda response, *_: response.http_response.json())
    props = raw["properties"]
    assert props["timeCreated"] == props["LastOwnershipUpdateTime"] == "2026-01-01T00:00:00.0000000+00:00"
    assert props["osType"] == "Linux" and props["diskSizeBytes"] == 1024 * 1024


def test_a_running_vms_disk_is_attached(local_azure: dict[str, Any]) -> None:
    group, name = _disk(local_azure, "vm-datacenter-wip")
    props = compute_client(local_azure).disks.get(group, name).properties
    assert props is not None and props.disk_state == "Attached"


def test_disk_get_is_counted(local_azure: dict[str, Any]) -> None:
    group, name = _disk(local_azure, "vm-vs2017")
    before = control_get(local_azure, "/stats")["arm"]["requests"].get("Disks_Get", 0)
    compute_client(local_azure).disks.get(group, name)
    assert control_get(local_azure, "/stats")["arm"]["requests"]["Disks_Get"] == before + 1


def test_missing_and_forbidden_disks_answer_as_azure(local_azure: dict[str, Any]) -> None:
    group, name = _disk(local_azure, "vm-datacenter")
    with pytest.raises(ResourceNotFoundError) as missing:
        compute_client(local_azure).disks.get(group, "no-such-disk")
    assert missing.value.error is not None and missing.value.error.code == "ResourceNotFound"
    assert f"Microsoft.Compute/disks/no-such-disk' under resource group '{group}'" in str(missing.value)
    with pytest.raises(ResourceNotFoundError) as no_group:
        compute_client(local_azure).disks.get("rg-nowhere", name)
    assert no_group.value.error is not None and no_group.value.error.code == "ResourceGroupNotFound"
    with pytest.raises(HttpResponseError) as forbidden:
        compute_client(local_azure, principal="outsider").disks.get(group, name)
    assert forbidden.value.status_code == 403
    assert forbidden.value.error is not None and forbidden.value.error.code == "AuthorizationFailed"
    assert "Microsoft.Compute/disks/read" in str(forbidden.value)


def test_grant_gives_a_readable_sas_and_revoke_ends_it(local_azure: dict[str, Any]) -> None:
    group, name = _disk(local_azure, "vm-vs2017")
    client = compute_client(local_azure)
    before = control_get(local_azure, "/stats")["disk_access"]["granted_now"]
    access = client.disks.begin_grant_access(group, name, {"access": "Read", "durationInSeconds": 600}).result()
    assert access.access_sas
    blob = BlobClient.from_blob_url(access.access_sas, connection_verify=local_azure["ca_bundle"])
    props = blob.get_blob_properties()
    assert props.blob_type == "PageBlob"
    footer = blob.download_blob(offset=props.size - 512, length=512).readall()
    assert footer_problem(footer, props.size) is None
    assert control_get(local_azure, "/stats")["disk_access"]["granted_now"] == before + 1
    assert client.disks.get(group, name).properties.disk_state == "ActiveSAS"
    client.disks.begin_revoke_access(group, name).result()
    assert control_get(local_azure, "/stats")["disk_access"]["granted_now"] == before
    with pytest.raises(HttpResponseError) as caught:
        blob.upload_blob(b"x" * 512, overwrite=True)
    assert caught.value.status_code == 403, "a disk SAS must be read-only"


def test_grant_on_a_running_vm_is_refused(local_azure: dict[str, Any]) -> None:
    group, name = _disk(local_azure, "vm-datacenter-wip")
    with pytest.raises(HttpResponseError) as caught:
        compute_client(local_azure).disks.begin_grant_access(group, name, {"access": "Read", "durationInSeconds": 60})
    assert caught.value.status_code == 409
    assert caught.value.error is not None and caught.value.error.code == "OperationNotAllowed"


def test_reader_cannot_grant(local_azure: dict[str, Any]) -> None:
    group, name = _disk(local_azure, "vm-ubuntu")
    with pytest.raises(HttpResponseError) as caught:
        compute_client(local_azure, principal="reader").disks.begin_grant_access(
            group, name, {"access": "Read", "durationInSeconds": 60}
        )
    assert caught.value.status_code == 403
    assert "Microsoft.Compute/disks/beginGetAccess/action" in str(caught.value)


async def test_grant_with_the_async_client(local_azure: dict[str, Any]) -> None:
    group, name = _disk(local_azure, "vm-ubuntu")
    credential = aio_credential(local_azure)
    async with (
        credential,
        AsyncComputeManagementClient(
            credential, SUB1, base_url=local_azure["arm_endpoint"], connection_verify=local_azure["ca_bundle"]
        ) as client,
    ):
        poller = await client.disks.begin_grant_access(group, name, {"access": "Read", "durationInSeconds": 60})
        access = await poller.result()
        assert access.access_sas and "/diskstore/disks/" in access.access_sas
        revoke = await client.disks.begin_revoke_access(group, name)
        await revoke.result()
