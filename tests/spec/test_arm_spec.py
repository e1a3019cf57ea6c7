"""The spec check itself: it accepts Azure's own examples, and each kind of drift makes it fail."""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from tests.spec.arm_spec import ROOT, load_spec
from tests.spec.records import answer_problems, check_lines, check_record

EXAMPLES = sorted(ROOT.glob("specification/**/examples/**/*.json"))
#: Example files whose name is not their operation id.
EXAMPLE_OPERATIONS = {"Disk_BeginGetAccess": "Disks_GrantAccess", "Disk_EndGetAccess": "Disks_RevokeAccess"}
POLL = "https://127.0.0.1:1/subscriptions/s/providers/Microsoft.DevTestLab/locations/westeurope"


def _example(name: str) -> dict[str, Any]:
    path = next(p for p in EXAMPLES if p.stem == name)
    return dict(json.loads(path.read_text(encoding="utf-8")))


def _record(operation: str, status: int, body: Any, **extra: Any) -> dict[str, Any]:
    headers = {"x-ms-request-id": "r", "content-type": "application/json", **extra.pop("headers", {})}
    return {"operation": operation, "status": status, "headers": headers, "body": body, "method": "GET", **extra}


def _image(state: str = "Succeeded") -> dict[str, Any]:
    body = copy.deepcopy(_example("CustomImages_Get")["responses"]["200"]["body"])
    body["properties"]["provisioningState"] = state
    return dict(body)


def test_every_kept_file_is_named_in_the_manifest_with_its_upstream_origin() -> None:
    manifest = json.loads((ROOT / "MANIFEST.json").read_text(encoding="utf-8"))
    named = {entry["local"].removeprefix("azure-rest-api-specs/"): entry for entry in manifest["files"]}
    kept = {str(p.relative_to(ROOT)) for p in ROOT.rglob("*.json") if p.name != "MANIFEST.json"}
    assert kept == set(named)
    for local, entry in named.items():
        assert entry["repo"] == "Azure/azure-rest-api-specs" and len(entry["commit"]) == 40
        assert hashlib.sha256((ROOT / local).read_bytes()).hexdigest() == entry["sha256"], local


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_azures_own_examples_pass(path: Path) -> None:
    spec = load_spec()
    operation = spec.operations[EXAMPLE_OPERATIONS.get(path.stem, path.stem)]
    for status, answer in json.loads(path.read_text(encoding="utf-8"))["responses"].items():
        assert answer_problems(spec, operation, int(status), answer.get("body")) == [], status


def test_a_property_spelt_otherwise_is_drift() -> None:
    body = _image()
    body["properties"]["ProvisioningState"] = body["properties"].pop("provisioningState")
    body["properties"]["vm"]["linuxOsInfo"]["LinuxOsState"] = body["properties"]["vm"]["linuxOsInfo"].pop(
        "linuxOsState"
    )
    problems = check_record(load_spec(), _record("CustomImages_Get", 200, body))
    spelt = "is spelt '{}' in the specification ({})"
    assert problems is not None
    assert set(problems) == {
        "casing: properties/ProvisioningState " + spelt.format("provisioningState", "CustomImageProperties"),
        "casing: properties/vm/linuxOsInfo/LinuxOsState " + spelt.format("linuxOsState", "LinuxOsInfo"),
    }


def test_undocumented_properties_wrong_types_and_enum_values_are_drift() -> None:
    body = {"value": [_image()]}
    body["value"][0]["properties"]["sizeBytes"] = 1
    body["value"][0]["properties"]["vm"]["linuxOsInfo"]["linuxOsState"] = "deprovisioned"
    body["value"][0]["tags"] = {"n": 1}
    problems = check_record(load_spec(), _record("CustomImages_List", 200, body))
    assert problems is not None and len(problems) == 3
    assert any("value/0/properties/vm/linuxOsInfo/linuxOsState: 'deprovisioned' is not one of" in p for p in problems)
    assert any("value/0/tags/n: 1 is not of type 'string'" in p for p in problems)
    assert "undocumented: value[0]/properties/sizeBytes is not a property of CustomImageProperties" in problems


