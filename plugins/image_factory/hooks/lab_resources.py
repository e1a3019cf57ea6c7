"""DevTest Labs resources and the factory's models: ARM ids and scopes, SDK objects read, a custom image body made.

Pure mappings (no call to Azure) used by the DevTest Labs hooks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NotRequired, TypedDict

from azure.mgmt.devtestlabs.models import CustomImage, CustomImagePropertiesCustom

from image_factory.models import IMAGE_PATH_TAG, MANAGED_BY_TAG, MANAGED_BY_VALUE, VERSION_TAG, FactoryVm, LabImage
from image_factory.states import ProvisioningState

if TYPE_CHECKING:
    from azure.mgmt.devtestlabs.models import LabVirtualMachine


def lab_scope(subscription_id: str, resource_group: str | None, lab_name: str) -> str:
    """Return a readable ARM scope of a lab for messages."""
    group = resource_group or "?"
    return f"lab {lab_name} (subscription {subscription_id}, resource group {group})"


def resource_group_of(resource_id: str) -> str | None:
    """Return the resource group segment of an ARM resource id."""
    parts = resource_id.strip("/").split("/")
    lowered = [p.lower() for p in parts]
    if "resourcegroups" in lowered:
        idx = lowered.index("resourcegroups")
        if idx + 1 < len(parts):
            return parts[idx + 1]
    return None


def lab_image(image: CustomImage) -> LabImage:
    """Map an SDK custom image to the factory's ``LabImage``."""
    tags = image.tags or {}
    vhd = image.vhd
    return LabImage(
        name=str(image.name),
        provisioning_state=str(image.provisioning_state or ProvisioningState.UNKNOWN),
        image_path=tags.get(IMAGE_PATH_TAG),
        version=tags.get(VERSION_TAG),
        managed=tags.get(MANAGED_BY_TAG) == MANAGED_BY_VALUE,
        os_type=str(vhd.os_type) if vhd is not None and vhd.os_type else None,
        sysprep=vhd.sys_prep if vhd is not None else None,
        vhd_name=vhd.image_name if vhd is not None else None,
        managed_by=tags.get(MANAGED_BY_TAG),
        created=image.creation_date,
    )


def power_state(vm: LabVirtualMachine) -> str:
    """Return a lab VM's power state code without its ``PowerState/`` prefix (``deallocated``, ``running``…)."""
    compute = vm.compute_vm
    for status in (compute.statuses or []) if compute is not None else []:
        code = str(status.code or "")
        if code.startswith("PowerState/"):
            return code.split("/", 1)[1]
    return str(vm.last_known_power_state or "unknown").lower()


def factory_vm(vm: LabVirtualMachine) -> FactoryVm:
    """Map an SDK lab VM (with ``computeVm`` expanded) to ``FactoryVm``."""
    compute = vm.compute_vm
    return FactoryVm(
        name=str(vm.name),
        tags=dict(vm.tags or {}),
        provisioning_state=str(vm.provisioning_state or ProvisioningState.UNKNOWN),
        power_state=power_state(vm),
        os_type=str(vm.os_type or (compute.os_type if compute is not None else None) or "Windows"),
        os_disk_id=compute.os_disk_id if compute is not None else None,
        created=getattr(vm, "created_date", None),
        resource_id=str(vm.id) if vm.id else None,
    )


class CustomImageSpec(TypedDict):
    """What a factory custom image is made of: the uploaded VHD and the tags that say which version it is."""

    vhd_name: str
    os_type: str
    sysprep: bool
    image_path: str
    version: str
    description: NotRequired[str]


def custom_image_body(
    *,
    vhd_name: str,
    os_type: str,
    sysprep: bool,
    image_path: str,
    version: str,
    description: str = "",
) -> CustomImage:
    """Build the custom image PUT body (a VHD-based image tagged as managed by the factory)."""
    return CustomImage(
        vhd=CustomImagePropertiesCustom(image_name=vhd_name, sys_prep=sysprep, os_type=os_type),
        description=description or f"{image_path} ({version}), made by the image factory",
        tags={IMAGE_PATH_TAG: image_path, VERSION_TAG: version, MANAGED_BY_TAG: MANAGED_BY_VALUE},
    )
