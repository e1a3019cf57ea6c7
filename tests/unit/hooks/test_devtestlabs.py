"""DevTest Labs async hook: how a custom image's creation ends is read from Azure, never assumed."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from image_factory.hooks.devtestlabs import DevTestLabsAsyncHook
from image_factory.states import ProvisioningState

CONNECTION = {
    "conn_type": "azure",
    "login": "cid",
    "password": "s3cret",
    "extra": {"tenantId": "t", "subscriptionId": "sub", "arm_endpoint": "https://127.0.0.1:9"},
}
IMAGE = {"vhd_name": "u.vhd", "os_type": "Linux", "sysprep": False, "image_path": "U/u.json", "version": "1.0.0"}


class FakePoller:
    def __init__(self, outcome: Any) -> None:
        self.outcome = outcome

    async def result(self) -> Any:
        if isinstance(self.outcome, Exception):
            raise self.outcome
        return self.outcome


class FakeCustomImages:
    """``custom_images`` of the async SDK client: the LRO's final result, then what a read of the image says."""

    def __init__(self, final: Any, read: Any) -> None:
        self.final = final
        self.read = read
        self.gets = 0

    async def begin_create_or_update(self, *args: Any, **kwargs: Any) -> FakePoller:
        return FakePoller(self.final)

    async def get(self, *args: Any) -> Any:
        self.gets += 1
        if isinstance(self.read, Exception):
            raise self.read
        return SimpleNamespace(provisioning_state=self.read)


async def _create(monkeypatch: pytest.MonkeyPatch, final: Any, read: Any = None) -> tuple[str, FakeCustomImages]:
    monkeypatch.setenv("AIRFLOW_CONN_IMAGE_FACTORY_ARM", json.dumps(CONNECTION))
    hook = DevTestLabsAsyncHook()
    images = FakeCustomImages(final, read)

    async def client(subscription_id: str) -> Any:
        return SimpleNamespace(custom_images=images)

    monkeypatch.setattr(hook, "async_client", client)
    state = await hook.create_custom_image_and_wait_async("sub", "rg", "Lab", "img", timeout=5, **IMAGE)
    return state, images


async def test_the_final_answers_state_is_the_result(monkeypatch: pytest.MonkeyPatch) -> None:
    state, images = await _create(monkeypatch, SimpleNamespace(provisioning_state="Succeeded"))
    assert state == ProvisioningState.SUCCEEDED and images.gets == 0


@pytest.mark.parametrize("final", [None, SimpleNamespace(provisioning_state=None)], ids=["no body", "no state"])
async def test_a_final_answer_without_the_image_is_not_taken_for_success(
    monkeypatch: pytest.MonkeyPatch, final: Any
) -> None:
    state, images = await _create(monkeypatch, final, read="Failed")
    assert state == ProvisioningState.FAILED and images.gets == 1


async def test_an_image_gone_after_its_operation_reads_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    state, _ = await _create(monkeypatch, None, read=ResourceNotFoundError("gone"))
    assert state == ProvisioningState.UNKNOWN


async def test_an_operation_that_fails_is_failed(monkeypatch: pytest.MonkeyPatch) -> None:
    state, images = await _create(monkeypatch, HttpResponseError("InvalidVhd"))
    assert state == ProvisioningState.FAILED and images.gets == 0
