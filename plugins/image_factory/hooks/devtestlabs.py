"""Azure DevTest Labs through ARM: labs, factory VMs, custom images and ``generateUploadUri``."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Unpack

from airflow.providers.microsoft.azure.hooks.base_azure import AzureBaseHook
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.mgmt.devtestlabs import DevTestLabsClient
from azure.mgmt.devtestlabs.aio import DevTestLabsClient as AsyncDevTestLabsClient

from image_factory.exceptions import AzureRequestError, ForbiddenError, LabNotFoundError
from image_factory.hooks.arm import ArmClients, AsyncArmClients, arm_message
from image_factory.hooks.lab_resources import (
    CustomImageSpec,
    custom_image_body,
    factory_vm,
    lab_image,
    lab_scope,
    resource_group_of,
)
from image_factory.models import LabImage, LabInventory, LabRef
from image_factory.redact import redact
from image_factory.states import ProvisioningState

if TYPE_CHECKING:
    from azure.core.credentials_async import AsyncTokenCredential
    from azure.mgmt.devtestlabs.models import Lab

    from image_factory.hooks.credentials import ArmSettings
    from image_factory.models import FactoryVm

API_VERSION = "2018-09-15"
#: ``$expand`` that makes ``virtualMachines.list`` return the compute VM (OS disk id, power state).
VM_EXPAND = "properties($expand=computeVm)"


class DevTestLabsHook(AzureBaseHook):
    """Interact with Azure DevTest Labs on the ``image_factory_arm`` connection.

    :param arm_conn_id: an ``azure`` connection (client id/secret + ``tenantId``, or ambient identity) with
        optional extras ``arm_endpoint``, ``authority_host`` and ``ca_bundle``.
    """

    conn_name_attr = "arm_conn_id"
    default_conn_name = "image_factory_arm"
    conn_type = "azure"
    hook_name = "Azure DevTest Labs (Image Factory)"

    def __init__(self, arm_conn_id: str = default_conn_name) -> None:
        super().__init__(sdk_client=DevTestLabsClient, conn_id=arm_conn_id)
        self.arm_conn_id = arm_conn_id
        self.clients = ArmClients(DevTestLabsClient, lambda: self.get_connection(self.conn_id), api_version=API_VERSION)

    @property
    def settings(self) -> ArmSettings:
        """Return the connection's ARM settings (endpoint, CA, identity)."""
        return self.clients.settings

    def get_conn(self) -> DevTestLabsClient:
        """Return a client for the connection's own subscription (extra ``subscriptionId``)."""
        if not self.settings.subscription_id:
            raise AzureRequestError(
                f"connection {self.conn_id} has no extra 'subscriptionId': set the factory's subscription"
            )
        return self.client(self.settings.subscription_id)

    def client(self, subscription_id: str) -> DevTestLabsClient:
        """Return a DevTest Labs client for ``subscription_id`` (cached per subscription)."""
        return self.clients.client(subscription_id)

    def _fail(self, exc: HttpResponseError, action: str, scope: str) -> AzureRequestError:
        return self.clients.fail(exc, action, scope)

    # Labs -----------------------------------------------------------------------------------------------
    def get_lab(self, subscription_id: str, resource_group: str, lab_name: str) -> Lab:
        """Return a lab; raise ``LabNotFoundError`` when it does not exist."""
        scope = lab_scope(subscription_id, resource_group, lab_name)
        try:
            return self.client(subscription_id).labs.get(resource_group, lab_name)
        except ResourceNotFoundError as exc:
            _, message = arm_message(exc)
            raise LabNotFoundError(
                f"{scope} does not exist ({message}): fix labs.json or create the lab", status=404
            ) from exc
        except HttpResponseError as exc:
            raise self._fail(exc, "read the lab", scope) from exc

    def find_lab(self, subscription_id: str, lab_name: str) -> Lab:
        """Find a lab by name in a subscription (labs.json without ResourceGroup); paged list."""
        scope = lab_scope(subscription_id, None, lab_name)
        try:
            for lab in self.client(subscription_id).labs.list_by_subscription():
                if str(lab.name).lower() == lab_name.lower():
                    return lab
        except HttpResponseError as exc:
            raise self._fail(exc, "list the labs of the subscription", scope) from exc
        raise LabNotFoundError(
            f"{scope} does not exist in the subscription: fix labs.json (name or SubscriptionId)", status=404
        )

    def lab_for(self, lab: LabRef) -> Lab:
        """Return the lab of a labs.json entry (by resource group when given, else by name)."""
        if lab.resource_group:
            return self.get_lab(lab.subscription_id, lab.resource_group, lab.lab_name)
        return self.find_lab(lab.subscription_id, lab.lab_name)

    def list_labs(self, subscription_id: str) -> list[Lab]:
        """List every lab of a subscription the principal can read (one paged list)."""
        try:
            return list(self.client(subscription_id).labs.list_by_subscription())
        except HttpResponseError as exc:
            raise self._fail(exc, "list the labs of the subscription", f"subscription {subscription_id}") from exc

    def inventory(self, lab: LabRef, *, locate: bool = True, found: Lab | None = None) -> LabInventory:
        """Return one lab's state: one lab read (or list) plus ONE custom image list; never raises for Azure.

        ``locate=False`` (verify, retention: they need the images, not the region) skips the lab read when labs.json
        names the resource group: the image list alone answers, and a missing lab still reads as ``not_found``.
        ``found``: the lab as a subscription's listing returned it (no lab read then).
        """
        try:
            if not locate and lab.resource_group:
                images = self.list_custom_images(lab.subscription_id, lab.resource_group, lab.lab_name)
                return LabInventory(lab=lab, status="ok", resource_group=lab.resource_group, images=tuple(images))
            found = found or self.lab_for(lab)
            resource_group = resource_group_of(str(found.id)) or lab.resource_group or ""
            images = self.list_custom_images(lab.subscription_id, resource_group, str(found.name))
        except LabNotFoundError as exc:
            return LabInventory(lab=lab, status="not_found", resource_group=lab.resource_group, message=str(exc))
        except ForbiddenError as exc:
            return LabInventory(lab=lab, status="forbidden", resource_group=lab.resource_group, message=str(exc))
        except AzureRequestError as exc:
            return LabInventory(lab=lab, status="error", resource_group=lab.resource_group, message=str(exc))
        return LabInventory(
            lab=lab,
            status="ok",
            resource_group=resource_group,
            location=found.location,
            images=tuple(images),
        )

    def generate_upload_uri(self, subscription_id: str, resource_group: str, lab_name: str, blob_name: str) -> str:
        """Return a SAS URI (write + read) for ``blob_name`` in the lab's upload container. A secret."""
        scope = lab_scope(subscription_id, resource_group, lab_name)
        try:
            response = self.client(subscription_id).labs.generate_upload_uri(
                resource_group, lab_name, blob_name=blob_name
            )
        except HttpResponseError as exc:
            raise self._fail(exc, "generate an upload URI (write the lab's storage)", scope) from exc
        if not response.upload_uri:
            raise AzureRequestError(f"{scope} returned no upload URI for {blob_name}")
        return str(response.upload_uri)

    # Factory VMs ----------------------------------------------------------------------------------------
    def list_vms(self, subscription_id: str, resource_group: str, lab_name: str) -> list[FactoryVm]:
        """List the lab's VMs with their compute VM (OS disk, power state) and creation date as ``FactoryVm``s."""
        scope = lab_scope(subscription_id, resource_group, lab_name)
        try:
            vms = list(self.client(subscription_id).virtual_machines.list(resource_group, lab_name, expand=VM_EXPAND))
        except HttpResponseError as exc:
            raise self._fail(exc, "list the factory VMs", scope) from exc
        return [factory_vm(vm) for vm in vms]

    def delete_vm(self, subscription_id: str, resource_group: str, lab_name: str, vm_name: str) -> bool:
        """Delete a lab VM and wait for it; return False when it did not exist (already gone is success)."""
        scope = f"VM {vm_name} in {lab_scope(subscription_id, resource_group, lab_name)}"
        client = self.client(subscription_id)
        try:
            client.virtual_machines.get(resource_group, lab_name, vm_name)
        except ResourceNotFoundError:
            return False
        except HttpResponseError as exc:
            raise self._fail(exc, "read the VM", scope) from exc
        try:
            client.virtual_machines.begin_delete(resource_group, lab_name, vm_name).result()
        except ResourceNotFoundError:
            return False
        except HttpResponseError as exc:
            raise self._fail(exc, "delete the VM", scope) from exc
        return True

    # Custom images --------------------------------------------------------------------------------------
    def list_custom_images(self, subscription_id: str, resource_group: str, lab_name: str) -> list[LabImage]:
        """List a lab's custom images (one paged list)."""
        scope = lab_scope(subscription_id, resource_group, lab_name)
        try:
            images = self.client(subscription_id).custom_images.list(resource_group, lab_name)
            return [lab_image(image) for image in images]
        except ResourceNotFoundError as exc:
            raise LabNotFoundError(f"{scope} does not exist: fix labs.json", status=404) from exc
        except HttpResponseError as exc:
            raise self._fail(exc, "list custom images", scope) from exc

    def get_custom_image(
        self, subscription_id: str, resource_group: str, lab_name: str, image_name: str
    ) -> LabImage | None:
        """Return a custom image, or ``None`` when it does not exist."""
        scope = f"custom image {image_name} in {lab_scope(subscription_id, resource_group, lab_name)}"
        try:
            image = self.client(subscription_id).custom_images.get(resource_group, lab_name, image_name)
        except ResourceNotFoundError:
            return None
        except HttpResponseError as exc:
            raise self._fail(exc, "read the custom image", scope) from exc
        return lab_image(image)

    def delete_custom_image(self, subscription_id: str, resource_group: str, lab_name: str, image_name: str) -> None:
        """Delete a custom image and wait for it; a missing image is success."""
        scope = f"custom image {image_name} in {lab_scope(subscription_id, resource_group, lab_name)}"
        try:
            self.client(subscription_id).custom_images.begin_delete(resource_group, lab_name, image_name).result()
        except ResourceNotFoundError:
            return
        except HttpResponseError as exc:
            raise self._fail(exc, "delete the custom image", scope) from exc

    def close(self) -> None:
        """Close every cached client."""
        self.clients.close()


