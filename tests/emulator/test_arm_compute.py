"""Managed disks through the unmodified Compute SDK: get, grant (read SAS to the page blob) and revoke."""

from __future__ import annotations

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
    assert disk.name == name
    assert disk.properties is not None
    assert disk.properties.os_type == "Windows"
    assert disk.properties.disk_size_bytes == 2 * 1024 * 1024
    with pytest.raises(ResourceNotFoundError):
        compute_client(local_azure).disks.get(group, "no-such-disk")


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
