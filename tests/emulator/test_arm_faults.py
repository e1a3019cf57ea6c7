"""Injected ARM faults (throttling, resets) as the SDK sees them, ARM headers, and the control API."""

from __future__ import annotations

from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError

from tests.emulator.conftest import control_get, control_post, dtl_client

pytestmark = pytest.mark.emulator


def test_throttled_request_is_retried_after_retry_after(faults: dict[str, Any]) -> None:
    rule = {"service": "arm", "kind": "status", "status": 429, "operation": "Labs_Get", "retry_after": 1, "count": 1}
    assert control_post(faults, "/faults", [rule]).status_code == 200
    control_post(faults, "/reset-stats", {})
    lab = dtl_client(faults).labs.get("rg-dev", "DevLab")
    assert lab.name == "DevLab"
    arm = control_get(faults, "/stats")["arm"]
    assert arm["requests"]["Labs_Get"] == 2
    assert arm["throttled"] == 1
    assert arm["early_retries"] == 0, "the SDK honours Retry-After"


def test_throttling_surfaces_when_retries_are_off(faults: dict[str, Any]) -> None:
    rule = {"service": "arm", "kind": "status", "status": 429, "operation": "VirtualMachines_List", "retry_after": 7}
    control_post(faults, "/faults", [rule])
    client = dtl_client(faults, retry_total=0)
    with pytest.raises(HttpResponseError) as caught:
        list(client.virtual_machines.list("rg-imagefactory", "ImageFactory"))
    assert caught.value.status_code == 429
    assert caught.value.response is not None
    assert caught.value.response.headers["Retry-After"] == "7"
    assert caught.value.error is not None and caught.value.error.code == "TooManyRequests"
    assert dtl_client(faults, retry_total=0).labs.get("rg-dev", "DevLab").name == "DevLab", "other operations pass"


def test_connection_reset_is_retried(faults: dict[str, Any]) -> None:
    control_post(faults, "/faults", [{"service": "arm", "kind": "reset", "operation": "Labs_Get", "count": 1}])
    assert dtl_client(faults).labs.get("rg-test", "TestLab").name == "TestLab"
    rules = control_get(faults, "/faults")["rules"]
    assert rules[0]["fired"] == 1


def test_invalid_fault_rule_is_400(faults: dict[str, Any]) -> None:
    response = control_post(faults, "/faults", [{"service": "arm", "kind": "explode"}])
    assert response.status_code == 400


def test_arm_headers_on_every_response(local_azure: dict[str, Any]) -> None:
    control_post(local_azure, "/config", {"throttling": False})  # refills the buckets the header reports on
    client = dtl_client(local_azure)
    response = client.labs.get("rg-dev", "DevLab", cls=lambda pipeline, body, headers: pipeline.http_response)
    assert response.headers["x-ms-request-id"]
    assert response.headers["x-ms-correlation-request-id"]
    assert int(response.headers["x-ms-ratelimit-remaining-subscription-reads"]) > 0


def test_config_rejects_unknown_settings(settings: dict[str, Any]) -> None:
    assert control_post(settings, "/config", {"nonsense": 1}).status_code == 400
    answer = control_post(settings, "/config", {"lro_seconds": 0.5})
    assert answer.status_code == 200 and answer.json()["lro_seconds"] == 0.5


def test_state_describes_labs_vms_and_blobs(local_azure: dict[str, Any]) -> None:
    state = control_get(local_azure, "/state")
    labs = {lab["name"]: lab for lab in state["labs"]}
    assert set(labs) == {"ImageFactory", "DevLab", "TestLab", "QALab"}
    assert len(labs["ImageFactory"]["vms"]) == 7
    disks = state["blobs"]["diskstore"]["disks"]
    assert len(disks) == 7 and all(d["blob_type"] == "PageBlob" for d in disks)
    assert "granted_now" in state["disk_access"]
