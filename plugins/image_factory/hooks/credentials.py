"""Build Azure credentials and ARM client options from an ``azure`` Airflow connection.

The provider's ``AzureBaseHook`` builds ``ClientSecretCredential`` with a fixed authority per cloud and without
``disable_instance_discovery``, so it cannot reach a private authority (Azure Stack, the local emulator). This
module honours the connection extras ``authority_host``, ``ca_bundle`` and ``arm_endpoint`` and otherwise
falls back to the provider's ``DefaultAzureCredential`` behaviour (managed or workload identity).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from airflow.providers.microsoft.azure.utils import (
    get_async_default_azure_credential,
    get_sync_default_azure_credential,
)
from azure.core.pipeline.policies import AsyncRetryPolicy, RetryPolicy
from azure.identity import ClientSecretCredential
from azure.identity.aio import ClientSecretCredential as AsyncClientSecretCredential

from image_factory.hooks.arm_pacing import ArmPacingPolicy, AsyncArmPacingPolicy

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential
    from azure.core.credentials_async import AsyncTokenCredential

DEFAULT_ARM_ENDPOINT = "https://management.azure.com"

#: Retries for ARM calls: throttling (429) and transient 5xx; azure-core's retry policy waits what ``Retry-After``
#: says when the answer has one (ARM's 429s do), else backs off exponentially.
RETRY_TOTAL = 6
RETRY_BACKOFF_FACTOR = 1.0
RETRY_BACKOFF_MAX = 60


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in {"1", "true", "yes", "on"}
    return bool(value)


@dataclass(frozen=True)
class ArmSettings:
    """What a hook needs from an ``azure`` connection; ``repr`` never shows the secret."""

    client_id: str | None
    client_secret: str | None
    tenant_id: str | None
    subscription_id: str | None
    arm_endpoint: str
    authority_host: str | None
    connection_verify: str | bool
    disable_instance_discovery: bool
    managed_identity_client_id: str | None = None
    workload_identity_tenant_id: str | None = None

    def __repr__(self) -> str:
        return (
            f"ArmSettings(client_id={self.client_id!r}, tenant_id={self.tenant_id!r}, "
            f"arm_endpoint={self.arm_endpoint!r}, authority_host={self.authority_host!r})"
        )

    @property
    def has_client_secret(self) -> bool:
        """Whether the connection carries a service principal (client id + secret + tenant)."""
        return bool(self.client_id and self.client_secret and self.tenant_id)

    @property
    def principal(self) -> str:
        """Name the principal in error messages (client id, or the ambient identity)."""
        return self.client_id or "the ambient managed/workload identity"

    def client_kwargs(self) -> dict[str, Any]:
        """Return keyword arguments for an Azure management client: endpoint, CA bundle, retries, pacing."""
        return {**self._client_kwargs(RetryPolicy), "per_retry_policies": [ArmPacingPolicy()]}

    def async_client_kwargs(self) -> dict[str, Any]:
        """Return keyword arguments for an async Azure management client."""
        return {**self._client_kwargs(AsyncRetryPolicy), "per_retry_policies": [AsyncArmPacingPolicy()]}

    def _client_kwargs(self, policy: type[RetryPolicy] | type[AsyncRetryPolicy]) -> dict[str, Any]:
        return {
            "base_url": self.arm_endpoint,
            "connection_verify": self.connection_verify,
            "retry_policy": policy(
                retry_total=RETRY_TOTAL,
                retry_backoff_factor=RETRY_BACKOFF_FACTOR,
                retry_backoff_max=RETRY_BACKOFF_MAX,
            ),
        }

    def _identity_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"connection_verify": self.connection_verify}
        if self.authority_host:
            kwargs["authority"] = self.authority_host
        if self.disable_instance_discovery:
            kwargs["disable_instance_discovery"] = True
        return kwargs

    def credential(self) -> TokenCredential:
        """Build the sync credential: client secret if configured, else ``DefaultAzureCredential``."""
        return cast("TokenCredential", self._credential(ClientSecretCredential, get_sync_default_azure_credential))

    def async_credential(self) -> AsyncTokenCredential:
        """Build the async credential (``azure.identity.aio``) for triggers."""
        credential = self._credential(AsyncClientSecretCredential, get_async_default_azure_credential)
        return cast("AsyncTokenCredential", credential)

    def _credential(self, client_secret: Callable[..., Any], default: Callable[..., Any]) -> Any:
        if self.has_client_secret:
            return client_secret(
                tenant_id=str(self.tenant_id),
                client_id=str(self.client_id),
                client_secret=str(self.client_secret),
                **self._identity_kwargs(),
            )
        return default(
            managed_identity_client_id=self.managed_identity_client_id,
            workload_identity_tenant_id=self.workload_identity_tenant_id,
        )


def arm_settings(conn: Any) -> ArmSettings:
    """Read an ``azure`` connection (login = client id, password = secret, extras) into ``ArmSettings``."""
    extra: dict[str, Any] = dict(conn.extra_dejson or {})
    authority = (extra.get("authority_host") or "").strip() or None
    ca_bundle = (extra.get("ca_bundle") or "").strip() or None
    if "disable_instance_discovery" in extra:
        disable = _truthy(extra["disable_instance_discovery"])
    else:
        disable = authority is not None
    return ArmSettings(
        client_id=conn.login or None,
        client_secret=conn.password or None,
        tenant_id=extra.get("tenantId") or extra.get("tenant_id") or None,
        subscription_id=extra.get("subscriptionId") or extra.get("subscription_id") or None,
        arm_endpoint=((extra.get("arm_endpoint") or "").strip() or DEFAULT_ARM_ENDPOINT).rstrip("/"),
        authority_host=authority,
        connection_verify=ca_bundle if ca_bundle else True,
        disable_instance_discovery=disable,
        managed_identity_client_id=extra.get("managed_identity_client_id") or None,
        workload_identity_tenant_id=extra.get("workload_identity_tenant_id") or None,
    )
