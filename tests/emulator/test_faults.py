"""Fault rules: validation, matching, firing limits, seeded probability and early-retry accounting."""

from __future__ import annotations

import time
from typing import Any

import pytest

from emulator.faults import FaultRules


def _match(rules: FaultRules, **overrides: Any) -> Any:
    request = {
        "service": "blob",
        "operation": "GetBlob",
        "method": "GET",
        "path": "/alpha/vhds/a.vhd",
        "account": "alpha",
    }
    request.update(overrides)
    return rules.match(**request)


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"kind": "status"}, "service"),
        ({"service": "queue", "kind": "status"}, "service"),
        ({"service": "blob", "kind": "explode"}, "kind"),
        ({"service": "blob", "kind": "status", "status": 200}, "status"),
        ({"service": "blob", "kind": "status", "colour": "red"}, "unknown"),
        ({"service": "blob", "kind": "delay"}, "delay"),
        ({"service": "blob", "kind": "status", "probability": 1.5}, "probability"),
        ({"service": "blob", "kind": "status", "count": -1}, "count"),
        ({"service": "blob", "kind": "status", "after": 1.5}, "after"),
        ({"service": "arm", "kind": "copy_fail"}, "blob"),
        ({"service": "blob", "kind": "status", "operation": ""}, "operation"),
    ],
)
def test_invalid_rules_are_refused(rule: dict[str, Any], message: str) -> None:
    rules = FaultRules()
    with pytest.raises(ValueError, match=message):
        rules.add([{"service": "blob", "kind": "status"}, rule])
    assert rules.snapshot() == []  # all or nothing


def test_defaults_and_ids() -> None:
    rules = FaultRules()
    stored = rules.add([{"service": "blob", "kind": "status"}, {"service": "arm", "kind": "status", "status": 429}])
    assert [rule["id"] for rule in stored] == [1, 2]
    assert stored[0]["status"] == 503
    assert stored[0]["error_code"] == "ServerBusy"
    assert stored[1]["error_code"] == "TooManyRequests"
    assert stored[0]["operation"] == "*"
    assert stored[0]["fired"] == 0


def test_globs_filter_on_every_field() -> None:
    rules = FaultRules()
    rules.add(
        [
            {
                "service": "blob",
                "kind": "status",
                "operation": "Get*",
                "account": "alp*",
                "path": "/alpha/vhds/*.vhd",
                "method": "GET",
            }
        ]
    )
    assert _match(rules, service="arm") is None
    assert _match(rules, operation="PutBlob") is None
    assert _match(rules, account="beta") is None
    assert _match(rules, path="/alpha/vhds/a.json") is None
    assert _match(rules, method="HEAD") is None
    fault = _match(rules)
    assert fault is not None
    assert fault.status == 503
    assert fault.kind == "status"


def test_count_and_after_limit_firing() -> None:
    rules = FaultRules()
    rules.add([{"service": "blob", "kind": "status", "after": 2, "count": 2}])
    fired = [_match(rules) is not None for _ in range(6)]
    assert fired == [False, False, True, True, False, False]
    snapshot = rules.snapshot()[0]
    assert snapshot["matches"] == 6
    assert snapshot["fired"] == 2


def test_first_firing_rule_wins() -> None:
    rules = FaultRules()
    rules.add(
        [
            {"service": "blob", "kind": "delay", "delay": 0.1, "count": 1},
            {"service": "blob", "kind": "status", "status": 500},
        ]
    )
    assert _match(rules).kind == "delay"
    second = _match(rules)
    assert second.kind == "status"
    assert second.error_code == "InternalError"


def test_probability_uses_a_seeded_rng() -> None:
    def draws(seed: int) -> list[bool]:
        rules = FaultRules(seed=seed)
        rules.add([{"service": "blob", "kind": "status", "probability": 0.5}])
        return [_match(rules) is not None for _ in range(200)]

    first = draws(42)
    assert first == draws(42)
    assert 60 < sum(first) < 140
    never = FaultRules()
    never.add([{"service": "blob", "kind": "status", "probability": 0}])
    assert all(_match(never) is None for _ in range(50))


def test_copy_kinds_match_only_copy_blob() -> None:
    rules = FaultRules()
    rules.add([{"service": "blob", "kind": "copy_fail"}])
    assert _match(rules, operation="GetBlob") is None
    assert _match(rules, operation="AbortCopyBlob") is None
    fault = _match(rules, operation="CopyBlob", method="PUT")
    assert fault is not None
    assert fault.kind == "copy_fail"


def test_clear_removes_rules() -> None:
    rules = FaultRules()
    rules.add([{"service": "blob", "kind": "reset"}])
    assert _match(rules) is not None
    rules.clear()
    assert _match(rules) is None
    assert rules.snapshot() == []


def test_early_retries_are_counted_before_retry_after_only() -> None:
    rules = FaultRules()
    request = {"service": "blob", "operation": "GetBlob", "method": "GET", "path": "/a/c/b"}
    assert not rules.check_early_retry(**request)
    rules.record_throttle(**request, retry_after=30)
    assert not rules.check_early_retry(**{**request, "path": "/a/c/other"})
    assert rules.check_early_retry(**request)
    assert rules.early_retries("blob") == 1
    rules.record_throttle(**request, retry_after=0.2)
    time.sleep(0.25)
    assert not rules.check_early_retry(**request)
    assert rules.early_retries() == 1
    assert rules.early_retries("arm") == 0
    rules.record_throttle(**request, retry_after=5)
    rules.reset_early_retries("blob")
    assert rules.early_retries("blob") == 0
    assert not rules.check_early_retry(**request)


def test_artifact_rules_match_artifacts_only() -> None:
    rules = FaultRules()
    rules.add([{"service": "arm", "kind": "artifact_fail", "artifact": "windows-*", "lab": "ImageFactory", "count": 1}])
    where = {"service": "arm", "operation": "ApplyArtifact", "method": "ARTIFACT", "path": "/x"}
    assert rules.match(service="arm", operation="Deployments_Get", method="GET", path="/x") is None
    assert rules.match(**where, artifact="linux-deprovision", lab="imagefactory", vm="v") is None
    assert rules.match(**where, artifact="windows-sysprep", lab="OtherLab", vm="v") is None
    fault = rules.match(**where, artifact="Windows-Sysprep", lab="imagefactory", vm="v")
    assert fault is not None and fault.kind == "artifact_fail"
    assert rules.match(**where, artifact="windows-sysprep", lab="imagefactory", vm="v") is None, "count 1"
    with pytest.raises(ValueError, match="needs 'artifact'"):
        rules.add([{"service": "arm", "kind": "artifact_fail"}])
