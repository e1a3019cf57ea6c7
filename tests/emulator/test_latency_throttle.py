"""Latency and ARM's token-bucket throttling: the pure parts, then as the unmodified SDK meets them."""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Iterator
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError

from emulator.arm.errors import ArmError
from emulator.arm.throttle import Throttle, kind_of
from emulator.latency import Distribution, Latencies, LatencyError, parse_distribution, parse_option
from tests.emulator.conftest import control_get, control_post, dtl_client

OFF = {"arm_latency": None, "storage_latency": None, "throttling": False, "throttle_limits": None}


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# -- pure ------------------------------------------------------------------------------------------------------------
def test_distribution_has_its_median_and_tail() -> None:
    dist = Distribution(100.0, 400.0)
    rng = random.Random(1)
    samples = sorted(dist.sample(rng) for _ in range(20000))
    assert statistics.median(samples) == pytest.approx(0.100, rel=0.05)
    assert samples[int(len(samples) * 0.99)] == pytest.approx(0.400, rel=0.1)


def test_a_bare_number_is_a_fixed_delay_and_zero_is_off() -> None:
    assert parse_distribution(20) == Distribution(20.0)
    assert Distribution(20.0).sample(random.Random(0)) == 0.02
    assert parse_distribution(0) is None and parse_distribution(None) is None
    assert parse_option("100/400") == Distribution(100.0, 400.0)
    with pytest.raises(LatencyError):
        parse_distribution({"median_ms": 100, "p99_ms": 50})
    with pytest.raises(LatencyError):
        parse_distribution({"mean": 3})
    with pytest.raises(LatencyError):
        parse_option("fast")


def test_latencies_are_seeded_per_service() -> None:
    one, two = Latencies(Distribution(100, 300), seed=5), Latencies(Distribution(100, 300), seed=5)
    assert [one.delay("arm") for _ in range(5)] == [two.delay("arm") for _ in range(5)]
    assert one.delay("storage") == 0.0


def test_methods_map_to_arm_kinds() -> None:
    assert [kind_of(m) for m in ("GET", "HEAD", "PUT", "PATCH", "POST", "DELETE")] == [
        "reads",
        "reads",
        "writes",
        "writes",
        "writes",
        "deletes",
    ]


def test_bucket_empties_refuses_with_retry_after_and_refills() -> None:
    clock = FakeClock()
    throttle = Throttle(enabled=True, clock=clock)
    for left in range(199, -1, -1):
        assert throttle.admit("sub", "factory", "PUT") == {"x-ms-ratelimit-remaining-subscription-writes": str(left)}
    with pytest.raises(ArmError) as refused:
        throttle.admit("sub", "factory", "PUT")
    assert refused.value.status == 429 and refused.value.code == "TooManyRequests"
    assert refused.value.headers["Retry-After"] == "1"
    assert refused.value.headers["x-ms-ratelimit-remaining-subscription-writes"] == "0"
    assert throttle.admit("sub", "other-principal", "PUT"), "another principal has its own bucket"
    assert throttle.admit("sub", "factory", "DELETE"), "deletes have their own bucket"
    assert throttle.admit("other-sub", "factory", "PUT"), "another subscription has its own bucket"
    clock.now += 0.5
    assert throttle.admit("sub", "factory", "PUT")["x-ms-ratelimit-remaining-subscription-writes"] == "4"
    assert throttle.stats()["refused"] == {"writes": 1}
    assert throttle.stats()["peak_per_second"]["writes"] == 204, "every write of the second, refused or not"
    clock.now += 59
    throttle.admit("sub", "factory", "PUT")
    clock.now += 2
    throttle.admit("sub", "factory", "PUT")
    assert throttle.stats()["peak_per_minute"]["writes"] == 205, "the first 60 s hold 205 writes, the last one not"


def test_reads_refill_25_per_second() -> None:
    clock = FakeClock()
    throttle = Throttle(enabled=True, clock=clock)
    for _ in range(250):
        throttle.admit("sub", "p", "GET")
    with pytest.raises(ArmError):
        throttle.admit("sub", "p", "GET")
    clock.now += 2.0
    for _ in range(50):
        throttle.admit("sub", "p", "GET")
    with pytest.raises(ArmError):
        throttle.admit("sub", "p", "GET")


def test_disabled_throttle_counts_but_never_refuses() -> None:
    throttle = Throttle(enabled=False, clock=FakeClock())
    for _ in range(300):
        headers = throttle.admit("sub", "p", "GET")
    assert headers == {"x-ms-ratelimit-remaining-subscription-reads": "0"}
    assert throttle.stats()["refused"] == {}


