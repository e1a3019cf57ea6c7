"""Many image creations at once from one process (as the triggerer makes them) against ARM's write bucket.

Shrunk to test size: ARM's write bucket holds 10 tokens refilled 2/s (Azure's: 200, 10/s), the factory's pacer
allows 1.8 writes/s with a burst of 8 (its defaults: 8/s, 100). Sent at once, 40 PUTs empty the bucket and the
SDK's retries (after each 429's Retry-After) are not enough; paced, they all go through without a single 429.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.mgmt.devtestlabs.aio import DevTestLabsClient

from image_factory.hooks.arm_pacing import AsyncArmPacingPolicy
from image_factory.hooks.credentials import arm_settings
from image_factory.hooks.lab_resources import custom_image_body
from image_factory.pacing import ArmBudget, Pacers
from tests.integration.conftest import REPO, WORLD, LocalAzure, running_local_azure

pytestmark = [pytest.mark.emulator]

PUTS = 40
LIMITS = {"writes": {"capacity": 10, "refill": 2}}
BUDGET = ArmBudget(writes_per_second=1.8, burst=8)


@pytest.fixture(scope="module")
def azure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalAzure]:
    with running_local_azure(REPO / WORLD, Path(tmp_path_factory.mktemp("burst-azure"))) as local:
        yield local


class Conn:
    """The ARM connection as the async hooks read it (``get_async_connection``)."""

    def __init__(self, env: dict[str, str]) -> None:
        doc = json.loads(env["AIRFLOW_CONN_IMAGE_FACTORY_ARM"])
        self.login, self.password, self.extra_dejson = doc["login"], doc["password"], doc["extra"]


async def _burst(azure: LocalAzure, pacers: Pacers | None) -> int:
    """Send PUTS custom image creations at once into DevLab with the hooks' client options (retry policy, and the
    pacing policy on ``pacers`` or none); return how many failed."""
    settings = arm_settings(Conn(azure.connection_env()))
    credential = settings.async_credential()
    kwargs = settings.async_client_kwargs()
    kwargs["per_retry_policies"] = [AsyncArmPacingPolicy(pacers)] if pacers else []
    client = DevTestLabsClient(credential, settings.subscription_id or "", api_version="2018-09-15", **kwargs)

    async def one(i: int) -> bool:
        body = custom_image_body(
            vhd_name=f"burst{i}.vhd", os_type="Windows", sysprep=True, image_path="Win2016/Burst.json", version="v"
        )
        try:
            await client.custom_images.begin_create_or_update("rg-dev", "DevLab", f"burst-{i}", body, polling=False)
        except Exception:  # a PUT refused after the retries
            return False
        return True

    try:
        done = await asyncio.gather(*(one(i) for i in range(PUTS)))
    finally:
        await client.close()
        await credential.close()
    return done.count(False)


def _throttled(azure: LocalAzure) -> dict[str, Any]:
    return dict(azure.stats()["arm"]["throttling"])


def test_paced_writes_never_empty_the_bucket_unpaced_ones_do(azure: LocalAzure) -> None:
    azure.configure(throttling=True, throttle_limits=LIMITS)
    azure.reset_stats()
    failed = asyncio.run(_burst(azure, Pacers(BUDGET)))
    paced = _throttled(azure)
    assert failed == 0 and paced["refused"] == {}, "paced below the refill, no write is refused"

    azure.configure(throttling=True, throttle_limits=LIMITS)  # a full bucket again
    azure.reset_stats()
    asyncio.run(_burst(azure, None))
    unpaced = _throttled(azure)
    assert unpaced["refused"].get("writes", 0) > 0, "sent at once, the writes empty ARM's bucket"
    azure.configure(throttling=False, throttle_limits=None)