def test_a_status_the_operation_does_not_document_is_drift() -> None:
    spec = load_spec()
    assert check_record(spec, _record("CustomImages_Get", 204, None)) == [
        "status 204 is not an answer of CustomImages_Get (documented: [200])"
    ]
    error = {"error": {"code": "ResourceNotFound", "message": "gone"}}
    assert check_record(spec, _record("CustomImages_Get", 404, error)) == []
    assert check_record(spec, _record("CustomImages_Get", 404, error, headers={"content-type": "text/plain"})) == [
        "headers: a JSON body with Content-Type 'text/plain' (the specification produces JSON)"
    ]
    assert check_record(spec, _record("CustomImages_Get", 404, {"error": "gone"})) != []


def test_a_long_running_operation_must_say_where_to_poll() -> None:
    spec = load_spec()
    headers = {"Location": f"{POLL}/operationResults/1", "Azure-AsyncOperation": f"{POLL}/operations/1"}
    created = _record("CustomImages_CreateOrUpdate", 201, _image("Creating"), headers=headers)
    assert check_record(spec, created) == []
    del created["headers"]["Location"]
    assert check_record(spec, created) == ["lro: no Location header (final-state-via: location)"]
    revoke = _record("Disks_RevokeAccess", 202, None, headers={"Location": "/relative", "Retry-After": "1.5"})
    assert check_record(spec, revoke) == [
        "headers: Retry-After '1.5' is not an integer number of seconds",
        "lro: Location is not an absolute https URL: /relative",
    ]


def test_a_location_url_must_end_as_final_state_via_says() -> None:
    spec = load_spec()

    def final(origin: str, status: int, body: Any = None) -> list[str] | None:
        return check_record(spec, _record("OperationResults_Get", status, body, lro_of=origin))

    assert final("CustomImages_CreateOrUpdate", 200, _image()) == []
    assert final("CustomImages_CreateOrUpdate", 204) == [
        "final: the Location of CustomImages_CreateOrUpdate ends 204; the specification allows [200, 201]"
    ]
    assert final("CustomImages_CreateOrUpdate", 200, _image("Creating")) == [
        "final: the Location of CustomImages_CreateOrUpdate ended with the resource still Creating"
    ]
    assert final("Disks_RevokeAccess", 200) == []
    assert final("Disks_RevokeAccess", 204) == [
        "final: the Location of Disks_RevokeAccess ends 204; the specification allows [200]"
    ]
    assert final("Disks_GrantAccess", 200, {"accessSAS": "https://x/y?sig=***"}) == []
    assert final("Disks_GrantAccess", 200, {"accessSas": "https://x"}) != []
    assert final("CustomImages_Delete", 204) == []
    assert final("CustomImages_Delete", 202) == ["lro: a 202 poll without Retry-After"]
    assert final("Deployments_CreateOrUpdate", 200, {}) is None, "outside the kept specification: not checked"


def test_status_polls_follow_the_arm_async_operation_shape() -> None:
    spec = load_spec()
    path = "/subscriptions/s/providers/Microsoft.DevTestLab/locations/westeurope/operations/1"
    running = {"id": "1", "name": "1", "status": "InProgress", "startTime": "2026-01-01T00:00:00Z"}
    assert check_record(spec, _record("AsyncOperations_Get", 200, running, path=path)) == []
    assert check_record(spec, _record("AsyncOperations_Get", 200, {**running, "status": "succeeded"}, path=path)) == [
        "casing: status 'succeeded' is spelt 'Succeeded' by ARM"
    ]
    compute = path.replace("Microsoft.DevTestLab", "Microsoft.Compute")
    done = {**running, "status": "Succeeded", "properties": {"output": {"accessSAS": "x"}}}
    assert check_record(spec, _record("AsyncOperations_Get", 200, done, path=compute)) == []
    assert check_record(spec, _record("AsyncOperations_Get", 200, {"Status": "Succeeded"}, path=compute)) != []


def test_the_report_counts_checked_uncovered_and_problems() -> None:
    lines = [
        json.dumps(_record("CustomImages_Get", 200, _image())),
        json.dumps(_record("CustomImages_Get", 204, None)),
        json.dumps(_record("CustomImages_Get", 204, None)),
        json.dumps(_record("Disks_Get", 200, {})),
        "",
    ]
    report = check_lines(lines)
    assert report.records == 4 and report.checked["CustomImages_Get"] == 3 and report.uncovered["Disks_Get"] == 1
    assert list(report.problems.values()) == [2]
    assert "×2 CustomImages_Get GET 204: status 204 is not an answer" in "\n".join(report.lines())
