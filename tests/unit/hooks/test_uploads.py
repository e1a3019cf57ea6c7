"""Deleting a lab's upload with the connection's Entra token: deleted, already gone, or left with its cost."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from image_factory.hooks import uploads

SAS = "https://devlabstore.blob.core.windows.net/uploads/img.vhd?sv=1&sp=rcw&sig=SECRET"
TOKEN = object()


def refused(code: str = "AuthorizationPermissionMismatch", status: int = 403) -> HttpResponseError:
    exc = HttpResponseError(message="This request is not authorized to perform this operation using this permission.")
    exc.status_code = status
    exc.error_code = code  # type: ignore[attr-defined]
    return exc


class FakeClient:
    """A blob client: ``delete_blob`` raises ``error`` (or deletes); properties answer ``size``."""

    def __init__(self, error: Exception | None = None, size: int = 4096) -> None:
        self.error = error
        self.size = size
        self.made: list[tuple[str, Any]] = []

    def __call__(self, url: str, credential: Any = None, **_: Any) -> FakeClient:
        self.made.append((url, credential))
        return self

    def __enter__(self) -> FakeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    async def __aenter__(self) -> FakeClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    def delete_blob(self) -> None:
        if self.error is not None:
            raise self.error

    def get_blob_properties(self) -> Any:
        return SimpleNamespace(size=self.size)


class AsyncFakeClient(FakeClient):
    async def delete_blob(self) -> None:  # type: ignore[override]
        super().delete_blob()

    async def get_blob_properties(self) -> Any:  # type: ignore[override]
        return SimpleNamespace(size=self.size)


def install(monkeypatch: pytest.MonkeyPatch, client: FakeClient) -> None:
    monkeypatch.setattr(uploads.BlobClient, "from_blob_url", client)
    monkeypatch.setattr(uploads.AsyncBlobClient, "from_blob_url", client)
    monkeypatch.setattr(uploads, "sas_blob_client", lambda url, verify: client)
    monkeypatch.setattr(uploads, "async_sas_blob_client", lambda url, verify: client)


def test_deletes_with_the_token_on_the_plain_blob_url(monkeypatch: pytest.MonkeyPatch) -> None:
    client = FakeClient()
    install(monkeypatch, client)
    assert uploads.delete_upload(SAS, TOKEN, lab="DevLab") == uploads.DeleteOutcome("deleted")  # type: ignore[arg-type]
    assert client.made == [("https://devlabstore.blob.core.windows.net/uploads/img.vhd", TOKEN)]


def test_an_upload_already_gone_is_fine(monkeypatch: pytest.MonkeyPatch) -> None:
    install(monkeypatch, FakeClient(ResourceNotFoundError("gone")))
    assert uploads.delete_upload(SAS, TOKEN, lab="DevLab").status == "absent"  # type: ignore[arg-type]


def test_a_missing_data_role_leaves_the_upload_with_its_size(monkeypatch: pytest.MonkeyPatch) -> None:
    install(monkeypatch, FakeClient(refused(), size=2**30))
    outcome = uploads.delete_upload(SAS, TOKEN, lab="DevLab")  # type: ignore[arg-type]
    assert outcome.status == "left" and outcome.left is not None
    assert outcome.left.to_dict() == {
        "lab": "DevLab",
        "account": "devlabstore",
        "blob": "img.vhd",
        "size": 2**30,
        "reason": "AuthorizationPermissionMismatch",
    }
    assert outcome.left.missing_role
    assert "SECRET" not in repr(outcome)


async def test_async_delete_left_and_deleted(monkeypatch: pytest.MonkeyPatch) -> None:
    install(monkeypatch, AsyncFakeClient(refused("InternalError", 500), size=512))
    outcome = await uploads.delete_upload_async(SAS, TOKEN, lab="QALab")  # type: ignore[arg-type]
    assert outcome.left is not None and outcome.left.reason == "InternalError" and not outcome.left.missing_role
    install(monkeypatch, AsyncFakeClient())
    assert (await uploads.delete_upload_async(SAS, TOKEN, lab="QALab")).status == "deleted"  # type: ignore[arg-type]


def test_an_unreadable_size_is_unknown_not_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    class NoSize(FakeClient):
        def get_blob_properties(self) -> Any:
            raise refused()

    install(monkeypatch, NoSize(refused()))
    outcome = uploads.delete_upload(SAS, TOKEN, lab="DevLab")  # type: ignore[arg-type]
    assert outcome.left is not None and outcome.left.size is None
