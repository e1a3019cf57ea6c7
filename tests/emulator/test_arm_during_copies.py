"""The emulator counts ARM requests made while a blob copy is pending (the benchmarks' P1 figure)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from azure.storage.blob import BlobClient

from tests.emulator.conftest import SUB1, control_get, control_post, delete_upload, dtl_client

pytestmark = pytest.mark.emulator


def test_arm_requests_during_a_pending_copy_are_counted_apart(local_azure: dict[str, Any], settings: Any) -> None:
    control_post(local_azure, "/config", {"copy_seconds": 6})
    client = dtl_client(local_azure, SUB1)
    source_uri = client.labs.generate_upload_uri("rg-dev", "DevLab", blob_name="pending-source.vhd").upload_uri
    source = BlobClient.from_blob_url(source_uri, connection_verify=local_azure["ca_bundle"])
    source.upload_blob(b"\0" * 1024, blob_type="PageBlob", overwrite=True)
    target_uri = client.labs.generate_upload_uri("rg-test", "TestLab", blob_name="pending-target.vhd").upload_uri
    target = BlobClient.from_blob_url(target_uri, connection_verify=local_azure["ca_bundle"])

    control_post(local_azure, "/reset-stats", {})
    client.labs.get("rg-dev", "DevLab")  # no copy pending: not counted as "while pending"
    target.start_copy_from_url(source_uri)
    client.labs.get("rg-test", "TestLab")  # the copy is pending now
    during = control_get(local_azure, "/stats")["arm"]["while_copies_pending"]
    deadline = time.monotonic() + 30
    while target.get_blob_properties().copy.status == "pending":
        assert time.monotonic() < deadline
        time.sleep(0.3)
    client.labs.get("rg-dev", "DevLab")  # after the copy: not counted
    after = control_get(local_azure, "/stats")["arm"]
    assert during == {"Labs_Get": 1}
    assert after["while_copies_pending"] == {"Labs_Get": 1} and after["requests"]["Labs_Get"] == 3
    delete_upload(local_azure, target_uri)
    delete_upload(local_azure, source_uri)
