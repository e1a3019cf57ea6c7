"""The storage half of the local Azure: Azurite behind the HTTPS blob proxy, plus helpers for the ARM half."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from azure.storage.blob import (
    AccountSasPermissions,
    ResourceTypes,
    generate_account_sas,
    generate_blob_sas,
    generate_container_sas,
)

from emulator.azurite import AzuriteProcess
from emulator.blob.connections import tracking_protocol
from emulator.blob.copies import PENDING
from emulator.blob.operations import redact
from emulator.blob.proxy import BlobProxy
from emulator.blob.rbac import DataPlaneAuth
from emulator.certs import CertPaths
from emulator.entra import Entra
from emulator.faults import FaultRules
from emulator.https import QuietServer, start_https, wait_started
from emulator.latency import Delayed, Latencies

log = logging.getLogger(__name__)

PAGE_WRITE_LIMIT = 4 * 1024 * 1024
#: The emulator's own account SAS is renewed when it has less than this left.
INTERNAL_SAS_LIFETIME = dt.timedelta(hours=24)
INTERNAL_SAS_RENEW = dt.timedelta(hours=1)


class StorageError(RuntimeError):
    """Azurite refused one of the emulator's own storage calls."""


class PendingCopyError(StorageError):
    """The blob is the destination of a copy that is still pending; its content is not there yet."""


@dataclass(frozen=True)
class BlobInfo:
    """A blob as clients see it through the proxy."""

    blob_type: str
    size: int
    copy_status: str | None
    metadata: dict[str, str] = field(default_factory=dict)
    copy_progress: str | None = None
    content_type: str | None = None


