"""ARM plumbing shared by the DevTest Labs and Compute hooks: one connection's clients per subscription, errors.

Both hooks reach Azure Resource Manager with the same connection settings (``credentials.arm_settings``): the
same credential, endpoint, CA bundle and retry policy for every subscription a lab lives in. ``ArmClients`` and
``AsyncArmClients`` hold that once per hook; ``arm_error`` turns a refused ARM call into a message that says what
to fix.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from functools import cached_property
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from airflow.providers.common.compat.connection import get_async_connection

from image_factory.exceptions import AzureRequestError, ForbiddenError
from image_factory.hooks.credentials import ArmSettings, arm_settings
from image_factory.redact import redact

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential
    from azure.core.credentials_async import AsyncTokenCredential
    from azure.core.exceptions import HttpResponseError


class _Closable(Protocol):
    def close(self) -> Any: ...


class _AsyncClosable(Protocol):
    async def close(self) -> None: ...


ClientT = TypeVar("ClientT", bound=_Closable)
AsyncClientT = TypeVar("AsyncClientT", bound=_AsyncClosable)


def arm_message(exc: HttpResponseError) -> tuple[str | None, str]:
    """Return (the ARM error code, its redacted message) of a refused call."""
    error = getattr(exc, "error", None)
    code = getattr(error, "code", None) if error is not None else None
    message = getattr(error, "message", None) if error is not None else None
    return code, redact(str(message or exc.reason or exc.message or "no detail"))


def arm_error(exc: HttpResponseError, *, action: str, scope: str, principal: str) -> AzureRequestError:
    """Translate an ARM error into the factory's exception, with a message that says what to fix."""
    status = exc.status_code
    code, message = arm_message(exc)
    if status == 403:
        return ForbiddenError(
            f"principal {principal} may not {action} on {scope} ({code or 'Forbidden'}: {message}). "
            "Assign it the 'DevTest Labs User' role on the lab (or Contributor on its resource group).",
            code=code,
            status=status,
        )
    if status == 404:
        return AzureRequestError(
            f"{scope} was not found when trying to {action} ({code or 'NotFound'}: {message}). "
            "Check the names in labs.json / factory.json.",
            code=code,
            status=status,
        )
    return AzureRequestError(
        f"Azure refused to {action} on {scope} (HTTP {status} {code or ''}: {message}).",
        code=code,
        status=status,
    )


#: The Azure SDK's logger of every request's and response's headers (at INFO, pages of them per task log).
HTTP_LOGGER = "azure.core.pipeline.policies.http_logging_policy"


def quiet_http_logging() -> None:
    """Log the SDK's HTTP headers only at ``$AZURE_HTTP_LOGGING_LEVEL`` (default WARNING), as ``WasbHook`` does."""
    logger = logging.getLogger(HTTP_LOGGER)
    try:
        logger.setLevel(os.environ.get("AZURE_HTTP_LOGGING_LEVEL", logging.WARNING))
    except ValueError:
        logger.setLevel(logging.WARNING)


class ArmClients(Generic[ClientT]):
    """Sync management clients of one SDK, one per subscription, sharing one connection's settings and credential.

    :param make: the SDK client class (``DevTestLabsClient``, ``ComputeManagementClient``).
    :param read_connection: returns the Airflow connection (read once, on first use).
    :param options: extra client arguments (``api_version``).
    """

    def __init__(self, make: Callable[..., ClientT], read_connection: Callable[[], Any], **options: Any) -> None:
        quiet_http_logging()
        self._make = make
        self._read_connection = read_connection
        self._options = options
        self._clients: dict[str, ClientT] = {}
        self._lock = threading.Lock()  # plan and verify read labs from several threads

    @cached_property
    def settings(self) -> ArmSettings:
        """Return the connection's ARM settings (endpoint, CA, identity)."""
        return arm_settings(self._read_connection())

    @cached_property
    def credential(self) -> TokenCredential:
        """Return the sync credential, built once."""
        return self.settings.credential()

    def client(self, subscription_id: str) -> ClientT:
        """Return the client for ``subscription_id`` (cached per subscription, any casing)."""
        key = subscription_id.lower()
        with self._lock:
            if key not in self._clients:
                self._clients[key] = self._make(
                    self.credential, subscription_id, **self._options, **self.settings.client_kwargs()
                )
            return self._clients[key]

    def fail(self, exc: HttpResponseError, action: str, scope: str) -> AzureRequestError:
        """Translate a refused call made with these clients (names the connection's principal)."""
        return arm_error(exc, action=action, scope=scope, principal=self.settings.principal)

    def close(self) -> None:
        """Close every cached client."""
        for client in self._clients.values():
            client.close()
        self._clients.clear()


class AsyncArmClients(Generic[AsyncClientT]):
    """Async counterpart of ``ArmClients`` for triggers: settings read through the async connection API."""

    def __init__(self, make: Callable[..., AsyncClientT], conn_id: str, **options: Any) -> None:
        quiet_http_logging()
        self._make = make
        self._conn_id = conn_id
        self._options = options
        self._clients: dict[str, AsyncClientT] = {}
        self._settings: ArmSettings | None = None
        self._credential: AsyncTokenCredential | None = None

    async def settings(self) -> ArmSettings:
        """Return the connection's ARM settings (read once)."""
        if self._settings is None:
            self._settings = arm_settings(await get_async_connection(self._conn_id))
        return self._settings

    async def credential(self) -> AsyncTokenCredential:
        """Return the async credential every client shares (built once; also for storage-scoped tokens)."""
        if self._credential is None:
            self._credential = (await self.settings()).async_credential()
        return self._credential

    async def client(self, subscription_id: str) -> AsyncClientT:
        """Return the async client for ``subscription_id`` (cached; one credential for all)."""
        key = subscription_id.lower()
        if key not in self._clients:
            settings = await self.settings()
            credential = await self.credential()
            self._clients[key] = self._make(
                credential, subscription_id, **self._options, **settings.async_client_kwargs()
            )
        return self._clients[key]

    async def fail(self, exc: HttpResponseError, action: str, scope: str) -> AzureRequestError:
        """Translate a refused call made with these clients (names the connection's principal)."""
        return arm_error(exc, action=action, scope=scope, principal=(await self.settings()).principal)

    async def aclose(self) -> None:
        """Close every async client and the async credential."""
        for client in self._clients.values():
            await client.close()
        self._clients.clear()
        if self._credential is not None:
            await self._credential.close()
            self._credential = None
