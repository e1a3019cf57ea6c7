"""DevTest Labs 2018-09-15: labs, generateUploadUri and virtual machines (custom images: ``custom_images``)."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.responses import JSONResponse, Response

from emulator.arm.core import ArmRoute, Call, Handler, Services, paged
from emulator.arm.custom_images import CustomImages
from emulator.arm.errors import ArmError, invalid_parameter
from emulator.arm.labs import (
    API_VERSIONS,
    LABS_PATH,
    NAMESPACE,
    UPLOAD_CONTAINER,
    LabDirectory,
    LabState,
    VmState,
    artifact_deployment_status,
)
from emulator.world import compute_resource_group

log = logging.getLogger(__name__)

#: Lifetime and permissions of a generateUploadUri SAS: create+write to upload or copy, read to watch the
#: copy status, delete to remove the blob once the custom image is Succeeded.
UPLOAD_SAS_HOURS = 2
UPLOAD_SAS_PERMISSION = "rcwd"


class DevTestLabs(LabDirectory):
    """State and handlers of the DevTest Labs provider."""

    def __init__(self, services: Services) -> None:
        """Hold the world's labs; custom images are served by ``self.images``."""
        super().__init__(services)
        self.images = CustomImages(self)

    # -- bodies ------------------------------------------------------------------------------------

    @staticmethod
    def lab_body(lab: LabState) -> dict[str, Any]:
        """Render a lab resource."""
        spec = lab.spec
        account = (
            f"/subscriptions/{spec.subscription_id}/resourceGroups/{spec.resource_group}"
            f"/providers/Microsoft.Storage/storageAccounts/{spec.storage_account}"
        )
        return {
            "id": lab.id,
            "name": spec.name,
            "type": f"{NAMESPACE}/labs",
            "location": spec.location,
            "tags": {},
            "properties": {
                "defaultStorageAccount": account,
                "defaultPremiumStorageAccount": account,
                "artifactsStorageAccount": account,
                "premiumDataDiskStorageAccount": account,
                "vaultName": f"/subscriptions/{spec.subscription_id}/resourceGroups/{spec.resource_group}"
                f"/providers/Microsoft.KeyVault/vaults/{spec.name.lower()}kv",
                "labStorageType": "Premium",
                "createdDate": lab.created,
                "premiumDataDisks": "Disabled",
                "environmentPermission": "Reader",
                "provisioningState": "Succeeded",
                "uniqueIdentifier": lab.unique_id,
            },
        }

    @staticmethod
    def vm_body(lab: LabState, vm: VmState, *, expand_compute: bool, expand_artifacts: bool = False) -> dict[str, Any]:
        """Render a lab VM, with ``properties.computeVm`` and ``properties.artifacts`` when expanded."""
        spec = vm.spec
        compute_rg = compute_resource_group(lab.spec, spec)
        compute_id = (
            f"/subscriptions/{lab.spec.subscription_id}/resourceGroups/{compute_rg}"
            f"/providers/Microsoft.Compute/virtualMachines/{spec.name}"
        )
        props: dict[str, Any] = {
            "ownerObjectId": "",
            "createdByUser": "",
            "createdDate": vm.created,
            "computeId": compute_id,
            "osType": spec.os_type,
            "size": spec.size,
            "userName": "labadmin",
            "isAuthenticationWithSshKey": False,
            "labSubnetName": f"{lab.spec.name}Subnet",
            "labVirtualNetworkId": f"{lab.id}/virtualnetworks/{lab.spec.name.lower()}",
            "disallowPublicIpAddress": True,
            "allowClaim": False,
            "storageType": "Premium",
            "virtualMachineCreationSource": "FromGalleryImage",
            "lastKnownPowerState": "Running" if vm.power_state == "running" else "Stopped",
            "provisioningState": vm.provisioning_state,
            "uniqueIdentifier": vm.unique_id,
            "artifactDeploymentStatus": artifact_deployment_status(vm.artifacts),
            **vm.properties,
        }
        if expand_artifacts:
            props["artifacts"] = [artifact.body() for artifact in vm.artifacts]
        if expand_compute:
            prov = "succeeded" if vm.provisioning_state == "Succeeded" else vm.provisioning_state.lower()
            props["computeVm"] = {
                "statuses": [
                    {"code": f"ProvisioningState/{prov}", "displayStatus": f"Provisioning {prov}"},
                    {"code": f"PowerState/{vm.power_state}", "displayStatus": f"VM {vm.power_state}"},
                ],
                "osType": spec.os_type,
                "vmSize": spec.size,
                "networkInterfaceId": f"/subscriptions/{lab.spec.subscription_id}/resourceGroups/{compute_rg}"
                f"/providers/Microsoft.Network/networkInterfaces/{spec.name}",
                "osDiskId": vm.disk.id,
                "dataDiskIds": [],
                "dataDisks": [],
            }
        return {
            "id": f"{lab.id}/virtualmachines/{spec.name}".lower(),
            "name": spec.name,
            "type": f"{NAMESPACE}/labs/virtualMachines",
            "location": lab.spec.location,
            "tags": dict(spec.tags),
            "properties": props,
        }

    # -- labs --------------------------------------------------------------------------------------

    async def labs_list_by_subscription(self, call: Call) -> Response:
        """List the labs of a subscription the principal may read."""
        sub = call.params["sub"]
        scope = f"/subscriptions/{sub}"
        if not self.services.authorizer.any_role_within(call.principal, scope):
            self.authorize(call, scope, f"{NAMESPACE}/labs/read", write=False)
        if sub.lower() not in self.services.world.subscriptions:
            raise ArmError(404, "SubscriptionNotFound", f"The subscription '{sub}' could not be found.")
        items = [
            self.lab_body(lab)
            for lab in self.labs.values()
            if lab.spec.subscription_id == sub.lower()
            and self.services.authorizer.role_at(call.principal, lab.id, write=False)
        ]
        return paged(call, items, self.page_size())

    async def labs_list_by_resource_group(self, call: Call) -> Response:
        """List the labs of a resource group the principal may read."""
        sub, rg = call.params["sub"], call.params["rg"]
        scope = f"/subscriptions/{sub}/resourceGroups/{rg}"
        if not self.services.authorizer.any_role_within(call.principal, scope):
            self.authorize(call, scope, f"{NAMESPACE}/labs/read", write=False)
        self.check_group(sub, rg)
        items = [
            self.lab_body(lab)
            for (s, r, _), lab in self.labs.items()
            if s == sub.lower()
            and r == rg.lower()
            and self.services.authorizer.role_at(call.principal, lab.id, write=False)
        ]
        return paged(call, items, self.page_size())

    async def labs_get(self, call: Call) -> Response:
        """Get one lab."""
        self.authorize(call, self.lab_scope(call), f"{NAMESPACE}/labs/read", write=False)
        return JSONResponse(self.lab_body(self.lab(call, parent=False)))

    async def labs_generate_upload_uri(self, call: Call) -> Response:
        """Return a short-lived SAS to upload one blob into the lab's ``uploads`` container."""
        self.authorize(call, self.lab_scope(call), f"{NAMESPACE}/labs/generateUploadUri/action", write=True)
        lab = self.lab(call, parent=False)
        raw = await call.request.body()
        body = await call.json_body() if raw.strip() else {}
        blob_name = body.get("blobName") or f"{uuid.uuid4()}.vhd"
        if not isinstance(blob_name, str) or "/" in blob_name or "\\" in blob_name or len(blob_name) > 1024:
            raise invalid_parameter("blobName must be a blob name without '/'.", target="blobName")
        storage = self.services.storage
        account = lab.spec.storage_account
        await storage.ensure_container(account, UPLOAD_CONTAINER)
        expiry = datetime.now(UTC) + timedelta(hours=UPLOAD_SAS_HOURS)
        uri = storage.blob_sas_url(
            account, UPLOAD_CONTAINER, blob_name, permission=UPLOAD_SAS_PERMISSION, expiry=expiry, purpose="upload"
        )
        log.info("upload uri issued for %s/%s/%s", account, UPLOAD_CONTAINER, blob_name)
        return JSONResponse({"uploadUri": uri})

    # -- virtual machines --------------------------------------------------------------------------

    def _expand_compute(self, call: Call) -> bool:
        return "computevm" in (call.query("$expand") or "").replace(" ", "").lower()

    def _expand_artifacts(self, call: Call) -> bool:
        return "artifacts" in (call.query("$expand") or "").replace(" ", "").lower()

    async def vms_list(self, call: Call) -> Response:
        """List a lab's VMs."""
        scope = f"{self.lab_scope(call)}/virtualmachines"
        self.authorize(call, scope, f"{NAMESPACE}/labs/virtualMachines/read", write=False)
        lab = self.lab(call, parent=True)
        expand, artifacts = self._expand_compute(call), self._expand_artifacts(call)
        items = [self.vm_body(lab, vm, expand_compute=expand, expand_artifacts=artifacts) for vm in lab.vms.values()]
        return paged(call, items, self.page_size())

    async def vms_get(self, call: Call) -> Response:
        """Get one lab VM."""
        lab, vm = self.get_child(call, "virtualMachines", lambda lab: lab.vms)
        return JSONResponse(
            self.vm_body(
                lab, vm, expand_compute=self._expand_compute(call), expand_artifacts=self._expand_artifacts(call)
            )
        )

    async def vms_delete(self, call: Call) -> Response:
        """Delete a lab VM (LRO)."""
        return self.delete_child(call, "virtualMachines", "virtual machine", lambda lab: lab.vms)

    # -- state and routes --------------------------------------------------------------------------

    def state(self) -> list[dict[str, Any]]:
        """Describe every lab, its VMs and images for ``GET /_emulator/state``."""
        result = []
        for lab in self.labs.values():
            images = []
            for image in lab.images.values():
                entry = {
                    "name": image.name,
                    "provisioning_state": image.provisioning_state,
                    "tags": dict(image.tags),
                    "vhd": dict(image.vhd),
                    "size_bytes": image.size_bytes,
                    "footer_sha256": image.footer_sha256,
                    "creation_date": image.creation_date,
                }
                if image.error:
                    entry["error"] = dict(image.error)
                images.append(entry)
            vms = [
                {
                    "name": vm.spec.name,
                    "provisioning_state": vm.provisioning_state,
                    "power_state": vm.power_state,
                    "os_type": vm.spec.os_type,
                    "tags": dict(vm.spec.tags),
                    "os_disk_id": vm.disk.id,
                    "os_disk": vm.disk.describe(),
                    "artifacts": [{"name": a.name, "status": a.status} for a in vm.artifacts],
                    "artifact_deployment_status": artifact_deployment_status(vm.artifacts),
                }
                for vm in lab.vms.values()
            ]
            result.append(
                {
                    "name": lab.spec.name,
                    "subscription_id": lab.spec.subscription_id,
                    "resource_group": lab.spec.resource_group,
                    "location": lab.spec.location,
                    "storage_account": lab.spec.storage_account,
                    "images": images,
                    "vms": vms,
                }
            )
        return result

    def routes(self) -> list[ArmRoute]:
        """Return the DevTest Labs operations (custom images included)."""
        lab = LABS_PATH + "/{lab}"
        vms = lab + "/virtualmachines"

        def route(method: str, template: str, operation: str, action: str, handler: Handler) -> ArmRoute:
            return ArmRoute(method, template, operation, f"{NAMESPACE}/labs{action}", handler, API_VERSIONS)

        subscription_labs = "/subscriptions/{sub}/providers/Microsoft.DevTestLab/labs"
        return [
            route("GET", subscription_labs, "Labs_ListBySubscription", "/read", self.labs_list_by_subscription),
            route("GET", LABS_PATH, "Labs_ListByResourceGroup", "/read", self.labs_list_by_resource_group),
            route("GET", lab, "Labs_Get", "/read", self.labs_get),
            route(
                "POST",
                lab + "/generateUploadUri",
                "Labs_GenerateUploadUri",
                "/generateUploadUri/action",
                self.labs_generate_upload_uri,
            ),
            route("GET", vms, "VirtualMachines_List", "/virtualMachines/read", self.vms_list),
            route("GET", vms + "/{name}", "VirtualMachines_Get", "/virtualMachines/read", self.vms_get),
            route("DELETE", vms + "/{name}", "VirtualMachines_Delete", "/virtualMachines/delete", self.vms_delete),
            *self.images.routes(),
        ]