class StorageEmulator:
    """Azurite (plain HTTP, loopback) behind an HTTPS proxy that behaves like Azure Blob storage."""

    def __init__(
        self,
        *,
        state_dir: Path,
        accounts: dict[str, str],
        certs: CertPaths,
        faults: FaultRules,
        blob_port: int = 0,
        copy_seconds: float = 2.0,
        copy_bandwidth: float | None = None,
        latencies: Latencies | None = None,
    ) -> None:
        """Prepare the emulator; ``accounts`` maps account names to base64 keys; ``latencies`` delays requests."""
        self.state_dir = state_dir
        self.accounts = dict(accounts)
        self.certs = certs
        self.faults = faults
        self.blob_port = blob_port
        self._copy_seconds = copy_seconds
        self._copy_bandwidth = copy_bandwidth
        self.latencies = latencies or Latencies()
        self.azurite = AzuriteProcess(location=state_dir / "azurite", accounts=self.accounts, ca_pem=certs.ca_pem)
        self.proxy: BlobProxy | None = None
        self._server: QuietServer | None = None
        self._serve_task: asyncio.Task[None] | None = None
        self._port = 0
        self._sas_issued: list[dict[str, Any]] = []
        self._internal_sas: dict[str, tuple[dt.datetime, str]] = {}

    # ---------------------------------------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        """Start Azurite, then the HTTPS proxy on ``blob_port`` (0 = a free port) in this event loop."""
        if self._serve_task is not None:
            return
        await self.azurite.start()
        try:
            self.proxy = BlobProxy(
                upstream=self.azurite.endpoint,
                faults=self.faults,
                credential_query=self._internal_query,
                copy_seconds=self._copy_seconds,
                copy_bandwidth=self._copy_bandwidth,
            )
            self._server, self._serve_task, self._port = start_https(
                Delayed(self.proxy, self._storage_delay),
                self.certs,
                self.blob_port,
                http=tracking_protocol(self.proxy.connections),
                date_header=False,
            )
            await wait_started(self._server, self._serve_task, what="the blob proxy", error=StorageError, timeout=10)
        except BaseException:
            await self.stop()
            raise
        log.info("Blob endpoint %s (Azurite pid %s)", self.blob_endpoint, self.azurite.pid)

    async def _storage_delay(self) -> None:
        await self.latencies.wait("storage")

    async def stop(self) -> None:
        """Stop the proxy and Azurite (by pid, no orphan); idempotent."""
        server, task = self._server, self._serve_task
        self._server, self._serve_task = None, None
        if server is not None:
            server.should_exit = True
        if task is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(task), 0.3)
            if not task.done() and self.proxy is not None:
                self.proxy.connections.reset_all()  # idle keep-alive clients would hold the shutdown
            try:
                await asyncio.wait_for(task, 10)
            except (TimeoutError, asyncio.CancelledError):
                task.cancel()
            except Exception:
                log.exception("The blob proxy failed while stopping")
        if self.proxy is not None:
            await self.proxy.aclose()
        await self.azurite.stop()

    def use_entra(self, entra: Entra, authority: str) -> None:
        """Accept bearer tokens of ``entra`` (served at ``authority``), authorized by the world's data roles."""
        self._proxy.data_plane = DataPlaneAuth(entra, authority)

    # ---------------------------------------------------------------------------------------------- endpoints

    @property
    def blob_endpoint(self) -> str:
        """Return the proxy's base URL ``https://127.0.0.1:Q``."""
        return f"https://127.0.0.1:{self._port}"

    def account_url(self, account: str) -> str:
        """Return the path-style account URL clients use."""
        return f"{self.blob_endpoint}/{account}"

    def connection_string(self, account: str) -> str:
        """Return a connection string for ``account`` through the proxy (contains the key: never log it)."""
        return (
            f"DefaultEndpointsProtocol=https;AccountName={account};AccountKey={self._key(account)};"
            f"BlobEndpoint={self.account_url(account)};"
        )

    def blob_sas_url(
        self,
        account: str,
        container: str,
        blob: str,
        *,
        permission: str,
        expiry: dt.datetime,
        purpose: str,
        start: dt.datetime | None = None,
    ) -> str:
        """Return a blob URL with a service SAS, and record it (signature redacted) in ``sas_issued``."""
        return self._sas_url((account, container, blob), permission, expiry, purpose, start)

    def container_sas_url(
        self, account: str, container: str, *, permission: str, expiry: dt.datetime, purpose: str
    ) -> str:
        """Return a container URL with a service SAS, and record it (signature redacted) in ``sas_issued``."""
        return self._sas_url((account, container, None), permission, expiry, purpose)

    def _sas_url(
        self,
        target: tuple[str, str, str | None],
        permission: str,
        expiry: dt.datetime,
        purpose: str,
        start: dt.datetime | None = None,
    ) -> str:
        account, container, blob = target
        grant: dict[str, Any] = {"account_key": self._key(account), "permission": permission, "expiry": expiry}
        if start is not None:
            grant["start"] = start
        if blob is None:
            token = generate_container_sas(account, container, **grant)
            path = quote(container)
        else:
            token = generate_blob_sas(account, container, blob, **grant)
            path = f"{quote(container)}/{quote(blob, safe='/')}"
        url = f"{self.account_url(account)}/{path}?{token}"
        self._sas_issued.append(
            {
                "account": account,
                "container": container,
                "blob": blob,
                "permission": permission,
                "expiry": expiry.isoformat(),
                "purpose": purpose,
                "issued_at": dt.datetime.now(dt.UTC).isoformat(),
                "url": redact(url),
            }
        )
        return url

    # ---------------------------------------------------------------------------------------------- helpers

    async def ensure_container(self, account: str, container: str) -> None:
        """Create a container unless it exists."""
        response = await self._proxy.upstream.internal("PUT", (account, container), query="restype=container")
        if response.status_code not in (201, 409):
            raise StorageError(f"create container {account}/{container}: HTTP {response.status_code}")

    async def put_page_blob(self, account: str, container: str, blob: str, data: bytes) -> None:
        """Create (or replace) a page blob holding ``data`` (length a multiple of 512)."""
        if len(data) % 512:
            raise ValueError("a page blob's size must be a multiple of 512 bytes")
        key = (account, container, blob)
        created = await self._proxy.upstream.internal(
            "PUT",
            key,
            headers={"x-ms-blob-type": "PageBlob", "x-ms-blob-content-length": str(len(data))},
            content=b"",
        )
        if created.status_code != 201:
            raise StorageError(f"create page blob {account}/{container}/{blob}: HTTP {created.status_code}")
        self._proxy.copies.forget(key)
        for offset in range(0, len(data), PAGE_WRITE_LIMIT):
            chunk = data[offset : offset + PAGE_WRITE_LIMIT]
            if not chunk.strip(b"\0"):
                continue  # page blobs are sparse: unwritten ranges read as zeros
            written = await self._proxy.upstream.internal(
                "PUT",
                key,
                query="comp=page",
                headers={
                    "x-ms-page-write": "update",
                    "x-ms-range": f"bytes={offset}-{offset + len(chunk) - 1}",
                },
                content=chunk,
            )
            if written.status_code != 201:
                raise StorageError(f"write pages of {account}/{container}/{blob}: HTTP {written.status_code}")

    async def blob_info(self, account: str, container: str, blob: str) -> BlobInfo | None:
        """Return a blob's type, size, copy status (as clients see it) and metadata; None if absent."""
        key = (account, container, blob)
        record = self._proxy.copies.active.get(key)
        if record is not None and record.status(time.monotonic()) != PENDING:
            await asyncio.wait_for(record.settled.wait(), 10)
        response = await self._proxy.upstream.internal("HEAD", key)
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise StorageError(f"properties of {account}/{container}/{blob}: HTTP {response.status_code}")
        headers = response.headers
        copy_status = headers.get("x-ms-copy-status")
        progress = headers.get("x-ms-copy-progress")
        if record is not None:
            copy_headers = record.headers(time.monotonic())
            copy_status, progress = copy_headers["x-ms-copy-status"], copy_headers["x-ms-copy-progress"]
        return BlobInfo(
            blob_type=headers.get("x-ms-blob-type", "BlockBlob"),
            size=int(headers.get("content-length", "0")),
            copy_status=copy_status,
            metadata={k[len("x-ms-meta-") :]: v for k, v in headers.items() if k.startswith("x-ms-meta-")},
            copy_progress=progress,
            content_type=headers.get("content-type"),
        )

    async def read_range(self, account: str, container: str, blob: str, offset: int, length: int) -> bytes:
        """Return ``length`` bytes of a blob from ``offset``; refuse while a copy onto it is pending."""
        key = (account, container, blob)
        if self._proxy.copies.pending(key) is not None:
            raise PendingCopyError(f"{account}/{container}/{blob} has a pending copy; its content is incomplete")
        if length <= 0:
            return b""
        response = await self._proxy.upstream.internal(
            "GET", key, headers={"x-ms-range": f"bytes={offset}-{offset + length - 1}"}
        )
        if response.status_code not in (200, 206):
            raise StorageError(f"read {account}/{container}/{blob}: HTTP {response.status_code}")
        return response.content

    async def delete_blob(self, account: str, container: str, blob: str) -> bool:
        """Delete a blob (and its snapshots); tell whether it existed."""
        key = (account, container, blob)
        response = await self._proxy.upstream.internal("DELETE", key, headers={"x-ms-delete-snapshots": "include"})
        self._proxy.copies.forget(key)
        if response.status_code == 404:
            return False
        if response.status_code != 202:
            raise StorageError(f"delete {account}/{container}/{blob}: HTTP {response.status_code}")
        return True

    async def list_blobs(self) -> dict[str, dict[str, list[dict[str, Any]]]]:
        """Return ``account -> container -> [{name, size, blob_type, copy_status}]`` for every account."""
        result: dict[str, dict[str, list[dict[str, Any]]]] = {}
        now = time.monotonic()
        for account in self.accounts:
            containers: dict[str, list[dict[str, Any]]] = {}
            for container in await self._list(account, None, "comp=list", "Containers/Container"):
                name = container.findtext("Name") or ""
                blobs: list[dict[str, Any]] = []
                for item in await self._list(
                    account, name, "restype=container&comp=list&include=copy,metadata", "Blobs/Blob"
                ):
                    blob_name = item.findtext("Name") or ""
                    record = self._proxy.copies.active.get((account, name, blob_name))
                    blobs.append(
                        {
                            "name": blob_name,
                            "size": int(item.findtext("Properties/Content-Length") or 0),
                            "blob_type": item.findtext("Properties/BlobType"),
                            "copy_status": record.status(now)
                            if record is not None
                            else item.findtext("Properties/CopyStatus"),
                        }
                    )
                containers[name] = blobs
            result[account] = containers
        return result

    async def _list(self, account: str, container: str | None, query: str, path: str) -> list[ET.Element]:
        items: list[ET.Element] = []
        marker = ""
        key = (account,) if container is None else (account, container)
        while True:
            page_query = query + (f"&marker={quote(marker)}" if marker else "")
            response = await self._proxy.upstream.internal("GET", key, query=page_query)
            if response.status_code != 200:
                raise StorageError(f"list {'/'.join(key)}: HTTP {response.status_code}")
            root = ET.fromstring(response.content)  # noqa: S314 - our own Azurite's XML
            items.extend(root.findall(path))
            marker = root.findtext("NextMarker") or ""
            if not marker:
                return items

    # ---------------------------------------------------------------------------------------------- stats

    def stats(self) -> dict[str, Any]:
        """Return ``blob`` (requests by operation, early retries), ``copies`` and ``sas_issued``."""
        proxy = self._proxy
        return {
            "blob": proxy.stats(),
            "copies": proxy.copies.stats(),
            "sas_issued": list(self._sas_issued),
        }

    def pending_copies(self) -> int:
        """Return how many copies are pending right now (the ARM side counts requests made meanwhile)."""
        return self._proxy.copies.pending_now()

    def reset_stats(self) -> None:
        """Zero the statistics (copies still pending stay counted in the new window)."""
        self._proxy.reset_stats()
        self._sas_issued.clear()

    def configure(self, *, copy_seconds: float | None = None, copy_bandwidth: float | None = None) -> None:
        """Change how long new copies stay pending (``copy_bandwidth`` in bytes/s wins when set; 0 clears)."""
        if copy_seconds is not None:
            if copy_seconds < 0:
                raise ValueError("copy_seconds must be >= 0")
            self._copy_seconds = copy_seconds
        if copy_bandwidth is not None:
            if copy_bandwidth < 0:
                raise ValueError("copy_bandwidth must be >= 0 (0 = use copy_seconds)")
            self._copy_bandwidth = copy_bandwidth or None
        if self.proxy is not None:
            self.proxy.copies.copy_seconds = self._copy_seconds
            self.proxy.copies.copy_bandwidth = self._copy_bandwidth

    # ---------------------------------------------------------------------------------------------- internals

    @property
    def _proxy(self) -> BlobProxy:
        if self.proxy is None:
            raise StorageError("the storage emulator is not started")
        return self.proxy

    def _key(self, account: str) -> str:
        try:
            return self.accounts[account]
        except KeyError:
            raise KeyError(f"unknown storage account {account!r}") from None

    def _internal_query(self, account: str) -> str:
        """Return a full-permission account SAS (query string) for the emulator's own calls to Azurite."""
        now = dt.datetime.now(dt.UTC)
        cached = self._internal_sas.get(account)
        if cached is not None and cached[0] - now > INTERNAL_SAS_RENEW:
            return cached[1]
        expiry = now + INTERNAL_SAS_LIFETIME
        token = generate_account_sas(
            account_name=account,
            account_key=self._key(account),
            resource_types=ResourceTypes(service=True, container=True, object=True),
            permission=AccountSasPermissions(
                read=True, write=True, delete=True, list=True, add=True, create=True, update=True, tag=True
            ),
            expiry=expiry,
            start=now - dt.timedelta(minutes=5),
        )
        self._internal_sas[account] = (expiry, token)
        return token
