"""DistributeImageOperator: idempotent checks, deferral to the distribution trigger, failures for a retry."""

from __future__ import annotations

from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException, TaskDeferred

from image_factory.exceptions import CopyFailedError, ForbiddenError, ImageCreationError
from image_factory.hooks import storage as storage_mod
from image_factory.hooks.storage import CopyState
from image_factory.models import LabImage
from image_factory.operators import capture, distribute
from image_factory.operators.distribute import DistributeImageOperator
from image_factory.triggers.distribution import DistributionTrigger
from image_factory.triggers.events import CopyEvent, ImageEvent, payload
from tests.unit.operators.fakes import PAIR, SETTINGS, FakeFactoryStorage, FakeTi


class FakeArm:
    def __init__(self, image: LabImage | None = None, error: Exception | None = None) -> None:
        self.image = image
        self.error = error
        self.deleted: list[str] = []
        self.settings = type("S", (), {"connection_verify": True})()

    def get_custom_image(self, *args: str) -> LabImage | None:
        if self.error:
            raise self.error
        return self.image

    def delete_custom_image(self, *args: str) -> None:
        self.deleted.append(args[-1])

    def generate_upload_uri(self, *args: str) -> str:
        if self.error:
            raise self.error
        return f"https://lab/uploads/{args[-1]}?sig=UPLOAD"


