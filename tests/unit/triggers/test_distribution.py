"""DistributionTrigger: one trigger carries a pair from its copy to a Succeeded image and ends the task itself."""

from __future__ import annotations

import json
import time
from types import SimpleNamespace
from typing import Any

import pytest
from airflow.triggers.base import TaskSuccessEvent

from image_factory.hooks.storage import CopyState
from image_factory.hooks.uploads import DeleteOutcome
from image_factory.triggers import distribution
from image_factory.triggers.distribution import DistributionTrigger
from image_factory.uploads_left import UploadLeft

PAIR = {
    "lab_name": "QALab",
    "subscription_id": "sub2",
    "resource_group": "rg-qa",
    "location": "northeurope",
    "image_name": "Ubuntu_Ubuntu2204-2026-11-26-1234abcd",
    "image_path": "Ubuntu/Ubuntu2204.json",
    "version": "2026-11-26",
    "vhd_blob": "Ubuntu_Ubuntu2204-2026-11-26-1234abcd.vhd",
    "os_type": "Linux",
    "sysprep": True,
    "description": "Ubuntu",
    "cross_region": True,
}
UPLOAD_URL = "https://lab/uploads/x.vhd?sv=1&sig=UPLOADSECRET"


class FakeArm:
    def __init__(self, image_states: list[str | None], create_state: str = "Creating") -> None:
        self.image_states = image_states
        self.create_state = create_state
        self.created: list[dict[str, Any]] = []
        self.upload_uris = 0

    async def __aenter__(self) -> FakeArm:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def async_settings(self) -> Any:
        return SimpleNamespace(connection_verify=True)

    async def credential_async(self) -> Any:
        return "the connection's credential"

    async def generate_upload_uri_async(self, *args: str) -> str:
        self.upload_uris += 1
        return UPLOAD_URL

    async def custom_image_state_async(self, *args: str) -> str | None:
        return self.image_states.pop(0)

    async def create_custom_image_and_wait_async(self, *args: str, **kwargs: Any) -> str:
        kwargs.pop("timeout")
        kwargs.pop("polling_interval")
        self.created.append(kwargs)
        return self.create_state


class FakeBlob:
    def __init__(self, states: list[CopyState]) -> None:
        self.states = states
        self.deleted = False
        #: What deleting the upload with the connection's token does.
        self.delete_outcome = DeleteOutcome("deleted")
        self.deletes: list[tuple[str, Any, str]] = []

    async def __aenter__(self) -> FakeBlob:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def get_blob_properties(self) -> CopyState:
        return self.states.pop(0)

    async def delete_blob(self) -> None:
        self.deleted = True


@pytest.fixture
def fakes(monkeypatch: pytest.MonkeyPatch) -> Any:
    def install(arm: FakeArm, blob: FakeBlob) -> None:
        monkeypatch.setattr(distribution, "DevTestLabsAsyncHook", lambda arm_conn_id: arm)
        monkeypatch.setattr(distribution, "async_sas_blob_client", lambda url, verify: blob)
        monkeypatch.setattr(distribution, "copy_state", lambda props: props or CopyState(exists=False))

        async def delete_upload(url: str, credential: Any, *, lab: str, verify: Any) -> DeleteOutcome:
            blob.deletes.append((url, credential, lab))
            blob.deleted = blob.delete_outcome.status == "deleted"
            return blob.delete_outcome

        monkeypatch.setattr(distribution, "delete_upload_async", delete_upload)

    return install


def trigger(stage: str = "copy", **overrides: Any) -> DistributionTrigger:
    kwargs: dict[str, Any] = {
        "pair": dict(PAIR),
        "upload_blob": PAIR["vhd_blob"],
        "arm_conn_id": "image_factory_arm",
        "deadline": time.time() + 60,
        "stage": stage,
        "copy_id": "c1",
        "poll_interval": 0.01,
    }
    kwargs.update(overrides)
    return DistributionTrigger(**kwargs)


def test_round_trips_without_secrets() -> None:
    classpath, kwargs = trigger().serialize()
    assert classpath == "image_factory.triggers.distribution.DistributionTrigger"
    assert DistributionTrigger(**kwargs).serialize() == (classpath, kwargs)
    text = json.dumps(kwargs)
    assert "sig=" not in text and "AccountKey" not in text


