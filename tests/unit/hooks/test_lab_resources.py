"""DevTest Labs resources: the custom image PUT body, ARM id parsing, the factory VM mapping."""

from __future__ import annotations

from azure.mgmt.devtestlabs.models import ComputeVmProperties, LabVirtualMachine

from image_factory.hooks.lab_resources import custom_image_body, factory_vm, resource_group_of


def test_custom_image_body_tags_and_flags() -> None:
    body = custom_image_body(
        vhd_name="x.vhd", os_type="Linux", sysprep=False, image_path="Ubuntu/U.json", version="2025-03-01"
    )
    data = body.serialize()
    assert data["properties"]["vhd"] == {"imageName": "x.vhd", "sysPrep": False, "osType": "Linux"}
    assert data["tags"]["ImageFactory.ManagedBy"] == "airflow-image-factory"
    assert data["tags"]["ImagePath"] == "Ubuntu/U.json"


def test_ids_parse() -> None:
    assert resource_group_of("/subscriptions/s/resourceGroups/rg-dev/providers/x/labs/L") == "rg-dev"


def test_a_factory_vm_keeps_its_resource_id_and_os_disk() -> None:
    vm_id = "/subscriptions/s/resourcegroups/rg/providers/microsoft.devtestlab/labs/f/virtualmachines/vm-ubuntu"
    sdk = LabVirtualMachine.deserialize(
        {
            "id": vm_id,
            "name": "vm-ubuntu",
            "tags": {"ImagePath": "Ubuntu/Ubuntu2204.json"},
            "properties": {"provisioningState": "Succeeded", "osType": "Linux", "computeVm": {"osDiskId": "/disk"}},
        }
    )
    assert isinstance(sdk.compute_vm, ComputeVmProperties)
    vm = factory_vm(sdk)
    assert (vm.resource_id, vm.os_disk_id, vm.os_type) == (vm_id, "/disk", "Linux")
