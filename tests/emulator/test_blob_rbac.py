"""The upload SAS as Azure issues it (``sp=rcw``, about a day) and data-plane RBAC for bearer tokens."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from azure.core.exceptions import HttpResponseError
from azure.storage.blob import BlobClient, BlobType

from tests.emulator.conftest import SUB1, control_client, control_get, credential, dtl_client, token_blob

pytestmark = pytest.mark.emulator

DATA_CONTRIBUTOR = "Storage Blob Data Contributor"
TEST_LAB_ACCOUNT = (
    f"/subscriptions/{SUB1}/resourceGroups/rg-test/providers/Microsoft.Storage/storageAccounts/testlabstore"
)


def _upload(info: dict[str, Any], blob: str) -> str:
    """Upload one page of data as ``uploads/<blob>`` of TestLab through its upload SAS; return the SAS URL."""
    uri = dtl_client(info).labs.generate_upload_uri("rg-test", "TestLab", blob_name=blob).upload_uri
    assert uri
    BlobClient.from_blob_url(uri, connection_verify=info["ca_bundle"]).upload_blob(
        b"\1" * 1024, blob_type=BlobType.PAGEBLOB, overwrite=True
    )
    return uri


def _role(info: dict[str, Any], method: str, principal: str, scope: str, role: str) -> httpx.Response:
    with control_client(info) as client:
        return client.request(
            method,
            info["control_endpoint"] + "/role-assignments",
            json={"principal": principal, "scope": scope, "role": role},
        )


@pytest.fixture
def roles(local_azure: dict[str, Any]) -> Iterator[list[tuple[str, str, str, str]]]:
    """Record role changes a test makes (method, principal, scope, role) and undo them afterwards."""
    changes: list[tuple[str, str, str, str]] = []
    yield changes
    for method, principal, scope, role in reversed(changes):
        _role(local_azure, "DELETE" if method == "POST" else "POST", principal, scope, role)


def _change(info: dict[str, Any], roles: list[Any], method: str, *grant: str) -> None:
    principal, scope, role = grant
    response = _role(info, method, principal, scope, role)
    assert response.status_code in (200, 201), response.text
    roles.append((method, principal, scope, role))


def test_upload_sas_is_read_create_write_for_about_a_day(local_azure: dict[str, Any]) -> None:
    uri = _upload(local_azure, f"sas-{uuid.uuid4().hex[:8]}.vhd")
    query = {k: v[0] for k, v in parse_qs(urlsplit(uri).query).items()}
    assert query["sp"] == "rcw"
    assert query["sr"] == "b"
    lifetime = datetime.fromisoformat(query["se"]) - datetime.fromisoformat(query["st"])
    assert timedelta(hours=24) <= lifetime <= timedelta(hours=24, minutes=30)
    blob = BlobClient.from_blob_url(uri, connection_verify=local_azure["ca_bundle"], retry_total=0)
    assert blob.get_blob_properties().size == 1024  # read: watch a copy
    with pytest.raises(HttpResponseError) as refused:
        blob.delete_blob()
    assert refused.value.status_code == 403
    assert refused.value.error_code == "AuthorizationPermissionMismatch"
    assert blob.exists()


def test_data_contributor_token_deletes_an_upload(local_azure: dict[str, Any]) -> None:
    blob = token_blob(local_azure, _upload(local_azure, f"rbac-{uuid.uuid4().hex[:8]}.vhd"))
    before = control_get(local_azure, "/stats")["blob"]["bearer"]["allowed"]
    assert blob.get_blob_properties().size == 1024
    blob.delete_blob()
    assert not blob.exists()
    after = control_get(local_azure, "/stats")["blob"]["bearer"]["allowed"]
    assert after.get("delete", 0) == before.get("delete", 0) + 1


@pytest.mark.parametrize("principal", ["reader", "outsider"])
def test_no_data_role_is_refused_as_azure_refuses(local_azure: dict[str, Any], principal: str) -> None:
    uri = _upload(local_azure, f"deny-{uuid.uuid4().hex[:8]}.vhd")
    blob = token_blob(local_azure, uri, principal)
    for call in (blob.delete_blob, blob.get_blob_properties):
        with pytest.raises(HttpResponseError) as refused:
            call()
        assert refused.value.status_code == 403
        assert refused.value.error_code == "AuthorizationPermissionMismatch"
    with pytest.raises(HttpResponseError) as body:
        blob.download_blob()
    assert "using this permission" in str(body.value)
    assert BlobClient.from_blob_url(uri, connection_verify=local_azure["ca_bundle"]).exists()


def test_owner_of_the_subscription_is_no_data_role(local_azure: dict[str, Any], roles: list[Any]) -> None:
    """ARM's Owner grants no data action, and a data role grants no ARM call (control and data plane apart)."""
    uri = _upload(local_azure, f"planes-{uuid.uuid4().hex[:8]}.vhd")
    _change(local_azure, roles, "POST", "outsider", f"/subscriptions/{SUB1}", "Owner")
    with pytest.raises(HttpResponseError) as refused:
        token_blob(local_azure, uri, "outsider").delete_blob()
    assert refused.value.error_code == "AuthorizationPermissionMismatch"
    _change(local_azure, roles, "DELETE", "outsider", f"/subscriptions/{SUB1}", "Owner")
    _change(local_azure, roles, "POST", "outsider", TEST_LAB_ACCOUNT, DATA_CONTRIBUTOR)
    with pytest.raises(HttpResponseError) as arm_refused:
        dtl_client(local_azure, principal="outsider").labs.get("rg-test", "TestLab")
    assert arm_refused.value.status_code == 403
    token_blob(local_azure, uri, "outsider").delete_blob()


