"""Blob storage: the factory catalogue (VHDs + sidecars) on the ``wasb`` connection, and lab upload blobs by SAS.

The factory account is reached with ``WasbHook`` (extras ``connection_string`` and ``connection_verify`` pass
through to ``BlobServiceClient``). Target labs are never written with keys: their upload blob is reached only
through the SAS URL DevTest Labs ``generateUploadUri`` returns (read, create, write: deleting one takes the
connection's Entra token, ``hooks/uploads.py``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any, cast

from airflow.providers.microsoft.azure.hooks.wasb import WasbAsyncHook, WasbHook
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.storage.blob import BlobClient, BlobSasPermissions, ContentSettings, generate_blob_sas
from azure.storage.blob.aio import BlobClient as AsyncBlobClient

from image_factory.exceptions import AzureRequestError
from image_factory.redact import mask, redact, strip_query

if TYPE_CHECKING:
    from azure.storage.blob import BlobProperties

#: Size of a VHD footer; a fixed VHD ends with one starting with ``conectix``.
VHD_FOOTER_SIZE = 512
VHD_COOKIE = b"conectix"


@dataclass(frozen=True)
class CopyState:
    """The copy recorded on a destination blob (``x-ms-copy-*`` headers); ``status`` is None if none."""

    exists: bool
    status: str | None = None
    copy_id: str | None = None
    progress: str | None = None
    description: str | None = None
    size: int | None = None

    @property
    def percent(self) -> float | None:
        """Return the copy progress (``bytes/total``) as a percentage, if known."""
        if not self.progress or "/" not in self.progress:
            return None
        done, _, total = self.progress.partition("/")
        try:
            return 100.0 * int(done) / int(total) if int(total) else 100.0
        except ValueError:
            return None


def copy_state(props: BlobProperties | None) -> CopyState:
    """Read a blob's copy headers into ``CopyState``."""
    if props is None:
        return CopyState(exists=False)
    copy = getattr(props, "copy", None)
    return CopyState(
        exists=True,
        status=getattr(copy, "status", None) if copy is not None else None,
        copy_id=getattr(copy, "id", None) if copy is not None else None,
        progress=getattr(copy, "progress", None) if copy is not None else None,
        description=redact(str(copy.status_description)) if copy is not None and copy.status_description else None,
        size=getattr(props, "size", None),
    )


def parse_connection_string(text: str) -> dict[str, str]:
    """Split a storage connection string into its ``Key=Value`` parts."""
    parts: dict[str, str] = {}
    for item in text.split(";"):
        key, sep, value = item.partition("=")
        if sep and key.strip():
            parts[key.strip()] = value.strip()
    return parts


def footer_digest(footer: bytes) -> str:
    """Return the SHA-256 hex digest of a VHD footer."""
    return hashlib.sha256(footer).hexdigest()


def is_vhd_footer(footer: bytes) -> bool:
    """Tell whether ``footer`` (a blob's last 512 bytes) is a VHD footer."""
    return len(footer) == VHD_FOOTER_SIZE and footer.startswith(VHD_COOKIE)


def sas_blob_client(url: str, verify: str | bool = True) -> BlobClient:
    """Return a sync blob client for a SAS URL."""
    return BlobClient.from_blob_url(url, connection_verify=verify, retry_total=3)


def async_sas_blob_client(url: str, verify: str | bool = True) -> AsyncBlobClient:
    """Return an async blob client for a SAS URL."""
    return AsyncBlobClient.from_blob_url(url, connection_verify=verify, retry_total=3)


def sas_copy_state(url: str, verify: str | bool = True) -> CopyState:
    """Return the copy state of the blob behind a SAS URL."""
    with sas_blob_client(url, verify) as blob:
        try:
            return copy_state(blob.get_blob_properties())
        except ResourceNotFoundError:
            return CopyState(exists=False)


def _start_copy(blob: BlobClient, source_url: str, where: str) -> str:
    """Start a server-side copy of ``source_url`` into ``blob``; return the copy id."""
    try:
        result = blob.start_copy_from_url(source_url)
    except HttpResponseError as exc:
        raise AzureRequestError(
            f"starting the copy into {where} failed (HTTP {exc.status_code}): {redact(str(exc.reason or exc.message))}",
            status=exc.status_code,
        ) from exc
    return str(result.get("copy_id") or "")


def start_copy_to_sas(dest_url: str, source_url: str, verify: str | bool = True) -> str:
    """Start a server-side copy of ``source_url`` into the blob behind ``dest_url``; return the copy id."""
    with sas_blob_client(dest_url, verify) as blob:
        return _start_copy(blob, source_url, strip_query(dest_url))


class _FactoryStorageConnection:
    """The factory's ``wasb`` connection, as the provider's hooks declare one (shared by the sync and async hook)."""

    conn_name_attr = "wasb_conn_id"
    default_conn_name = "image_factory_storage"
    conn_type = "wasb"

    def __init__(self, wasb_conn_id: str = default_conn_name) -> None:
        super().__init__(wasb_conn_id=wasb_conn_id)  # type: ignore[call-arg]