async def test_copy_then_image_then_cleanup_ends_the_task(fakes: Any) -> None:
    arm = FakeArm([None], create_state="Succeeded")
    blob = FakeBlob(
        [
            CopyState(exists=True, status="pending", copy_id="c1", progress="10/100"),
            CopyState(exists=True, status="success", copy_id="c1", progress="100/100", size=100),
        ]
    )
    fakes(arm, blob)
    events = [e async for e in trigger().run()]
    assert len(events) == 1 and isinstance(events[0], TaskSuccessEvent)
    assert events[0].xcoms == {
        "return_value": {"lab": "QALab", "image_name": PAIR["image_name"], "version": "2026-11-26", "action": "created"}
    }
    assert arm.created == [
        {
            "vhd_name": PAIR["vhd_blob"],
            "os_type": "Linux",
            "sysprep": True,
            "image_path": "Ubuntu/Ubuntu2204.json",
            "version": "2026-11-26",
            "description": "Ubuntu",
        }
    ]
    assert blob.deleted and arm.upload_uris == 1


async def test_failed_copy_comes_back_to_the_worker_and_creates_nothing(fakes: Any) -> None:
    arm = FakeArm([])
    blob = FakeBlob([CopyState(exists=True, status="aborted", copy_id="c1", description="half-way")])
    fakes(arm, blob)
    events = [e async for e in trigger().run()]
    assert events[0].payload["status"] == "error" and "aborted" in events[0].payload["message"]
    assert arm.created == [] and not blob.deleted


async def test_another_copy_replacing_ours_is_an_error(fakes: Any) -> None:
    fakes(FakeArm([]), FakeBlob([CopyState(exists=True, status="pending", copy_id="someone-else")]))
    events = [e async for e in trigger().run()]
    assert events[0].payload["status"] == "error" and "replaced" in events[0].payload["message"]


async def test_image_stage_with_a_failed_image_asks_the_worker_to_recreate_it(fakes: Any) -> None:
    arm = FakeArm(["Failed"])
    fakes(arm, FakeBlob([]))
    events = [e async for e in trigger("image").run()]
    assert events[0].payload["provisioning_state"] == "Failed"
    assert arm.created == []


async def test_existing_creating_image_is_awaited_not_created_again(fakes: Any) -> None:
    arm = FakeArm(["Creating", "Succeeded"])
    blob = FakeBlob([])
    fakes(arm, blob)
    events = [e async for e in trigger("image").run()]
    assert isinstance(events[0], TaskSuccessEvent) and arm.created == [] and blob.deleted


async def test_errors_never_carry_the_upload_sas(fakes: Any) -> None:
    class Exploding(FakeArm):
        async def create_custom_image_and_wait_async(self, *args: str, **kwargs: Any) -> str:
            raise RuntimeError(f"PUT failed for {UPLOAD_URL}")

    fakes(Exploding([None]), FakeBlob([]))
    events = [e async for e in trigger("image").run()]
    assert events[0].payload["status"] == "error"
    assert "UPLOADSECRET" not in events[0].payload["message"]


async def test_deadline_passed_while_creating_is_an_error(fakes: Any) -> None:
    fakes(FakeArm(["Creating"]), FakeBlob([]))
    events = [e async for e in trigger("image", deadline=time.time() - 1).run()]
    assert events[0].payload.get("timeout") is True