def test_bad_throttle_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        Throttle().configure({"throttling": "yes"})
    with pytest.raises(ValueError):
        Throttle().configure({"throttle_limits": {"reads": {"capacity": 0, "refill": 1}}})
    with pytest.raises(ValueError):
        Throttle().configure({"throttle_limits": {"lists": {"capacity": 1, "refill": 1}}})


# -- through the local Azure -----------------------------------------------------------------------------------------
@pytest.fixture
def slow(local_azure: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The session's local Azure; latency and throttling turned off again afterwards."""
    yield local_azure
    assert control_post(local_azure, "/config", OFF).status_code == 200


@pytest.mark.emulator
def test_config_sets_and_refuses_latency_and_throttling(slow: dict[str, Any]) -> None:
    answer = control_post(slow, "/config", {"arm_latency": {"median_ms": 100, "p99_ms": 400}, "throttling": True})
    assert answer.status_code == 200
    assert answer.json()["arm_latency"] == {"median_ms": 100.0, "p99_ms": 400.0}
    assert answer.json()["throttling"] is True
    assert answer.json()["throttle_limits"]["reads"] == {"capacity": 250.0, "refill": 25.0}
    assert control_post(slow, "/config", {"storage_latency": {"median_ms": -1}}).status_code == 400
    assert control_post(slow, "/config", {"throttling": "on", "lro_seconds": 3}).status_code == 400
    assert control_post(slow, "/config", {}).json()["lro_seconds"] == 1, "a refused body changes nothing"


@pytest.mark.emulator
def test_arm_and_storage_answer_as_slowly_as_configured(slow: dict[str, Any]) -> None:
    control_post(slow, "/config", {"arm_latency": 150, "storage_latency": 60})
    control_post(slow, "/reset-stats", {})
    client = dtl_client(slow)
    client.labs.get("rg-dev", "DevLab")
    started = time.monotonic()
    client.labs.get("rg-dev", "DevLab")
    assert time.monotonic() - started >= 0.15
    from azure.storage.blob import BlobServiceClient

    account = next(iter(slow["storage"].values()))
    blob = BlobServiceClient(
        account["blob_endpoint"],
        credential={"account_name": next(iter(slow["storage"])), "account_key": account["account_key"]},
        connection_verify=slow["ca_bundle"],
    )
    with blob:
        started = time.monotonic()
        list(blob.list_containers())
        assert time.monotonic() - started >= 0.06
    latency = control_get(slow, "/stats")["arm"]["latency"]
    assert latency["arm"]["delayed"] >= 2 and latency["storage"]["delayed"] >= 1


@pytest.mark.emulator
def test_an_empty_bucket_answers_429_with_retry_after_and_headers(slow: dict[str, Any]) -> None:
    limits = {"reads": {"capacity": 2, "refill": 0.01}}
    control_post(slow, "/config", {"throttling": True, "throttle_limits": limits})
    control_post(slow, "/reset-stats", {})
    client = dtl_client(slow, retry_total=0)
    client.labs.get("rg-dev", "DevLab")
    client.labs.get("rg-dev", "DevLab")
    with pytest.raises(HttpResponseError) as caught:
        client.labs.get("rg-dev", "DevLab")
    assert caught.value.status_code == 429
    assert caught.value.error is not None and caught.value.error.code == "TooManyRequests"
    assert caught.value.response is not None
    headers = caught.value.response.headers
    assert int(headers["Retry-After"]) >= 60
    assert headers["x-ms-ratelimit-remaining-subscription-reads"] == "0"
    arm = control_get(slow, "/stats")["arm"]
    assert arm["throttled"] == 1 and arm["throttling"]["refused"] == {"reads": 1}


@pytest.mark.emulator
def test_the_sdk_waits_what_retry_after_says(slow: dict[str, Any]) -> None:
    limits = {"reads": {"capacity": 1, "refill": 0.5}}
    control_post(slow, "/config", {"throttling": True, "throttle_limits": limits})
    control_post(slow, "/reset-stats", {})
    client = dtl_client(slow)
    client.labs.get("rg-dev", "DevLab")
    started = time.monotonic()
    assert client.labs.get("rg-dev", "DevLab").name == "DevLab"
    waited = time.monotonic() - started
    refused = control_get(slow, "/stats")["arm"]["throttling"]["refused"].get("reads", 0)
    assert refused >= 1, "the second read found the bucket empty"
    assert waited >= 1.0, "the SDK waited for Retry-After (≥ 1 s) instead of retrying at once"
