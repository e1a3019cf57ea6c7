"""ARM template deployments (``Microsoft.Resources/deployments``) and the lab VM reads and writes a build needs.

``DeploymentsHook`` starts a deployment without waiting for it (the trigger waits), reads its state and deletes
its record (ARM keeps at most 800 per resource group). The deployments client is ``azure-mgmt-resource-deployments``
(``azure-mgmt-resource`` 26 no longer has it), on the same ARM connection settings as the other hooks. The VM
functions work on a ``DevTestLabsHook``'s clients: the VM with its artifacts, its tags, its stop.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow.providers.microsoft.azure.hooks.base_azure import AzureBaseHook
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.mgmt.resource.deployments import DeploymentsMgmtClient
from azure.mgmt.resource.deployments.aio import DeploymentsMgmtClient as AsyncDeploymentsMgmtClient
from azure.mgmt.resource.deployments.models import Deployment, DeploymentParameter, DeploymentProperties

from image_factory.build.artifacts import ArtifactReport, ArtifactResult
from image_factory.hooks.arm import ArmClients, AsyncArmClients
from image_factory.hooks.lab_resources import lab_scope
from image_factory.redact import redact

if TYPE_CHECKING:
    from azure.mgmt.devtestlabs.models import LabVirtualMachine

    from image_factory.hooks.credentials import ArmSettings
    from image_factory.hooks.devtestlabs import DevTestLabsHook

#: ``$expand`` that makes ``VirtualMachines_Get`` return the artifacts and their deployment status.
ARTIFACTS_EXPAND = "properties($expand=artifacts)"


@dataclass(frozen=True)
class DeploymentState:
    """A deployment's ``provisioningState`` and, when it failed, ARM's error (code and redacted message)."""

    provisioning_state: str
    error: str | None = None


def _error_text(error: Any) -> str | None:
    """Return ``code: message`` of an ARM error and of its details, redacted; None without one."""
    if not error:
        return None

    def get(key: str) -> Any:
        return error.get(key) if isinstance(error, Mapping) else getattr(error, key, None)

    parts = [f"{get('code') or 'error'}: {get('message') or ''}".strip()]
    for detail in get("details") or []:
        parts.append(_error_text(detail) or "")
    return redact("; ".join(p for p in parts if p))


def deployment_state(deployment: Any) -> DeploymentState:
    """Map an SDK ``DeploymentExtended`` to its state."""
    properties = getattr(deployment, "properties", None)
    value = getattr(properties, "provisioning_state", None) or "Unknown"
    state = str(getattr(value, "value", value))  # the SDK's enum: its value, never "ProvisioningState.X"
    return DeploymentState(provisioning_state=state, error=_error_text(getattr(properties, "error", None)))


def deployment_body(template: Mapping[str, Any], parameters: Mapping[str, Any]) -> Deployment:
    """Return the deployment PUT body: incremental, the template inline, each parameter as ``{"value": …}``."""
    return Deployment(
        properties=DeploymentProperties(
            mode="Incremental",
            template=dict(template),
            parameters={name: DeploymentParameter(value=value) for name, value in parameters.items()},
        )
    )


class DeploymentsHook(AzureBaseHook):
    """Resource group deployments on the ``image_factory_arm`` connection (``Deployments_*`` operations)."""

    conn_name_attr = "arm_conn_id"
    default_conn_name = "image_factory_arm"
    conn_type = "azure"
    hook_name = "Azure Resource Manager deployments (Image Factory)"

    def __init__(self, arm_conn_id: str = default_conn_name) -> None:
        super().__init__(sdk_client=DeploymentsMgmtClient, conn_id=arm_conn_id)
        self.arm_conn_id = arm_conn_id
        self.clients = ArmClients(DeploymentsMgmtClient, lambda: self.get_connection(self.conn_id))

    @property
    def settings(self) -> ArmSettings:
        """Return the connection's ARM settings."""
        return self.clients.settings

    def get_conn(self) -> DeploymentsMgmtClient:
        """Return a client for the connection's own subscription."""
        return self.clients.client(str(self.settings.subscription_id))

    def start(self, subscription_id: str, resource_group: str, name: str, body: Deployment) -> DeploymentState:
        """PUT the deployment and return at once with its first state (``Accepted``/``Running``…): never waits.

        ``body`` holds the admin password: it is sent in this one request and never logged.
        """
        client = self.clients.client(subscription_id)
        try:
            poller = client.deployments.begin_create_or_update(resource_group, name, body, polling=False)
            return deployment_state(poller.result())
        except HttpResponseError as exc:
            raise self.clients.fail(exc, "start the deployment", f"deployment {name} in {resource_group}") from exc

    def state(self, subscription_id: str, resource_group: str, name: str) -> DeploymentState | None:
        """Return the deployment's state, or None when there is none of that name."""
        try:
            found = self.clients.client(subscription_id).deployments.get(resource_group, name)
        except ResourceNotFoundError:
            return None
        except HttpResponseError as exc:
            raise self.clients.fail(exc, "read the deployment", f"deployment {name} in {resource_group}") from exc
        return deployment_state(found)

    def delete(self, subscription_id: str, resource_group: str, name: str) -> bool:
        """Delete the deployment record (not what it deployed) and wait; False when it was already gone."""
        try:
            self.clients.client(subscription_id).deployments.begin_delete(resource_group, name).result()
        except ResourceNotFoundError:
            return False
        except HttpResponseError as exc:
            raise self.clients.fail(exc, "delete the deployment", f"deployment {name} in {resource_group}") from exc
        return True

    def close(self) -> None:
        """Close every cached client."""
        self.clients.close()


