"""Hooks: credentials from connection extras, ARM error mapping, SAS generation and redaction."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from azure.core.exceptions import HttpResponseError

from image_factory.exceptions import ForbiddenError
from image_factory.hooks.compute import parse_disk_id
from image_factory.hooks.credentials import arm_settings
from image_factory.hooks.devtestlabs import arm_error, custom_image_body, resource_group_of
from image_factory.hooks.storage import CopyState, FactoryStorageHook, is_vhd_footer, parse_connection_string
from image_factory.redact import redact


def _conn(extra: dict[str, Any], login: str | None = "cid", password: str | None = "s3cret") -> Any:
    return SimpleNamespace(login=login, password=password, extra_dejson=extra)


def test_arm_settings_with_private_authority() -> None:
    s = arm_settings(
        _conn(
            {
                "tenantId": "t",
                "subscriptionId": "sub",
                "arm_endpoint": "https://127.0.0.1:1/",
                "authority_host": "https://127.0.0.1:1",
                "ca_bundle": "/ca.pem",
            }
        )
    )
    assert s.arm_endpoint == "https://127.0.0.1:1"
    assert s.disable_instance_discovery is True
    assert s.connection_verify == "/ca.pem"
    assert s.client_kwargs()["base_url"] == "https://127.0.0.1:1"
    assert "s3cret" not in repr(s)


def test_arm_settings_defaults_to_public_cloud() -> None:
    s = arm_settings(_conn({"tenantId": "t"}))
    assert s.arm_endpoint == "https://management.azure.com"
    assert s.disable_instance_discovery is False and s.connection_verify is True
    assert not arm_settings(_conn({}, login=None, password=None)).has_client_secret


def test_forbidden_error_says_what_to_fix() -> None:
    response = SimpleNamespace(status_code=403, reason="Forbidden", headers={}, text=lambda: "")
    exc = HttpResponseError(message="AuthorizationFailed", response=response)  # type: ignore[arg-type]
    mapped = arm_error(exc, action="create the custom image", scope="lab QALab", principal="cid")
    assert isinstance(mapped, ForbiddenError)
    assert "cid" in str(mapped) and "DevTest Labs User" in str(mapped) and "QALab" in str(mapped)


def test_custom_image_body_tags_and_flags() -> None:
    body = custom_image_body(
        vhd_name="x.vhd", os_type="Linux", sysprep=False, image_path="Ubuntu/U.json", version="2025-03-01"
    )
    data = body.serialize()
    assert data["properties"]["vhd"] == {"imageName": "x.vhd", "sysPrep": False, "osType": "Linux"}
    assert data["tags"]["ImageFactory.ManagedBy"] == "airflow-image-factory"
    assert data["tags"]["ImagePath"] == "Ubuntu/U.json"


def test_ids_parse() -> None:
    assert parse_disk_id("/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/disks/d") == ("s", "g", "d")
    assert resource_group_of("/subscriptions/s/resourceGroups/rg-dev/providers/x/labs/L") == "rg-dev"


def test_copy_state_percent_and_footer() -> None:
    assert CopyState(exists=True, progress="256/1024").percent == 25.0
    assert is_vhd_footer(b"conectix" + b"\0" * 504) and not is_vhd_footer(b"conectix")


def test_read_sas_is_read_only_for_one_blob(monkeypatch: pytest.MonkeyPatch) -> None:
    key = "a2V5a2V5a2V5a2V5a2V5a2V5"
    conn_str = f"DefaultEndpointsProtocol=https;AccountName=factorystore;AccountKey={key};BlobEndpoint=https://127.0.0.1:9/factorystore;"
    monkeypatch.setenv(
        "AIRFLOW_CONN_IMAGE_FACTORY_STORAGE",
        json.dumps({"conn_type": "wasb", "extra": {"connection_string": conn_str}}),
    )
    assert parse_connection_string(conn_str)["AccountName"] == "factorystore"
    url = FactoryStorageHook().read_sas_url("imagefactoryvhds", "a.vhd", 4)
    parts = urlsplit(url)
    assert parts.path == "/factorystore/imagefactoryvhds/a.vhd"
    query = parse_qs(parts.query)
    assert query["sp"] == ["r"] and query["sr"] == ["b"]
    assert key not in url
    assert "sig=***" in redact(url) and query["sig"][0] not in redact(url)
