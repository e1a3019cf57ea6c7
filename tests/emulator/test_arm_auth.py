"""Entra ID tokens, ARM's 401s and role-based 403s, through the unmodified SDK clients and raw HTTP."""

from __future__ import annotations

import time
from typing import Any

import httpx
import jwt
import pytest
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ResourceNotFoundError
from azure.identity import ClientSecretCredential
from azure.mgmt.devtestlabs import models

from tests.emulator.conftest import SUB1, SUB2, control_client, control_post, credential, dtl_client

pytestmark = pytest.mark.emulator

ARM_SCOPE = "https://management.azure.com/.default"


def _token_request(info: dict[str, Any], *, tenant: str | None = None, secret: str | None = None) -> httpx.Response:
    """POST a raw client-credentials token request for the default principal (its tenant and secret by default)."""
    with control_client(info) as client:
        return client.post(
            f"{info['authority_host']}/{tenant or info['tenant_id']}/oauth2/v2.0/token",
            data={
                "grant_type": "client_credentials",
                "client_id": info["client_id"],
                "client_secret": secret or info["client_secret"],
                "scope": ARM_SCOPE,
            },
        )


def _labs_url(info: dict[str, Any]) -> str:
    return f"{info['arm_endpoint']}/subscriptions/{SUB1}/providers/Microsoft.DevTestLab/labs?api-version=2018-09-15"


def test_token_is_an_rs256_jwt_signed_by_the_jwks(local_azure: dict[str, Any]) -> None:
    token = credential(local_azure).get_token(ARM_SCOPE)
    with control_client(local_azure) as client:
        oidc = client.get(
            f"{local_azure['authority_host']}/{local_azure['tenant_id']}/v2.0/.well-known/openid-configuration"
        )
        assert oidc.status_code == 200
        jwks = client.get(oidc.json()["jwks_uri"]).json()
    key = jwt.PyJWK(jwks["keys"][0]).key
    claims = jwt.decode(token.token, key, algorithms=["RS256"], audience="https://management.azure.com")
    assert claims["tid"] == local_azure["tenant_id"]
    assert claims["appid"] == local_azure["client_id"]
    assert claims["oid"]
    assert claims["exp"] > time.time() + 60
    assert token.expires_on == pytest.approx(claims["exp"], abs=5)


def test_wrong_secret_is_invalid_client(local_azure: dict[str, Any]) -> None:
    bad = ClientSecretCredential(
        local_azure["tenant_id"],
        local_azure["client_id"],
        "not-the-secret",
        authority=local_azure["authority_host"],
        connection_verify=local_azure["ca_bundle"],
        disable_instance_discovery=True,
    )
    with pytest.raises(ClientAuthenticationError, match="AADSTS7000215"):
        bad.get_token(ARM_SCOPE)
    response = _token_request(local_azure, secret="x")
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


def test_unknown_tenant_is_400(local_azure: dict[str, Any]) -> None:
    response = _token_request(local_azure, tenant="00000000-0000-4000-8000-000000000000")
    assert response.status_code == 400
    assert "error" in response.json()


def _arm_get(info: dict[str, Any], headers: dict[str, str]) -> httpx.Response:
    with control_client(info) as client:
        return client.get(_labs_url(info), headers=headers)


def test_missing_bearer_is_401_authentication_failed(local_azure: dict[str, Any]) -> None:
    response = _arm_get(local_azure, {})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "AuthenticationFailed"
    assert response.headers["WWW-Authenticate"].startswith("Bearer ")
    assert response.headers["x-ms-request-id"]


def test_tampered_token_is_401_invalid_token(local_azure: dict[str, Any]) -> None:
    token = credential(local_azure).get_token(ARM_SCOPE).token
    header, payload, signature = token.split(".")
    forged = f"{header}.{payload}.{signature[:-6]}AAAAAA"
    response = _arm_get(local_azure, {"Authorization": f"Bearer {forged}"})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "InvalidAuthenticationToken"