def test_role_scopes_account_container_and_reader(local_azure: dict[str, Any], roles: list[Any]) -> None:
    uri = _upload(local_azure, f"scope-{uuid.uuid4().hex[:8]}.vhd")
    _change(local_azure, roles, "POST", "outsider", TEST_LAB_ACCOUNT, "Storage Blob Data Reader")
    blob = token_blob(local_azure, uri, "outsider")
    assert blob.get_blob_properties().size == 1024  # a reader reads
    with pytest.raises(HttpResponseError) as refused:
        blob.delete_blob()
    assert refused.value.error_code == "AuthorizationPermissionMismatch"
    other = TEST_LAB_ACCOUNT.replace("testlabstore", "devlabstore") + "/blobServices/default/containers/uploads"
    _change(local_azure, roles, "POST", "outsider", other, DATA_CONTRIBUTOR)
    with pytest.raises(HttpResponseError):
        blob.delete_blob()  # a role on another account's container does not reach this one
    _change(
        local_azure,
        roles,
        "POST",
        "outsider",
        f"{TEST_LAB_ACCOUNT}/blobServices/default/containers/uploads",
        DATA_CONTRIBUTOR,
    )
    blob.delete_blob()
    assert not blob.exists()


def test_removing_the_role_refuses_at_once(local_azure: dict[str, Any], roles: list[Any]) -> None:
    uri = _upload(local_azure, f"revoke-{uuid.uuid4().hex[:8]}.vhd")
    _change(local_azure, roles, "DELETE", "image-factory", f"/subscriptions/{SUB1}", DATA_CONTRIBUTOR)
    with pytest.raises(HttpResponseError) as refused:
        token_blob(local_azure, uri).delete_blob()
    assert refused.value.error_code == "AuthorizationPermissionMismatch"
    assert control_get(local_azure, "/role-assignments")["image-factory"] == [
        {"scope": f"/subscriptions/{SUB1}", "role": "Contributor"},
        {"scope": "/subscriptions/22222222-2222-4222-8222-222222222222", "role": "Contributor"},
        {"scope": "/subscriptions/22222222-2222-4222-8222-222222222222", "role": DATA_CONTRIBUTOR},
    ]
    assert _role(local_azure, "DELETE", "image-factory", f"/subscriptions/{SUB1}", DATA_CONTRIBUTOR).status_code == 404
    assert _role(local_azure, "POST", "image-factory", "/x", "Storage Blob Data Janitor").status_code == 400


def test_an_arm_token_is_not_a_storage_token(local_azure: dict[str, Any]) -> None:
    uri = _upload(local_azure, f"aud-{uuid.uuid4().hex[:8]}.vhd")
    arm_token = credential(local_azure).get_token("https://management.azure.com/.default").token
    with httpx.Client(verify=local_azure["ca_bundle"]) as client:
        response = client.delete(
            uri.split("?", 1)[0], headers={"Authorization": f"Bearer {arm_token}", "x-ms-version": "2025-11-05"}
        )
        assert response.status_code == 401
        assert response.headers["x-ms-error-code"] == "InvalidAuthenticationInfo"
        assert "Audience validation failed" in response.text
        challenge = response.headers["www-authenticate"]
        assert (
            challenge.startswith("Bearer authorization_uri=") and "resource_id=https://storage.azure.com" in challenge
        )
        forged = client.get(
            uri.split("?", 1)[0], headers={"Authorization": "Bearer not.a.token", "x-ms-version": "2025-11-05"}
        )
        assert forged.status_code == 401


async def test_the_products_token_delete_with_and_without_the_role(
    local_azure: dict[str, Any], roles: list[Any]
) -> None:
    """The factory's own delete (async SDK client, async credential) against the proxy: deleted, then left."""
    from image_factory.hooks.uploads import delete_upload_async
    from tests.emulator.conftest import aio_credential

    verify = local_azure["ca_bundle"]
    async with aio_credential(local_azure) as token:
        kept = _upload(local_azure, f"product-{uuid.uuid4().hex[:8]}.vhd")
        assert (await delete_upload_async(kept, token, lab="TestLab", verify=verify)).status == "deleted"
        assert (await delete_upload_async(kept, token, lab="TestLab", verify=verify)).status == "absent"
        _change(local_azure, roles, "DELETE", "image-factory", f"/subscriptions/{SUB1}", DATA_CONTRIBUTOR)
        left = _upload(local_azure, f"product-{uuid.uuid4().hex[:8]}.vhd")
        outcome = await delete_upload_async(left, token, lab="TestLab", verify=verify)
    assert outcome.status == "left" and outcome.left is not None
    assert outcome.left.to_dict() == {
        "lab": "TestLab",
        "account": "testlabstore",
        "blob": left.split("?", 1)[0].rsplit("/", 1)[-1],
        "size": 1024,
        "reason": "AuthorizationPermissionMismatch",
    }
    assert BlobClient.from_blob_url(left, connection_verify=verify).exists()
