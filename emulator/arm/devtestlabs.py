"""DevTest Labs 2018-09-15: labs, generateUploadUri, virtual machines and custom images."""

from __future__ import annotations

import hashlib
import logging
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.responses import JSONResponse, Response

from emulator.arm.core import ArmRoute, Call, Services, paged
from emulator.arm.errors import ArmError, invalid_parameter, not_found, parent_not_found, resource_group_not_found
from emulator.arm.lro import LroFailure
from emulator.world import LabSpec, VmSpec, compute_resource_group

log = logging.getLogger(__name__)

API_VERSIONS = ("2018-09-15",)
NAMESPACE = "Microsoft.DevTestLab"
UPLOAD_CONTAINER = "uploads"
#: Lifetime and permissions of a generateUploadUri SAS: create+write to upload or copy, read to watch the
#: copy status, delete to remove the blob once the custom image is Succeeded.
UPLOAD_SAS_HOURS = 2
UPLOAD_SAS_PERMISSION = "rcwd"
_LABS = "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.DevTestLab/labs"
_CREATING_STATES = {"Creating", "Deleting"}


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def lab_id(lab: LabSpec) -> str:
    """Return a lab's resource id (DevTest Labs answers ids in lower case)."""
    return (
        f"/subscriptions/{lab.subscription_id}/resourcegroups/{lab.resource_group}"
        f"/providers/microsoft.devtestlab/labs/{lab.name}"
    ).lower()


def disk_name(lab: LabSpec, vm: VmSpec) -> str:
    """Return the managed OS disk name of a lab VM."""
    return f"{vm.name}_OsDisk_1_{hashlib.sha256(f'{lab.name}/{vm.name}'.encode()).hexdigest()[:32]}"


def disk_id(lab: LabSpec, vm: VmSpec) -> str:
    """Return the managed OS disk resource id of a lab VM."""
    return (
        f"/subscriptions/{lab.subscription_id}/resourceGroups/{compute_resource_group(lab, vm)}"
        f"/providers/Microsoft.Compute/disks/{disk_name(lab, vm)}"
    )


class _VhdProblem(Exception):
    """An uploaded VHD DevTest Labs would refuse."""

    def __init__(self, message: str, size: int) -> None:
        super().__init__(message)
        self.size = size


@dataclass
class VmState:
    """A lab VM as the emulator holds it."""

    spec: VmSpec
    provisioning_state: str
    power_state: str
    created: str = field(default_factory=_now)
    unique_id: str = field(default_factory=lambda: str(uuid.uuid4()))


@dataclass
class ImageState:
    """A custom image; once Succeeded it keeps its own record of the VHD (size, footer digest)."""

    name: str
    location: str
    tags: dict[str, str]
    vhd: dict[str, Any]
    description: str | None
    author: str | None
    provisioning_state: str = "Creating"
    creation_date: str = field(default_factory=_now)
    unique_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    size_bytes: int | None = None
    footer_sha256: str | None = None
    operation_id: str | None = None
    error: dict[str, str] | None = None


@dataclass
class LabState:
    """A lab with its VMs and custom images."""

    spec: LabSpec
    vms: dict[str, VmState]
    images: dict[str, ImageState] = field(default_factory=dict)
    created: str = field(default_factory=_now)
    unique_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    @property
    def id(self) -> str:
        """Resource id of the lab."""
        return lab_id(self.spec)


