"""CaptureVmOperator: idempotent checks, deferral to the capture trigger, disk access always revoked."""

from __future__ import annotations

import pytest
from airflow.sdk.exceptions import TaskDeferred

from image_factory.exceptions import CaptureError
from image_factory.hooks.storage import CopyState
from image_factory.operators.capture import CaptureVmOperator
from image_factory.triggers.capture import CaptureTrigger
from image_factory.triggers.events import CopyEvent, ErrorEvent, payload
from tests.unit.operators.fakes import JOB, SETTINGS, FakeCompute, FakeFactoryStorage, FakeTi

COPIED = payload(
    CopyEvent(status="success", label="capture", message="copy succeeded", blob=JOB["image_name"] + ".vhd")
)


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
    assert isinstance(trigger, CaptureTrigger)
    assert trigger.container == SETTINGS.container and trigger.blob == JOB["image_name"] + ".vhd"
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
    result = op.capture_complete({}, COPIED)  # type: ignore[arg-type]
    assert result["action"] == "captured"
    assert JOB["image_name"] + ".json" in store.written
    assert b'"footerSha256"' in store.written[JOB["image_name"] + ".json"]
    assert compute.revoked == [JOB["os_disk_id"]]


def test_capture_complete_rejects_non_vhd_and_still_revokes(monkeypatch: pytest.MonkeyPatch) -> None:
    store, compute = FakeFactoryStorage(footer=b"x" * 512), FakeCompute()
    with pytest.raises(CaptureError, match="conectix"):
        _capture(monkeypatch, store, compute).capture_complete({}, COPIED)  # type: ignore[arg-type]
    assert store.written == {}
    assert compute.revoked == [JOB["os_disk_id"]]


def test_capture_error_event_revokes(monkeypatch: pytest.MonkeyPatch) -> None:
    store, compute = FakeFactoryStorage(), FakeCompute()
    with pytest.raises(CaptureError, match="boom"):
        _capture(monkeypatch, store, compute).capture_complete({}, payload(ErrorEvent(label="capture", message="boom")))  # type: ignore[arg-type]
    assert compute.revoked == [JOB["os_disk_id"]]