@pytest.fixture
def patched(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    record: dict[str, Any] = {"copies": [], "state": CopyState(exists=False)}
    monkeypatch.setattr(distribute, "factory_settings", lambda: SETTINGS)
    monkeypatch.setattr(capture, "factory_settings", lambda: SETTINGS)
    monkeypatch.setattr(storage_mod, "sas_copy_state", lambda url, verify: record["state"])

    def start(dest: str, source: str, verify: Any) -> str:
        record["copies"].append((dest, source))
        return "copy-9"

    monkeypatch.setattr(storage_mod, "start_copy_to_sas", start)
    monkeypatch.setattr(storage_mod, "FactoryStorageHook", lambda wasb_conn_id: FakeFactoryStorage())
    return record


def _distribute(monkeypatch: pytest.MonkeyPatch, arm: FakeArm) -> DistributeImageOperator:
    monkeypatch.setattr(DistributeImageOperator, "_arm", lambda self, settings: arm)
    return DistributeImageOperator(task_id="distribute", pair=dict(PAIR), poll_interval=1)


def test_distribute_present_image_is_noop(monkeypatch: pytest.MonkeyPatch, patched: dict[str, Any]) -> None:
    arm = FakeArm(LabImage(name=PAIR["image_name"], provisioning_state="Succeeded"))
    result = _distribute(monkeypatch, arm).execute({"ti": FakeTi(try_number=2)})  # type: ignore[arg-type]
    assert result["action"] == "present"
    assert patched["copies"] == [] and arm.deleted == []


def test_distribute_starts_copy_and_defers(monkeypatch: pytest.MonkeyPatch, patched: dict[str, Any]) -> None:
    ti = FakeTi()
    with pytest.raises(TaskDeferred) as deferred:
        _distribute(monkeypatch, FakeArm()).execute({"ti": ti})  # type: ignore[arg-type]
    trigger = deferred.value.trigger
    assert isinstance(trigger, DistributionTrigger) and trigger.stage == "copy"
    assert trigger.pair["lab_name"] == "QALab" and trigger.upload_blob == PAIR["vhd_blob"]
    assert deferred.value.method_name == "distribution_failed"
    assert trigger.check_existing is False, "a first try the plan vouches for reads no image before creating it"
    assert "sig=" not in str(trigger.serialize())
    assert patched["copies"][0][1].endswith("?sig=READ")
    assert ti.pushed["copy_id"] == "copy-9"


def test_distribute_adopts_pending_upload(monkeypatch: pytest.MonkeyPatch, patched: dict[str, Any]) -> None:
    patched["state"] = CopyState(exists=True, status="pending", copy_id="running")
    with pytest.raises(TaskDeferred) as deferred:
        _distribute(monkeypatch, FakeArm()).execute({"ti": FakeTi()})  # type: ignore[arg-type]
    assert deferred.value.trigger.copy_id == "running"
    assert patched["copies"] == []


def test_distribute_recreates_failed_image(monkeypatch: pytest.MonkeyPatch, patched: dict[str, Any]) -> None:
    arm = FakeArm(LabImage(name=PAIR["image_name"], provisioning_state="Failed"))
    with pytest.raises(TaskDeferred):
        _distribute(monkeypatch, arm).execute({"ti": FakeTi(try_number=2)})  # type: ignore[arg-type]
    assert arm.deleted == [PAIR["image_name"]]


def test_distribute_first_try_trusts_the_plan_but_checks_an_image_it_saw_failed(
    monkeypatch: pytest.MonkeyPatch, patched: dict[str, Any]
) -> None:
    arm = FakeArm(LabImage(name=PAIR["image_name"], provisioning_state="Failed"))
    with pytest.raises(TaskDeferred):
        _distribute(monkeypatch, arm).execute({"ti": FakeTi()})  # type: ignore[arg-type]
    assert arm.deleted == [], "absent in the plan, first try: no read, no delete"
    pair = {**PAIR, "existing_state": "Failed"}
    monkeypatch.setattr(DistributeImageOperator, "_arm", lambda self, settings: arm)
    op = DistributeImageOperator(task_id="distribute", pair=pair, poll_interval=1)
    with pytest.raises(TaskDeferred):
        op.execute({"ti": FakeTi()})  # type: ignore[arg-type]
    assert arm.deleted == [PAIR["image_name"]]


def test_distribute_uploaded_vhd_goes_straight_to_image_creation(
    monkeypatch: pytest.MonkeyPatch, patched: dict[str, Any]
) -> None:
    patched["state"] = CopyState(exists=True, status="success", copy_id="done", size=1024)
    with pytest.raises(TaskDeferred) as deferred:
        _distribute(monkeypatch, FakeArm()).execute({"ti": FakeTi()})  # type: ignore[arg-type]
    assert isinstance(deferred.value.trigger, DistributionTrigger) and deferred.value.trigger.stage == "image"
    assert patched["copies"] == []


@pytest.mark.parametrize(
    ("event", "error"),
    [
        (payload(CopyEvent(status="error", label="l", message="copy failed: aborted", blob="b.vhd")), CopyFailedError),
        (
            payload(
                ImageEvent(
                    status="error",
                    label="l",
                    message="custom image is Failed",
                    image_name="i",
                    provisioning_state="Failed",
                )
            ),
            ImageCreationError,
        ),
    ],
)
def test_distribute_failure_events_raise_for_a_retry(
    monkeypatch: pytest.MonkeyPatch, patched: dict[str, Any], event: dict[str, Any], error: type[Exception]
) -> None:
    with pytest.raises(error, match=event["message"]):
        _distribute(monkeypatch, FakeArm()).distribution_failed({}, event)  # type: ignore[arg-type]


def test_distribute_forbidden_fails_without_retry(monkeypatch: pytest.MonkeyPatch, patched: dict[str, Any]) -> None:
    arm = FakeArm(error=ForbiddenError("principal p may not write; assign DevTest Labs User", status=403))
    with pytest.raises(AirflowFailException, match="DevTest Labs User"):
        _distribute(monkeypatch, arm).execute({"ti": FakeTi()})  # type: ignore[arg-type]


def test_a_pair_done_with_its_upload_left_returns_the_triggers_summary(
    monkeypatch: pytest.MonkeyPatch, patched: dict[str, Any]
) -> None:
    summary = {"lab": "DevLab", "action": "created", "upload_left": {"lab": "DevLab", "blob": "a.vhd"}}
    operator = _distribute(monkeypatch, FakeArm())
    assert operator.distribution_failed({}, {"status": "success", "summary": summary}) == summary  # type: ignore[arg-type]
    assert "upload_left" not in operator.distribution_failed({}, "success")  # type: ignore[arg-type]