class DevTestLabs:
    """State and handlers of the DevTest Labs provider."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.labs: dict[tuple[str, str, str], LabState] = {}
        for spec in services.world.labs:
            vms = {
                vm.name.lower(): VmState(spec=vm, provisioning_state=vm.provisioning_state, power_state=vm.power_state)
                for vm in spec.vms
            }
            key = (spec.subscription_id.lower(), spec.resource_group.lower(), spec.name.lower())
            self.labs[key] = LabState(spec=spec, vms=vms)

    # -- lookup helpers ---------------------------------------------------------------------------

    def _authorize(self, call: Call, scope: str, action: str, *, write: bool) -> None:
        self.services.authorizer.check(call.principal, scope, action, write=write)

    def _check_group(self, sub: str, rg: str) -> None:
        world = self.services.world
        if sub.lower() not in world.subscriptions:
            raise ArmError(404, "SubscriptionNotFound", f"The subscription '{sub}' could not be found.")
        if (sub.lower(), rg.lower()) not in world.resource_groups:
            raise resource_group_not_found(rg)

    def _lab(self, call: Call, *, parent: bool) -> LabState:
        sub, rg, name = call.params["sub"], call.params["rg"], call.params["lab"]
        self._check_group(sub, rg)
        lab = self.labs.get((sub.lower(), rg.lower(), name.lower()))
        if lab is None:
            if parent:
                raise parent_not_found(f"{NAMESPACE}/labs", name, rg)
            raise not_found(f"{NAMESPACE}/labs", name, rg)
        return lab

    def find_vm_by_disk(self, disk_resource_id: str) -> tuple[LabState, VmState] | None:
        """Find the lab VM whose OS disk has this resource id."""
        for lab in self.labs.values():
            for vm in lab.vms.values():
                if disk_id(lab.spec, vm.spec).lower() == disk_resource_id.lower():
                    return lab, vm
        return None

    def _settings_delay(self) -> float:
        return self.services.world.settings.lro_seconds

    def _page_size(self) -> int:
        return self.services.world.settings.page_size

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
    def vm_body(lab: LabState, vm: VmState, *, expand_compute: bool) -> dict[str, Any]:
        """Render a lab VM, with ``properties.computeVm`` when expanded."""
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
        }
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
                "osDiskId": disk_id(lab.spec, spec),
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

    @staticmethod
    def image_body(lab: LabState, image: ImageState) -> dict[str, Any]:
        """Render a custom image."""
        props: dict[str, Any] = {
            "vhd": dict(image.vhd),
            "creationDate": image.creation_date,
            "provisioningState": image.provisioning_state,
            "uniqueIdentifier": image.unique_id,
        }
        if image.description is not None:
            props["description"] = image.description
        if image.author is not None:
            props["author"] = image.author
        return {
            "id": f"{lab.id}/customimages/{image.name}".lower(),
            "name": image.name,
            "type": f"{NAMESPACE}/labs/customImages",
            "location": image.location,
            "tags": dict(image.tags),
            "properties": props,
        }

    # -- labs --------------------------------------------------------------------------------------

    async def labs_list_by_subscription(self, call: Call) -> Response:
        """List the labs of a subscription the principal may read."""
        sub = call.params["sub"]
        scope = f"/subscriptions/{sub}"
        if not self.services.authorizer.any_role_within(call.principal, scope):
            self._authorize(call, scope, f"{NAMESPACE}/labs/read", write=False)
        if sub.lower() not in self.services.world.subscriptions:
            raise ArmError(404, "SubscriptionNotFound", f"The subscription '{sub}' could not be found.")
        items = [
            self.lab_body(lab)
            for lab in self.labs.values()
            if lab.spec.subscription_id == sub.lower()
            and self.services.authorizer.role_at(call.principal, lab.id, write=False)
        ]
        return paged(call, items, self._page_size())

    async def labs_list_by_resource_group(self, call: Call) -> Response:
        """List the labs of a resource group the principal may read."""
        sub, rg = call.params["sub"], call.params["rg"]
        scope = f"/subscriptions/{sub}/resourceGroups/{rg}"
        if not self.services.authorizer.any_role_within(call.principal, scope):
            self._authorize(call, scope, f"{NAMESPACE}/labs/read", write=False)
        self._check_group(sub, rg)
        items = [
            self.lab_body(lab)
            for (s, r, _), lab in self.labs.items()
            if s == sub.lower()
            and r == rg.lower()
            and self.services.authorizer.role_at(call.principal, lab.id, write=False)
        ]
        return paged(call, items, self._page_size())

    def _lab_scope(self, call: Call) -> str:
        p = call.params
        return f"/subscriptions/{p['sub']}/resourceGroups/{p['rg']}/providers/{NAMESPACE}/labs/{p['lab']}"

    async def labs_get(self, call: Call) -> Response:
        """Get one lab."""
        self._authorize(call, self._lab_scope(call), f"{NAMESPACE}/labs/read", write=False)
        return JSONResponse(self.lab_body(self._lab(call, parent=False)))

    async def labs_generate_upload_uri(self, call: Call) -> Response:
        """Return a short-lived SAS to upload one blob into the lab's ``uploads`` container."""
        self._authorize(call, self._lab_scope(call), f"{NAMESPACE}/labs/generateUploadUri/action", write=True)
        lab = self._lab(call, parent=False)
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

    async def vms_list(self, call: Call) -> Response:
        """List a lab's VMs."""
        scope = f"{self._lab_scope(call)}/virtualmachines"
        self._authorize(call, scope, f"{NAMESPACE}/labs/virtualMachines/read", write=False)
        lab = self._lab(call, parent=True)
        expand = self._expand_compute(call)
        items = [self.vm_body(lab, vm, expand_compute=expand) for vm in lab.vms.values()]
        return paged(call, items, self._page_size())

    async def vms_get(self, call: Call) -> Response:
        """Get one lab VM."""
        scope = f"{self._lab_scope(call)}/virtualmachines/{call.params['name']}"
        self._authorize(call, scope, f"{NAMESPACE}/labs/virtualMachines/read", write=False)
        lab = self._lab(call, parent=True)
        vm = lab.vms.get(call.params["name"].lower())
        if vm is None:
            raise not_found(
                f"{NAMESPACE}/labs/virtualmachines", f"{lab.spec.name}/{call.params['name']}", lab.spec.resource_group
            )
        return JSONResponse(self.vm_body(lab, vm, expand_compute=self._expand_compute(call)))

    async def vms_delete(self, call: Call) -> Response:
        """Delete a lab VM (LRO)."""
        scope = f"{self._lab_scope(call)}/virtualmachines/{call.params['name']}"
        self._authorize(call, scope, f"{NAMESPACE}/labs/virtualMachines/delete", write=True)
        lab = self._lab(call, parent=True)
        key = call.params["name"].lower()
        vm = lab.vms.get(key)
        if vm is None:
            return Response(status_code=204)
        if vm.provisioning_state == "Deleting":
            raise ArmError(409, "Conflict", f"The virtual machine '{vm.spec.name}' is already being deleted.")
        vm.provisioning_state = "Deleting"

        async def work() -> None:
            if lab.vms.get(key) is vm:
                del lab.vms[key]

        return self._accepted(call, lab, f"{lab.id}/virtualmachines/{vm.spec.name}".lower(), work)

    def _accepted(self, call: Call, lab: LabState, resource_id: str, work: Any) -> Response:
        op = self.services.lro.start(
            operation=call.operation,
            subscription_id=lab.spec.subscription_id,
            namespace=NAMESPACE,
            location=lab.spec.location,
            resource_id=resource_id,
            delay=self._settings_delay(),
            work=work,
        )
        headers = self.services.lro.poll_headers(op, call.base_url, call.api_version, self._settings_delay())
        return Response(status_code=202, headers=headers)

    # -- custom images -----------------------------------------------------------------------------

    async def images_list(self, call: Call) -> Response:
        """List a lab's custom images."""
        scope = f"{self._lab_scope(call)}/customimages"
        self._authorize(call, scope, f"{NAMESPACE}/labs/customImages/read", write=False)
        lab = self._lab(call, parent=True)
        items = [self.image_body(lab, image) for image in lab.images.values()]
        return paged(call, items, self._page_size())

    async def images_get(self, call: Call) -> Response:
        """Get one custom image."""
        scope = f"{self._lab_scope(call)}/customimages/{call.params['name']}"
        self._authorize(call, scope, f"{NAMESPACE}/labs/customImages/read", write=False)
        lab = self._lab(call, parent=True)
        image = lab.images.get(call.params["name"].lower())
        if image is None:
            raise not_found(
                f"{NAMESPACE}/labs/customimages", f"{lab.spec.name}/{call.params['name']}", lab.spec.resource_group
            )
        return JSONResponse(self.image_body(lab, image))

    @staticmethod
    def _parse_image(body: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str], str | None, str | None]:
        props = body.get("properties")
        if not isinstance(props, dict):
            raise invalid_parameter("The custom image must have 'properties'.", target="properties")
        if props.get("vm") is not None:
            raise invalid_parameter(
                "The local Azure only creates custom images from a VHD (properties.vhd).", target="properties.vm"
            )
        vhd = props.get("vhd")
        if not isinstance(vhd, dict):
            raise invalid_parameter("The custom image must have 'properties.vhd'.", target="properties.vhd")
        image_name = vhd.get("imageName")
        if not isinstance(image_name, str) or not image_name.strip():
            raise invalid_parameter("properties.vhd.imageName is required.", target="properties.vhd.imageName")
        os_type = vhd.get("osType")
        if os_type not in {"Windows", "Linux", "None"}:
            raise invalid_parameter(
                "properties.vhd.osType must be one of Windows, Linux, None.", target="properties.vhd.osType"
            )
        sys_prep = vhd.get("sysPrep")
        if sys_prep is not None and not isinstance(sys_prep, bool):
            raise invalid_parameter("properties.vhd.sysPrep must be a boolean.", target="properties.vhd.sysPrep")
        tags = body.get("tags") or {}
        if not isinstance(tags, dict) or not all(isinstance(v, str) for v in tags.values()):
            raise invalid_parameter("tags must be an object of strings.", target="tags")
        description = props.get("description")
        author = props.get("author")
        clean_vhd: dict[str, Any] = {"imageName": image_name, "osType": os_type}
        if sys_prep is not None:
            clean_vhd["sysPrep"] = sys_prep
        return (
            clean_vhd,
            {str(k): v for k, v in tags.items()},
            description if isinstance(description, str) else None,
            author if isinstance(author, str) else None,
        )

    async def vhd_problem(self, lab: LabState, blob: str) -> tuple[str | None, int, str | None]:
        """Check an uploaded VHD like DevTest Labs does; return (problem, size, footer sha256)."""
        try:
            size, digest = await self._check_vhd(lab, blob)
        except _VhdProblem as problem:
            return str(problem), problem.size, None
        return None, size, digest

    async def _check_vhd(self, lab: LabState, blob: str) -> tuple[int, str]:
        from emulator.storage import StorageError
        from emulator.vhd import footer_problem

        storage = self.services.storage
        account = lab.spec.storage_account
        where = f"'{blob}' in container '{UPLOAD_CONTAINER}' of storage account '{account}'"
        info = await storage.blob_info(account, UPLOAD_CONTAINER, blob)
        if info is None:
            raise _VhdProblem(f"The VHD {where} was not found.", 0)
        blob_type = str(getattr(info, "blob_type", "")).split(".")[-1].lower()
        size = int(info.size)
        copy_status = str(info.copy_status or "").split(".")[-1].lower()
        problem = None
        if blob_type != "pageblob":
            problem = f"The VHD {where} is a {info.blob_type}; a custom image needs a page blob."
        elif copy_status == "pending":
            problem = f"The VHD {where} is still being copied (copy status pending)."
        elif copy_status in {"failed", "aborted"}:
            problem = f"The copy of the VHD {where} ended {copy_status}."
        elif size < 512 or size % 512:
            problem = f"The VHD {where} has size {size}, which is not a multiple of 512 bytes."
        if problem:
            raise _VhdProblem(problem, size)
        try:
            footer = await storage.read_range(account, UPLOAD_CONTAINER, blob, size - 512, 512)
        except StorageError as exc:
            raise _VhdProblem(f"The VHD {where} could not be read: {exc}", size) from exc
        footer_error = footer_problem(footer, size)
        if footer_error:
            raise _VhdProblem(f"The VHD {where} has no valid fixed VHD footer: {footer_error}", size)
        return size, hashlib.sha256(footer).hexdigest()

    def _injected_lro_failure(self, call: Call) -> str | None:
        """Return the message of an ``LRO`` fault rule (``"method": "LRO"``) that makes this operation end Failed."""
        faults = self.services.faults
        if faults is None:
            return None
        fault = faults.match(service="arm", operation=call.operation, method="LRO", path=call.request.url.path)
        if fault is None:
            return None
        return str(getattr(fault, "message", "") or "Injected failure of the long-running operation.")

    async def images_create_or_update(self, call: Call) -> Response:
        """Create (or replace) a custom image from an uploaded VHD (LRO)."""
        name = call.params["name"]
        scope = f"{self._lab_scope(call)}/customimages/{name}"
        self._authorize(call, scope, f"{NAMESPACE}/labs/customImages/write", write=True)
        lab = self._lab(call, parent=True)
        if not 1 <= len(name) <= 80:
            raise invalid_parameter("The custom image name must have 1 to 80 characters.", target="name")
        vhd, tags, description, author = self._parse_image(await call.json_body())
        key = name.lower()
        existing = lab.images.get(key)
        if existing is not None and existing.provisioning_state in _CREATING_STATES:
            raise ArmError(
                409,
                "Conflict",
                f"The custom image '{existing.name}' is {existing.provisioning_state.lower()}; "
                "retry when the operation in progress has finished.",
            )
        problem, size, footer_digest = await self.vhd_problem(lab, vhd["imageName"])
        if problem is None:
            problem = self._injected_lro_failure(call)
        image = ImageState(
            name=existing.name if existing else name,
            location=lab.spec.location,
            tags=tags,
            vhd=vhd,
            description=description,
            author=author,
        )
        lab.images[key] = image

        async def work() -> None:
            if lab.images.get(key) is not image:
                raise LroFailure("Canceled", "The custom image was replaced or deleted while being created.")
            if problem is None:
                info = await self.services.storage.blob_info(
                    lab.spec.storage_account, UPLOAD_CONTAINER, vhd["imageName"]
                )
                if info is None or int(info.size) != size:
                    failure = f"The VHD '{vhd['imageName']}' was deleted or changed while the image was being created."
                    image.provisioning_state = "Failed"
                    image.error = {"code": "InvalidVhd", "message": failure}
                    raise LroFailure("InvalidVhd", failure)
                image.size_bytes = size
                image.footer_sha256 = footer_digest
                image.provisioning_state = "Succeeded"
                return None
            image.provisioning_state = "Failed"
            image.error = {"code": "InvalidVhd", "message": problem}
            raise LroFailure("InvalidVhd", problem)

        op = self.services.lro.start(
            operation=call.operation,
            subscription_id=lab.spec.subscription_id,
            namespace=NAMESPACE,
            location=lab.spec.location,
            resource_id=f"{lab.id}/customimages/{name}".lower(),
            delay=self._settings_delay(),
            work=work,
        )
        image.operation_id = op.id
        headers = self.services.lro.poll_headers(op, call.base_url, call.api_version, self._settings_delay())
        return JSONResponse(self.image_body(lab, image), status_code=200 if existing else 201, headers=headers)

    async def images_delete(self, call: Call) -> Response:
        """Delete a custom image (LRO; 204 when it does not exist)."""
        name = call.params["name"]
        scope = f"{self._lab_scope(call)}/customimages/{name}"
        self._authorize(call, scope, f"{NAMESPACE}/labs/customImages/delete", write=True)
        lab = self._lab(call, parent=True)
        key = name.lower()
        image = lab.images.get(key)
        if image is None:
            return Response(status_code=204)
        if image.provisioning_state == "Deleting":
            raise ArmError(409, "Conflict", f"The custom image '{image.name}' is already being deleted.")
        image.provisioning_state = "Deleting"

        async def work() -> None:
            if lab.images.get(key) is image:
                del lab.images[key]

        return self._accepted(call, lab, f"{lab.id}/customimages/{image.name}".lower(), work)

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
                    "os_disk_id": disk_id(lab.spec, vm.spec),
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
        """Return the DevTest Labs operations."""
        lab = _LABS + "/{lab}"
        v = API_VERSIONS
        ns = NAMESPACE
        return [
            ArmRoute(
                "GET",
                "/subscriptions/{sub}/providers/Microsoft.DevTestLab/labs",
                "Labs_ListBySubscription",
                f"{ns}/labs/read",
                self.labs_list_by_subscription,
                v,
            ),
            ArmRoute("GET", _LABS, "Labs_ListByResourceGroup", f"{ns}/labs/read", self.labs_list_by_resource_group, v),
            ArmRoute("GET", lab, "Labs_Get", f"{ns}/labs/read", self.labs_get, v),
            ArmRoute(
                "POST",
                lab + "/generateUploadUri",
                "Labs_GenerateUploadUri",
                f"{ns}/labs/generateUploadUri/action",
                self.labs_generate_upload_uri,
                v,
            ),
            ArmRoute(
                "GET",
                lab + "/virtualmachines",
                "VirtualMachines_List",
                f"{ns}/labs/virtualMachines/read",
                self.vms_list,
                v,
            ),
            ArmRoute(
                "GET",
                lab + "/virtualmachines/{name}",
                "VirtualMachines_Get",
                f"{ns}/labs/virtualMachines/read",
                self.vms_get,
                v,
            ),
            ArmRoute(
                "DELETE",
                lab + "/virtualmachines/{name}",
                "VirtualMachines_Delete",
                f"{ns}/labs/virtualMachines/delete",
                self.vms_delete,
                v,
            ),
            ArmRoute(
                "GET", lab + "/customimages", "CustomImages_List", f"{ns}/labs/customImages/read", self.images_list, v
            ),
            ArmRoute(
                "GET",
                lab + "/customimages/{name}",
                "CustomImages_Get",
                f"{ns}/labs/customImages/read",
                self.images_get,
                v,
            ),
            ArmRoute(
                "PUT",
                lab + "/customimages/{name}",
                "CustomImages_CreateOrUpdate",
                f"{ns}/labs/customImages/write",
                self.images_create_or_update,
                v,
            ),
            ArmRoute(
                "DELETE",
                lab + "/customimages/{name}",
                "CustomImages_Delete",
                f"{ns}/labs/customImages/delete",
                self.images_delete,
                v,
            ),
        ]
