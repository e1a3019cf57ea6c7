"""Operators: idempotent checks, deferral to the right trigger, disk access always revoked."""

from __future__ import annotations

from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException, TaskDeferred

from image_factory.configuration import FactorySettings
from image_factory.exceptions import CaptureError, CopyFailedError, ForbiddenError, ImageCreationError
from image_factory.hooks import storage as storage_mod
from image_factory.hooks.storage import CopyState
from image_factory.models import LabImage
from image_factory.operators import capture, distribute
from image_factory.operators.capture import CaptureVmOperator
from image_factory.operators.distribute import DistributeImageOperator
from image_factory.triggers.blob_copy import BlobCopyTrigger
from image_factory.triggers.distribution import DistributionTrigger

SETTINGS = FactorySettings(subscription_id="sub", resource_group="rg", lab_name="ImageFactory")
JOB = {
    "vm_name": "vm-ubuntu",
    "image_path": "Ubuntu/Ubuntu2204.json",
    "image_name": "Ubuntu_Ubuntu2204-2025-03-01-1234abcd",
    "version": "2025-03-01",
    "os_type": "Linux",
    "sysprep": True,
    "os_disk_id": "/subscriptions/sub/resourceGroups/rg/providers/Microsoft.Compute/disks/d1",
}
PAIR = {
    "lab_name": "QALab",
    "subscription_id": "sub2",
    "resource_group": "rg-qa",
    "location": "northeurope",
    "image_name": "Ubuntu_Ubuntu2204-2025-03-01-1234abcd",
    "image_path": "Ubuntu/Ubuntu2204.json",
    "version": "2025-03-01",
    "vhd_blob": "Ubuntu_Ubuntu2204-2025-03-01-1234abcd.vhd",
    "os_type": "Linux",
    "sysprep": True,
    "cross_region": True,
}


class FakeTi:
    def __init__(self, try_number: int = 1) -> None:
        self.pushed: dict[str, Any] = {}
        self.try_number = try_number

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value


class FakeFactoryStorage:
    def __init__(self, *, sidecar: bool = False, state: CopyState | None = None, footer: bytes = b"") -> None:
        self.sidecar = sidecar
        self.state = state or CopyState(exists=False)
        self.footer = footer
        self.copies: list[tuple[str, str]] = []
        self.written: dict[str, bytes] = {}

    def blob_exists(self, container: str, blob: str) -> bool:
        return self.sidecar

    def copy_state(self, container: str, blob: str) -> CopyState:
        return self.state

    def start_copy(self, container: str, blob: str, source: str) -> str:
        self.copies.append((blob, source))
        return "copy-1"

    def read_footer(self, container: str, blob: str) -> tuple[bytes, int]:
        return self.footer, 4096 + len(self.footer)

    def write_bytes(self, container: str, blob: str, data: bytes) -> None:
        self.written[blob] = data

    def read_sas_url(self, container: str, blob: str, hours: int) -> str:
        return f"https://store/{container}/{blob}?sig=READ"


class FakeCompute:
    def __init__(self) -> None:
        self.granted: list[str] = []
        self.revoked: list[str] = []

    def grant_disk_read(self, disk_id: str, seconds: int) -> str:
        self.granted.append(disk_id)
        return "https://disk?sig=DISK"

    def revoke_disk(self, disk_id: str) -> None:
        self.revoked.append(disk_id)


def _capture(monkeypatch: pytest.MonkeyPatch, store: FakeFactoryStorage, compute: FakeCompute) -> CaptureVmOperator:
    op = CaptureVmOperator(task_id="capture_vm", job=dict(JOB), poll_interval="2")
    monkeypatch.setattr(CaptureVmOperator, "_hooks", lambda self: (SETTINGS, store, compute))
    return op


def test_capture_validates_job() -> None:
    with pytest.raises(ValueError, match="image_name"):
        CaptureVmOperator(task_id="c", job={"vm_name": "x"})


def test_capture_is_done_when_sidecar_exists(monkeypatch: pytest.MonkeyPatch) -> None:
    store, compute = FakeFactoryStorage(sidecar=True), FakeCompute()
    result = _capture(monkeypatch, store, compute).execute({"ti": FakeTi()})  # type: ignore[arg-type]
    assert result["action"] == "present"
    assert store.copies == [] and compute.granted == []


def test_capture_starts_copy_and_defers(monkeypatch: pytest.MonkeyPatch) -> None:
    store, compute, ti = FakeFactoryStorage(), FakeCompute(), FakeTi()
    with pytest.raises(TaskDeferred) as deferred:
        _capture(monkeypatch, store, compute).execute({"ti": ti})  # type: ignore[arg-type]
    trigger = deferred.value.trigger
    assert isinstance(trigger, BlobCopyTrigger)
    assert trigger.target == "factory" and trigger.blob == JOB["image_name"] + ".vhd"
    assert trigger.poll_interval == 2.0 and trigger.copy_id == "copy-1"
    assert deferred.value.method_name == "capture_complete"
    assert ti.pushed["copy_id"] == "copy-1"
    assert compute.granted == [JOB["os_disk_id"]] and compute.revoked == []


def test_capture_adopts_pending_copy(monkeypatch: pytest.MonkeyPatch) -> None:
    store = FakeFactoryStorage(state=CopyState(exists=True, status="pending", copy_id="old"))
    compute = FakeCompute()
    with pytest.raises(TaskDeferred) as deferred:
        _capture(monkeypatch, store, compute).execute({"ti": FakeTi()})  # type: ignore[arg-type]
    assert deferred.value.trigger.copy_id == "old"
    assert store.copies == [] and compute.granted == []


def test_capture_complete_writes_sidecar_and_revokes(monkeypatch: pytest.MonkeyPatch) -> None:
    store, compute = FakeFactoryStorage(footer=b"conectix" + b"\0" * 504), FakeCompute()
    op = _capture(monkeypatch, store, compute)
    result = op.capture_complete({}, {"status": "success"})  # type: ignore[arg-type]
    assert result["action"] == "captured"
    assert JOB["image_name"] + ".json" in store.written
    assert b'"footerSha256"' in store.written[JOB["image_name"] + ".json"]
    assert compute.revoked == [JOB["os_disk_id"]]


def test_capture_complete_rejects_non_vhd_and_still_revokes(monkeypatch: pytest.MonkeyPatch) -> None:
    store, compute = FakeFactoryStorage(footer=b"x" * 512), FakeCompute()
    with pytest.raises(CaptureError, match="conectix"):
        _capture(monkeypatch, store, compute).capture_complete({}, {"status": "success"})  # type: ignore[arg-type]
    assert store.written == {}
    assert compute.revoked == [JOB["os_disk_id"]]


def test_capture_error_event_revokes(monkeypatch: pytest.MonkeyPatch) -> None:
    store, compute = FakeFactoryStorage(), FakeCompute()
    with pytest.raises(CaptureError, match="boom"):
        _capture(monkeypatch, store, compute).capture_complete({}, {"status": "error", "message": "boom"})  # type: ignore[arg-type]
    assert compute.revoked == [JOB["os_disk_id"]]


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
        ({"status": "error", "message": "copy failed: aborted"}, CopyFailedError),
        ({"status": "error", "message": "custom image is Failed", "provisioning_state": "Failed"}, ImageCreationError),
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
