"""DevTest Labs custom images: created from an uploaded VHD that is checked as the service checks it, and deleted."""

from __future__ import annotations

import hashlib
from typing import Any

from starlette.responses import JSONResponse, Response

from emulator.arm.core import ArmRoute, Call, paged
from emulator.arm.errors import ArmError, invalid_parameter
from emulator.arm.labs import API_VERSIONS, LABS_PATH, NAMESPACE, UPLOAD_CONTAINER, ImageState, LabDirectory, LabState
from emulator.arm.lro import Final, LroFailure, Work

#: While an image is in one of these states, a new PUT of it is refused (409).
_BUSY_STATES = {"Creating", "Deleting"}


class _VhdProblem(Exception):
    """An uploaded VHD DevTest Labs would refuse."""

    def __init__(self, message: str, size: int) -> None:
        super().__init__(message)
        self.size = size


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


def parse_image(body: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str], str | None, str | None]:
    """Check a custom image's body; return its VHD (only the known keys), tags, description and author."""
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


def _refuse_while_busy(existing: ImageState | None) -> None:
    if existing is not None and existing.provisioning_state in _BUSY_STATES:
        raise ArmError(
            409,
            "Conflict",
            f"The custom image '{existing.name}' is {existing.provisioning_state.lower()}; "
            "retry when the operation in progress has finished.",
        )


class CustomImages:
    """Handlers of a lab's custom images."""

    def __init__(self, labs: LabDirectory) -> None:
        """Serve the custom images of ``labs``."""
        self.labs = labs

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

        storage = self.labs.services.storage
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
        faults = self.labs.services.faults
        if faults is None:
            return None
        fault = faults.match(service="arm", operation=call.operation, method="LRO", path=call.request.url.path)
        if fault is None:
            return None
        return str(getattr(fault, "message", "") or "Injected failure of the long-running operation.")

    async def images_list(self, call: Call) -> Response:
        """List a lab's custom images."""
        scope = f"{self.labs.lab_scope(call)}/customimages"
        self.labs.authorize(call, scope, f"{NAMESPACE}/labs/customImages/read", write=False)
        lab = self.labs.lab(call, parent=True)
        items = [image_body(lab, image) for image in lab.images.values()]
        return paged(call, items, self.labs.page_size())

    async def images_get(self, call: Call) -> Response:
        """Get one custom image."""
        lab, image = self.labs.get_child(call, "customImages", lambda lab: lab.images)
        return JSONResponse(image_body(lab, image))

    async def images_create_or_update(self, call: Call) -> Response:
        """Create (or replace) a custom image from an uploaded VHD (LRO)."""
        name = call.params["name"]
        scope = f"{self.labs.lab_scope(call)}/customimages/{name}"
        self.labs.authorize(call, scope, f"{NAMESPACE}/labs/customImages/write", write=True)
        lab = self.labs.lab(call, parent=True)
        if not 1 <= len(name) <= 80:
            raise invalid_parameter("The custom image name must have 1 to 80 characters.", target="name")
        vhd, tags, description, author = parse_image(await call.json_body())
        key = name.lower()
        existing = lab.images.get(key)
        _refuse_while_busy(existing)
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
        op, headers = self.labs.services.start_lro(
            call,
            lab.spec,
            namespace=NAMESPACE,
            resource_id=f"{lab.id}/customimages/{name}".lower(),
            work=self._creation(lab, image, problem, size, footer_digest),
            # final-state-via: location: the Location URL ends with the custom image (200 with its body).
            final=Final(resource=lambda: image_body(lab, image)),
        )
        image.operation_id = op.id
        return JSONResponse(image_body(lab, image), status_code=200 if existing else 201, headers=headers)

    def _creation(self, lab: LabState, image: ImageState, problem: str | None, size: int, digest: str | None) -> Work:
        """Return the work that ends an image's creation: Succeeded, or Failed ``InvalidVhd`` naming the problem."""
        storage = self.labs.services.storage
        key = image.name.lower()
        blob = str(image.vhd["imageName"])

        async def work() -> None:
            if lab.images.get(key) is not image:
                raise LroFailure("Canceled", "The custom image was replaced or deleted while being created.")
            failure = problem
            if failure is None:
                info = await storage.blob_info(lab.spec.storage_account, UPLOAD_CONTAINER, blob)
                if info is None or int(info.size) != size:
                    failure = f"The VHD '{blob}' was deleted or changed while the image was being created."
            if failure is not None:
                image.provisioning_state = "Failed"
                image.error = {"code": "InvalidVhd", "message": failure}
                raise LroFailure("InvalidVhd", failure)
            image.size_bytes = size
            image.footer_sha256 = digest
            image.provisioning_state = "Succeeded"

        return work

    async def images_delete(self, call: Call) -> Response:
        """Delete a custom image (LRO; 204 when it does not exist)."""
        return self.labs.delete_child(call, "customImages", "custom image", lambda lab: lab.images)

    def routes(self) -> list[ArmRoute]:
        """Return the custom image operations."""
        images = LABS_PATH + "/{lab}/customimages"
        read, write, delete = (f"{NAMESPACE}/labs/customImages/{verb}" for verb in ("read", "write", "delete"))
        return [
            ArmRoute("GET", images, "CustomImages_List", read, self.images_list, API_VERSIONS),
            ArmRoute("GET", images + "/{name}", "CustomImages_Get", read, self.images_get, API_VERSIONS),
            ArmRoute(
                "PUT",
                images + "/{name}",
                "CustomImages_CreateOrUpdate",
                write,
                self.images_create_or_update,
                API_VERSIONS,
            ),
            ArmRoute("DELETE", images + "/{name}", "CustomImages_Delete", delete, self.images_delete, API_VERSIONS),
        ]
