"""Delete a lab's upload with the ARM connection's Entra ID credential: the upload SAS grants no delete.

DevTest Labs' ``generateUploadUri`` SAS is ``sp=rcw``. The factory's principal deletes the blob with a bearer token
for ``https://storage.azure.com`` (the Blob SDK's scope for a ``TokenCredential``), which Azure authorizes with
the principal's data role on the lab's storage account (*Storage Blob Data Contributor*). A refusal leaves the
upload where it is and says what it costs (``UploadLeft``): the image exists, so the pair is done regardless.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.storage.blob import BlobClient
from azure.storage.blob.aio import BlobClient as AsyncBlobClient

from image_factory.hooks.storage import async_sas_blob_client, sas_blob_client
from image_factory.redact import redact, strip_query
from image_factory.uploads_left import UploadLeft, account_of

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential
    from azure.core.credentials_async import AsyncTokenCredential

#: Retries of a delete (transient failures only: a 403 is final).
RETRY_TOTAL = 3


@dataclass(frozen=True)
class DeleteOutcome:
    """What deleting an upload did: ``deleted``, ``absent`` (already gone) or ``left`` (with why and its size)."""

    status: Literal["deleted", "absent", "left"]
    left: UploadLeft | None = None
    detail: str = ""


def _reason(exc: Exception) -> str:
    if isinstance(exc, HttpResponseError):
        return str(getattr(exc, "error_code", None) or f"HTTP {exc.status_code}")
    return type(exc).__name__


def _left(lab: str, sas_url: str, blob: str, exc: Exception, size: int | None) -> DeleteOutcome:
    upload = UploadLeft(lab=lab, account=account_of(sas_url), blob=blob, size=size, reason=_reason(exc))
    message = exc.message if isinstance(exc, HttpResponseError) else str(exc)
    return DeleteOutcome("left", upload, detail=redact(str(message).splitlines()[0])[:200] if message else "")


def _blob_name(sas_url: str) -> str:
    return strip_query(sas_url).rsplit("/", 1)[-1]


def delete_upload(sas_url: str, credential: TokenCredential, *, lab: str, verify: str | bool = True) -> DeleteOutcome:
    """Delete the blob behind an upload SAS with ``credential``'s token; a refusal leaves it (never raises)."""
    blob = _blob_name(sas_url)
    try:
        with BlobClient.from_blob_url(
            strip_query(sas_url), credential=credential, connection_verify=verify, retry_total=RETRY_TOTAL
        ) as client:
            client.delete_blob()
    except ResourceNotFoundError:
        return DeleteOutcome("absent")
    except Exception as exc:  # an upload left only costs storage: say so, never fail the step
        return _left(lab, sas_url, blob, exc, _size(sas_url, verify))
    return DeleteOutcome("deleted")


async def delete_upload_async(
    sas_url: str, credential: AsyncTokenCredential, *, lab: str, verify: str | bool = True
) -> DeleteOutcome:
    """Async ``delete_upload`` for triggers."""
    blob = _blob_name(sas_url)
    try:
        async with AsyncBlobClient.from_blob_url(
            strip_query(sas_url), credential=credential, connection_verify=verify, retry_total=RETRY_TOTAL
        ) as client:
            await client.delete_blob()
    except ResourceNotFoundError:
        return DeleteOutcome("absent")
    except Exception as exc:  # an upload left only costs storage: say so, never fail the pair
        return _left(lab, sas_url, blob, exc, await _size_async(sas_url, verify))
    return DeleteOutcome("deleted")


def _size(sas_url: str, verify: str | bool) -> int | None:
    """Read the upload's size through its SAS (``r`` is granted), or None."""
    try:
        with sas_blob_client(sas_url, verify) as client:
            return int(client.get_blob_properties().size)
    except Exception:  # the size only sharpens the report
        return None


async def _size_async(sas_url: str, verify: str | bool) -> int | None:
    try:
        async with async_sas_blob_client(sas_url, verify) as client:
            return int((await client.get_blob_properties()).size)
    except Exception:  # the size only sharpens the report
        return None