class DevTestLabsAsyncHook(DevTestLabsHook):
    """Async counterpart for triggers: opened and closed inside ``run()``."""

    def __init__(self, arm_conn_id: str = DevTestLabsHook.default_conn_name) -> None:
        super().__init__(arm_conn_id=arm_conn_id)
        self.async_clients = AsyncArmClients(AsyncDevTestLabsClient, self.conn_id, api_version=API_VERSION)

    async def async_settings(self) -> ArmSettings:
        """Return the connection's ARM settings, read through the async connection API."""
        return await self.async_clients.settings()

    async def async_client(self, subscription_id: str) -> AsyncDevTestLabsClient:
        """Return an async DevTest Labs client for ``subscription_id`` (cached)."""
        return await self.async_clients.client(subscription_id)

    async def custom_image_state_async(
        self, subscription_id: str, resource_group: str, lab_name: str, image_name: str
    ) -> str | None:
        """Return a custom image's provisioningState, or ``None`` when it does not exist."""
        client = await self.async_client(subscription_id)
        try:
            image = await client.custom_images.get(resource_group, lab_name, image_name)
        except ResourceNotFoundError:
            return None
        except HttpResponseError as exc:
            scope = f"custom image {image_name} in {lab_scope(subscription_id, resource_group, lab_name)}"
            raise await self.async_clients.fail(exc, "read the custom image", scope) from exc
        return str(image.provisioning_state or ProvisioningState.UNKNOWN)

    async def create_custom_image_and_wait_async(
        self,
        subscription_id: str,
        resource_group: str,
        lab_name: str,
        image_name: str,
        *,
        timeout: float,
        polling_interval: float = 15.0,
        **image: Unpack[CustomImageSpec],
    ) -> str:
        """Create the custom image and follow ARM's long-running operation; return its final provisioning state.

        The SDK's ARM poller polls the ``Azure-AsyncOperation`` status the service names, when its
        ``Retry-After`` says (``polling_interval`` only when it says nothing). A refused PUT raises; an operation
        that ends Failed/Canceled returns ``"Failed"``; one still running after ``timeout`` seconds ``"Creating"``.
        An end without the image in the final answer is never taken for success: the image is read (``"Unknown"``
        when it is gone, which the caller's wait reports).
        """
        body = custom_image_body(**image)
        client = await self.async_client(subscription_id)
        scope = f"custom image {image_name} in {lab_scope(subscription_id, resource_group, lab_name)}"
        try:
            poller = await client.custom_images.begin_create_or_update(
                resource_group, lab_name, image_name, body, polling_interval=polling_interval
            )
        except HttpResponseError as exc:
            raise await self.async_clients.fail(exc, "create the custom image", scope) from exc
        try:
            result = await asyncio.wait_for(poller.result(), timeout=max(1.0, timeout))
        except HttpResponseError as exc:
            self.log.warning("%s: creation ended with %s", scope, redact(str(exc))[:300])
            return ProvisioningState.FAILED
        except TimeoutError:
            return ProvisioningState.CREATING
        state = getattr(result, "provisioning_state", None)
        if state:
            return str(state)
        # The operation's final answer carried no image (an empty 200/204): the image's own state says how it ended.
        read = await self.custom_image_state_async(subscription_id, resource_group, lab_name, image_name)
        self.log.info("%s: the operation ended without the image; the image reads %s", scope, read or "absent")
        return read or ProvisioningState.UNKNOWN

    async def generate_upload_uri_async(
        self, subscription_id: str, resource_group: str, lab_name: str, blob_name: str
    ) -> str:
        """Return a fresh upload SAS URI for ``blob_name`` in the lab (a secret: never log it)."""
        client = await self.async_client(subscription_id)
        try:
            response = await client.labs.generate_upload_uri(resource_group, lab_name, blob_name=blob_name)
        except HttpResponseError as exc:
            scope = lab_scope(subscription_id, resource_group, lab_name)
            raise await self.async_clients.fail(exc, "generate an upload URI", scope) from exc
        return str(response.upload_uri)

    async def credential_async(self) -> AsyncTokenCredential:
        """Return the connection's async credential (the storage data plane takes it too)."""
        return await self.async_clients.credential()

    async def aclose(self) -> None:
        """Close every async client and the async credential."""
        await self.async_clients.aclose()

    async def __aenter__(self) -> DevTestLabsAsyncHook:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
