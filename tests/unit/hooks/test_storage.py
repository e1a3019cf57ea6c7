"""Storage hook: copy state, VHD footers, a read SAS for one blob (redacted in logs)."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import pytest

from image_factory.hooks.storage import CopyState, FactoryStorageHook, is_vhd_footer, parse_connection_string
from image_factory.redact import redact


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
