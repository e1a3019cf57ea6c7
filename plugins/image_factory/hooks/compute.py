"""Managed disks through Azure Compute: grant and revoke a short read SAS on a factory VM's OS disk."""

from __future__ import annotations

from airflow.providers.microsoft.azure.hooks.compute import AzureComputeHook
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.mgmt.compute import ComputeManagementClient
from azure.mgmt.compute.aio import ComputeManagementClient as AsyncComputeManagementClient
from azure.mgmt.compute.models import GrantAccessData

from image_factory.exceptions import CaptureError
from image_factory.hooks.arm import ArmClients, AsyncArmClients
from image_factory.hooks.credentials import ArmSettings
from image_factory.redact import mask


def parse_disk_id(disk_id: str) -> tuple[str, str, str]:
    """Split a managed disk's ARM id into (subscription, resource group, disk name)."""
    parts = [p for p in disk_id.strip().split("/") if p]
    lowered = [p.lower() for p in parts]
    try:
        subscription = parts[lowered.index("subscriptions") + 1]
        group = parts[lowered.index("resourcegroups") + 1]
        name = parts[lowered.index("disks") + 1]
    except (ValueError, IndexError) as exc:
        raise CaptureError(
            f"{disk_id!r} is not a managed disk id (/subscriptions/…/resourceGroups/…/providers/"
            "Microsoft.Compute/disks/…): the VM's computeVm.osDiskId is missing or malformed"
        ) from exc
    return subscription, group, name


class FactoryComputeHook(AzureComputeHook):
    """``AzureComputeHook`` that honours ``arm_endpoint``, ``ca_bundle`` and ``authority_host`` extras."""

    conn_name_attr = "azure_conn_id"
    default_conn_name = "image_factory_arm"
    conn_type = "azure"
    hook_name = "Azure Compute (Image Factory)"

    def __init__(self, azure_conn_id: str = default_conn_name) -> None:
        super().__init__(azure_conn_id=azure_conn_id)
        self.clients = ArmClients(ComputeManagementClient, lambda: self.get_connection(self.conn_id))

    @property
    def settings(self) -> ArmSettings:
        """Return the connection's ARM settings."""
        return self.clients.settings

    def client(self, subscription_id: str) -> ComputeManagementClient:
        """Return a Compute client for ``subscription_id`` (cached)."""
        return self.clients.client(subscription_id)

    def get_conn(self) -> ComputeManagementClient:
        """Return a Compute client for the connection's own subscription."""
        return self.client(str(self.settings.subscription_id))

    async def get_async_conn(self) -> AsyncComputeManagementClient:
        """Return an async Compute client honouring the connection's endpoint, CA and authority."""
        if self._async_conn is None:
            clients = AsyncArmClients(AsyncComputeManagementClient, self.conn_id)
            self._async_conn = await clients.client(str((await clients.settings()).subscription_id))
        return self._async_conn

    def grant_disk_read(self, disk_id: str, seconds: int) -> str:
        """Grant read access to a managed disk for ``seconds`` and return its SAS URL (a secret)."""
        subscription, group, name = parse_disk_id(disk_id)
        self.log.info("Granting read access to disk %s for %s s", name, seconds)
        try:
            poller = self.client(subscription).disks.begin_grant_access(
                group, name, GrantAccessData(access="Read", duration_in_seconds=seconds)
            )
            access = poller.result()
        except HttpResponseError as exc:
            raise self.clients.fail(exc, "grant read access", f"disk {name}") from exc
        sas = getattr(access, "access_sas", None)
        if not sas:
            raise CaptureError(f"disk {name}: grant access returned no SAS URL")
        mask(str(sas))
        return str(sas)

    def revoke_disk(self, disk_id: str) -> None:
        """Revoke every SAS on a managed disk; a missing disk is success."""
        subscription, group, name = parse_disk_id(disk_id)
        self.log.info("Revoking access to disk %s", name)
        try:
            self.client(subscription).disks.begin_revoke_access(group, name).result()
        except ResourceNotFoundError:
            return
        except HttpResponseError as exc:
            raise self.clients.fail(exc, "revoke disk access", f"disk {name}") from exc