class FactoryStorageHook(_FactoryStorageConnection, WasbHook):
    """The factory's storage account: what ``WasbHook`` lacks (catalogue listing, copy state, footers, read SAS).

    Blob existence, container creation, uploads and downloads are the provider's own ``check_for_blob``,
    ``create_container``, ``upload`` and ``download``.
    """

    hook_name = "Azure Blob Storage (Image Factory)"

    @cached_property
    def _connection_parts(self) -> dict[str, str]:
        extra = self.get_connection(self.conn_id).extra_dejson or {}
        text = self._get_field(extra, "connection_string")  # type: ignore[no-untyped-call]
        if not text:
            raise AzureRequestError(
                f"connection {self.conn_id} has no 'connection_string' extra: the factory signs its read SAS "
                "with the account key (DefaultEndpointsProtocol=https;AccountName=…;AccountKey=…;BlobEndpoint=…)"
            )
        parts = parse_connection_string(str(text))
        mask(parts.get("AccountKey"))
        return parts

    def _blob(self, container: str, blob: str) -> BlobClient:
        """Return the provider's (sync) blob client, typed."""
        return cast("BlobClient", self._get_blob_client(container, blob))

    def list_catalogue(self, container: str) -> tuple[list[tuple[str, bytes]], set[str]]:
        """Return (sidecar name + bytes for every ``*.json``, names of every ``*.vhd``) in ``container``."""
        sidecars: list[tuple[str, bytes]] = []
        vhds: set[str] = set()
        try:
            for name in self.get_blobs_list_recursive(container):
                if name.endswith(".json") and "/" not in name:
                    sidecars.append((name, self.download(container, name).readall()))
                elif name.endswith(".vhd"):
                    vhds.add(name)
        except ResourceNotFoundError:
            return [], set()
        return sidecars, vhds

    def copy_state(self, container: str, blob: str) -> CopyState:
        """Return the copy state of a factory blob."""
        try:
            props = self._blob(container, blob).get_blob_properties()
        except ResourceNotFoundError:
            return CopyState(exists=False)
        return copy_state(props)

    def write_json(self, container: str, blob: str, data: bytes) -> None:
        """Write (overwrite) a small JSON blob, such as a sidecar."""
        settings = ContentSettings(content_type="application/json")
        self.upload(container, blob, data, overwrite=True, content_settings=settings)

    def read_footer(self, container: str, blob: str) -> tuple[bytes, int]:
        """Return (the last 512 bytes, the size) of a blob."""
        size = int(self._blob(container, blob).get_blob_properties().size)
        if size < VHD_FOOTER_SIZE:
            return b"", size
        footer = self.download(container, blob, offset=size - VHD_FOOTER_SIZE, length=VHD_FOOTER_SIZE).readall()
        return footer, size

    def read_sas_url(self, container: str, blob: str, hours: int) -> str:
        """Return a read-only SAS URL for that one blob, valid ``hours`` (a secret: never log it)."""
        parts = self._connection_parts
        key = parts.get("AccountKey")
        account = parts.get("AccountName")
        if not key or not account:
            raise AzureRequestError(
                f"connection {self.conn_id}: the connection string needs AccountName and AccountKey to sign a "
                "read SAS for the copy"
            )
        now = datetime.now(UTC)
        token = generate_blob_sas(
            account_name=account,
            container_name=container,
            blob_name=blob,
            account_key=key,
            permission=BlobSasPermissions(read=True),
            start=now - timedelta(minutes=5),
            expiry=now + timedelta(hours=hours),
        )
        url = f"{self._blob(container, blob).url}?{token}"
        mask(url, token)
        return url

    def start_copy(self, container: str, blob: str, source_url: str) -> str:
        """Start a server-side copy of ``source_url`` (a SAS URL) into a factory blob; return the copy id.

        The provider's ``copy_blobs`` copies within the account by plain URL and returns no copy id.
        """
        self.create_container(container)
        return _start_copy(self._blob(container, blob), source_url, f"{container}/{blob}")

    def delete(self, container: str, blob: str) -> bool:
        """Delete a factory blob; return False when it did not exist (one request, unlike ``delete_file``)."""
        try:
            self._blob(container, blob).delete_blob()
        except ResourceNotFoundError:
            return False
        return True


class FactoryStorageAsyncHook(_FactoryStorageConnection, WasbAsyncHook):
    """Async access to the factory's storage account for triggers (copy status only)."""

    hook_name = "Azure Blob Storage (Image Factory, async)"

    async def copy_state_async(self, container: str, blob: str) -> CopyState:
        """Return the copy state of a factory blob."""
        service: Any = await self.get_async_conn()
        try:
            props = await service.get_blob_client(container, blob).get_blob_properties()
        except ResourceNotFoundError:
            return CopyState(exists=False)
        return copy_state(props)

    async def aclose(self) -> None:
        """Close the async service client."""
        if self._blob_service_client is not None:
            await self._blob_service_client.close()  # type: ignore[misc]
            self._blob_service_client = None
