"""The issue's "done" script: only the SDKs and the JSON line, from a factory VM's disk to a lab's custom image."""

from __future__ import annotations

import time
from typing import Any

import pytest
from azure.mgmt.devtestlabs import models
from azure.storage.blob import BlobClient

from tests.emulator.conftest import SUB1, SUB2, compute_client, control_get, delete_upload, dtl_client

pytestmark = pytest.mark.emulator


def test_walkthrough(local_azure: dict[str, Any]) -> None:
    factory = dtl_client(local_azure, SUB1)
    labs = {lab.name for lab in factory.labs.list_by_subscription()}
    labs |= {lab.name for lab in dtl_client(local_azure, SUB2).labs.list_by_subscription()}
    assert labs == {"ImageFactory", "DevLab", "TestLab", "QALab"}

    vms = {
        vm.name: vm
        for vm in factory.virtual_machines.list(
            "rg-imagefactory", "ImageFactory", expand="properties($expand=computeVm)"
        )
    }
    source = vms["vm-datacenter"]
    assert source.tags is not None and source.tags["ImagePath"] == "Win2016/Datacenter.json"
    assert source.compute_vm is not None and source.compute_vm.os_disk_id
    disk_parts = source.compute_vm.os_disk_id.split("/")
    compute = compute_client(local_azure, SUB1)
    access = compute.disks.begin_grant_access(
        disk_parts[4], disk_parts[8], {"access": "Read", "durationInSeconds": 3600}
    ).result()
    assert access.access_sas

    upload_uri = factory.labs.generate_upload_uri("rg-dev", "DevLab", blob_name="walkthrough.vhd").upload_uri
    assert upload_uri
    target = BlobClient.from_blob_url(upload_uri, connection_verify=local_azure["ca_bundle"])
    target.start_copy_from_url(access.access_sas)
    deadline = time.monotonic() + 60
    while (status := target.get_blob_properties().copy.status) == "pending":
        assert time.monotonic() < deadline, "the copy did not finish"
        time.sleep(0.3)
    assert status == "success"

    image = factory.custom_images.begin_create_or_update(
        "rg-dev",
        "DevLab",
        "Win2016-Datacenter-walkthrough",
        models.CustomImage(
            vhd=models.CustomImagePropertiesCustom(image_name="walkthrough.vhd", os_type="Windows", sys_prep=True),
            tags={"ImagePath": "Win2016/Datacenter.json", "ImageFactory.ManagedBy": "airflow-image-factory"},
        ),
    ).result()
    assert image.provisioning_state == "Succeeded"

    delete_upload(local_azure, upload_uri)  # the upload SAS has no delete: the factory's data role deletes
    compute.disks.begin_revoke_access(disk_parts[4], disk_parts[8]).result()
    again = factory.custom_images.get("rg-dev", "DevLab", "Win2016-Datacenter-walkthrough")
    assert again.provisioning_state == "Succeeded"
    assert again.tags == {"ImagePath": "Win2016/Datacenter.json", "ImageFactory.ManagedBy": "airflow-image-factory"}
    uploads = control_get(local_azure, "/state")["blobs"]["devlabstore"].get("uploads", [])
    assert "walkthrough.vhd" not in {blob["name"] for blob in uploads}
    factory.custom_images.begin_delete("rg-dev", "DevLab", "Win2016-Datacenter-walkthrough").result()