class DeploymentsAsyncHook:
    """Async deployment reads for the build trigger (opened and closed inside ``run()``)."""

    def __init__(self, arm_conn_id: str = DeploymentsHook.default_conn_name) -> None:
        self.clients = AsyncArmClients(AsyncDeploymentsMgmtClient, arm_conn_id)

    async def state_async(self, subscription_id: str, resource_group: str, name: str) -> DeploymentState | None:
        """Return the deployment's state, or None when there is none of that name."""
        client = await self.clients.client(subscription_id)
        try:
            found = await client.deployments.get(resource_group, name)
        except ResourceNotFoundError:
            return None
        except HttpResponseError as exc:
            raise await self.clients.fail(exc, "read the deployment", f"deployment {name}") from exc
        return deployment_state(found)

    async def aclose(self) -> None:
        """Close the clients and the credential."""
        await self.clients.aclose()


# The lab VM: read with its artifacts, tag, stop ------------------------------------------------------------
def artifact_report(vm: LabVirtualMachine) -> ArtifactReport:
    """Map an SDK lab VM read with ``ARTIFACTS_EXPAND`` to its artifact report."""
    status = vm.artifact_deployment_status
    return ArtifactReport(
        deployment_status=getattr(status, "deployment_status", None),
        total=getattr(status, "total_artifacts", None),
        applied=getattr(status, "artifacts_applied", None),
        artifacts=tuple(
            ArtifactResult(
                artifact_id=str(a.artifact_id or ""),
                status=a.status,
                deployment_status_message=a.deployment_status_message,
                vm_extension_status_message=a.vm_extension_status_message,
                install_time=a.install_time.isoformat() if a.install_time else None,
            )
            for a in vm.artifacts or ()
        ),
    )


def get_lab_vm(
    hook: DevTestLabsHook, subscription_id: str, resource_group: str, lab_name: str, *, vm_name: str, expand: str
) -> LabVirtualMachine | None:
    """Return the lab VM read with ``expand``, or None when it does not exist."""
    try:
        return hook.client(subscription_id).virtual_machines.get(resource_group, lab_name, vm_name, expand=expand)
    except ResourceNotFoundError:
        return None
    except HttpResponseError as exc:
        scope = f"VM {vm_name} in {lab_scope(subscription_id, resource_group, lab_name)}"
        raise hook.clients.fail(exc, "read the VM", scope) from exc


def tag_vm(
    hook: DevTestLabsHook,
    subscription_id: str,
    resource_group: str,
    lab_name: str,
    *,
    vm: LabVirtualMachine,
    tags: Mapping[str, str],
) -> None:
    """Add ``tags`` to the lab VM's tags (``VirtualMachines_Update``, a PATCH of its tags)."""
    merged = {**(vm.tags or {}), **tags}
    try:
        hook.client(subscription_id).virtual_machines.update(resource_group, lab_name, str(vm.name), tags=merged)
    except HttpResponseError as exc:
        scope = f"VM {vm.name} in {lab_scope(subscription_id, resource_group, lab_name)}"
        raise hook.clients.fail(exc, "tag the VM", scope) from exc


def stop_vm(hook: DevTestLabsHook, subscription_id: str, resource_group: str, lab_name: str, vm_name: str) -> None:
    """Stop (deallocate) the lab VM and wait: a specialized build has no artifact that stops it."""
    try:
        hook.client(subscription_id).virtual_machines.begin_stop(resource_group, lab_name, vm_name).result()
    except HttpResponseError as exc:
        scope = f"VM {vm_name} in {lab_scope(subscription_id, resource_group, lab_name)}"
        raise hook.clients.fail(exc, "stop the VM", scope) from exc