def test_token_signed_by_another_key_is_refused(local_azure: dict[str, Any]) -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa

    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    claims = {
        "aud": "https://management.azure.com",
        "tid": local_azure["tenant_id"],
        "oid": "x",
        "exp": time.time() + 600,
    }
    token = jwt.encode(claims, other, algorithm="RS256")
    response = _arm_get(local_azure, {"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "InvalidAuthenticationToken"


def test_expired_token_is_401_expired(settings: dict[str, Any]) -> None:
    # Long enough that a slow machine still uses the token before it expires; the wait below is driven by the
    # token's own exp claim (whole seconds, like Entra's), not by a guessed sleep.
    assert control_post(settings, "/config", {"token_lifetime": 5}).status_code == 200
    response = _token_request(settings)
    assert response.json()["expires_in"] == 5
    token = response.json()["access_token"]
    assert _arm_get(settings, {"Authorization": f"Bearer {token}"}).status_code == 200
    expires_at = jwt.decode(token, options={"verify_signature": False})["exp"]
    time.sleep(max(expires_at - time.time(), 0) + 1.1)
    expired = _arm_get(settings, {"Authorization": f"Bearer {token}"})
    assert expired.status_code == 401
    assert expired.json()["error"]["code"] == "ExpiredAuthenticationToken"


def test_reader_can_read_but_not_write(local_azure: dict[str, Any]) -> None:
    client = dtl_client(local_azure, SUB1, principal="reader")
    names = sorted(lab.name for lab in client.labs.list_by_subscription())
    assert names == ["DevLab", "ImageFactory", "TestLab"]
    image = models.CustomImage(vhd=models.CustomImagePropertiesCustom(image_name="x.vhd", os_type="Windows"))
    with pytest.raises(HttpResponseError) as caught:
        client.custom_images.begin_create_or_update("rg-dev", "DevLab", "reader-image", image)
    assert caught.value.status_code == 403
    assert caught.value.error is not None and caught.value.error.code == "AuthorizationFailed"
    reader_oid = jwt.decode(
        credential(local_azure, "reader").get_token(ARM_SCOPE).token, options={"verify_signature": False}
    )["oid"]
    message = caught.value.error.message or ""
    assert f"The client '{reader_oid}' with object id '{reader_oid}'" in message
    assert "Microsoft.DevTestLab/labs/customImages/write" in message
    assert "/resourceGroups/rg-dev/providers/Microsoft.DevTestLab/labs/DevLab/customimages/reader-image" in message
    with pytest.raises(HttpResponseError) as upload:
        client.labs.generate_upload_uri("rg-dev", "DevLab", blob_name="a.vhd")
    assert upload.value.status_code == 403


def test_reader_has_no_role_on_the_other_subscription(local_azure: dict[str, Any]) -> None:
    with pytest.raises(HttpResponseError) as caught:
        dtl_client(local_azure, SUB2, principal="reader").labs.get("rg-qa", "QALab")
    assert caught.value.status_code == 403
    assert caught.value.error is not None and caught.value.error.code == "AuthorizationFailed"


def test_outsider_cannot_read(local_azure: dict[str, Any]) -> None:
    client = dtl_client(local_azure, SUB1, principal="outsider")
    with pytest.raises(HttpResponseError) as listing:
        list(client.labs.list_by_subscription())
    assert listing.value.status_code == 403
    with pytest.raises(HttpResponseError) as getting:
        client.labs.get("rg-dev", "DevLab")
    assert getting.value.status_code == 403
    assert "Microsoft.DevTestLab/labs/read" in str(getting.value)
    with pytest.raises(HttpResponseError) as missing:
        client.labs.get("rg-dev", "NoSuchLab")
    assert missing.value.status_code == 403, "no role on the scope must hide whether the lab exists"


def test_contributor_gets_404s_for_missing_things(local_azure: dict[str, Any]) -> None:
    client = dtl_client(local_azure, SUB1)
    with pytest.raises(ResourceNotFoundError) as lab:
        client.labs.get("rg-dev", "NoSuchLab")
    assert lab.value.error is not None and lab.value.error.code == "ResourceNotFound"
    with pytest.raises(ResourceNotFoundError) as group:
        client.labs.get("rg-nope", "DevLab")
    assert group.value.error is not None and group.value.error.code == "ResourceGroupNotFound"
    with pytest.raises(ResourceNotFoundError) as image:
        client.custom_images.get("rg-dev", "DevLab", "no-such-image")
    assert image.value.error is not None and image.value.error.code == "ResourceNotFound"