async def test_event_is_held_until_not_before(fakes: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A trigger that finishes at once still waits out ``not_before`` (Airflow's fast-trigger race)."""
    from image_factory import triggers

    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)

    monkeypatch.setattr(triggers.asyncio, "sleep", fake_sleep)
    fakes(FakeArm(["Succeeded"]), FakeBlob([]))
    events = [e async for e in trigger("image", not_before=time.time() + 30).run()]
    assert isinstance(events[0], TaskSuccessEvent)
    assert slept and 29 < slept[-1] <= 30


async def test_an_image_operation_ending_failed_comes_back_for_a_retry(fakes: Any) -> None:
    arm = FakeArm([None], create_state="Failed")
    blob = FakeBlob([])
    fakes(arm, blob)
    events = [e async for e in trigger("image").run()]
    assert events[0].payload["status"] == "error" and events[0].payload["provisioning_state"] == "Failed"
    assert not blob.deleted, "the upload stays for the retry to recreate the image from"


async def test_first_try_skips_the_image_read_before_creating(fakes: Any) -> None:
    arm = FakeArm([], create_state="Succeeded")  # any image read would pop from an empty list and fail
    fakes(arm, FakeBlob([CopyState(exists=True, status="success", copy_id="c1", size=1)]))
    events = [e async for e in trigger(check_existing=False).run()]
    assert isinstance(events[0], TaskSuccessEvent) and len(arm.created) == 1


class FlakyBlob(FakeBlob):
    """Fails the first ``failures`` status reads with ``error``."""

    def __init__(self, states: list[CopyState], failures: int, error: Exception) -> None:
        super().__init__(states)
        self.failures = failures
        self.error = error

    async def get_blob_properties(self) -> CopyState:
        if self.failures:
            self.failures -= 1
            raise self.error
        return await super().get_blob_properties()


async def test_transient_status_read_failures_are_ridden_out(fakes: Any) -> None:
    from azure.core.exceptions import ServiceResponseError

    blob = FlakyBlob([CopyState(exists=True, status="success", copy_id="c1", size=1)], 3, ServiceResponseError("reset"))
    fakes(FakeArm([], create_state="Succeeded"), blob)
    events = [e async for e in trigger(check_existing=False).run()]
    assert isinstance(events[0], TaskSuccessEvent) and blob.failures == 0


async def test_a_refused_status_read_is_not_retried(fakes: Any) -> None:
    from azure.core.exceptions import HttpResponseError

    refused = HttpResponseError("AuthorizationPermissionMismatch")
    refused.status_code = 403
    blob = FlakyBlob([], 1, refused)
    fakes(FakeArm([]), blob)
    events = [e async for e in trigger().run()]
    assert events[0].payload["status"] == "error" and "HttpResponseError" in events[0].payload["message"]


def _throttled(status: int, headers: dict[str, str]) -> Exception:
    from types import SimpleNamespace

    from azure.core.exceptions import HttpResponseError

    error = HttpResponseError("throttled")
    error.status_code = status
    error.response = SimpleNamespace(headers=headers)  # type: ignore[assignment]
    return error


async def test_a_throttled_status_read_waits_its_retry_after(fakes: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)

    from image_factory.triggers import copy_watch

    monkeypatch.setattr(copy_watch.asyncio, "sleep", fake_sleep)
    blob = FlakyBlob(
        [CopyState(exists=True, status="success", copy_id="c1", size=1)], 1, _throttled(503, {"Retry-After": "20"})
    )
    fakes(FakeArm([], create_state="Succeeded"), blob)
    events = [e async for e in trigger(check_existing=False).run()]
    assert isinstance(events[0], TaskSuccessEvent) and blob.failures == 0
    assert slept and max(slept) >= 20, f"the read after a 503 with Retry-After 20 came after {slept}"


async def test_the_upload_is_deleted_with_the_connection_token_not_the_sas(fakes: Any) -> None:
    arm = FakeArm([None], create_state="Succeeded")
    blob = FakeBlob([CopyState(exists=True, status="success", copy_id="c1", progress="1/1", size=1)])
    fakes(arm, blob)
    events = [e async for e in trigger().run()]
    assert isinstance(events[0], TaskSuccessEvent)
    assert blob.deletes == [(UPLOAD_URL, "the connection's credential", "QALab")]
    assert "upload_left" not in events[0].xcoms["return_value"]


async def test_an_upload_the_principal_may_not_delete_stays_and_the_pair_is_done(fakes: Any) -> None:
    arm = FakeArm([None], create_state="Succeeded")
    blob = FakeBlob([CopyState(exists=True, status="success", copy_id="c1", progress="1/1", size=1)])
    left = UploadLeft(
        lab="QALab",
        account="qalabstore",
        blob=PAIR["vhd_blob"],
        size=3 * 2**30,
        reason="AuthorizationPermissionMismatch",
    )
    blob.delete_outcome = DeleteOutcome("left", left, detail="This request is not authorized")
    fakes(arm, blob)
    events = [e async for e in trigger().run()]
    assert len(events) == 1 and not isinstance(events[0], TaskSuccessEvent), "the worker returns the summary"
    assert events[0].payload["status"] == "success"
    result = events[0].payload["summary"]
    assert result["action"] == "created"
    assert result["upload_left"] == left.to_dict()
    assert "sig=" not in json.dumps(result)
    assert not blob.deleted
