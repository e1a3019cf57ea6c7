"""Capture a factory VM's OS disk into the catalogue: ``<image>.vhd`` + ``<image>.json`` sidecar."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from image_factory.capture_rules import CaptureJob
from image_factory.exceptions import CaptureError
from image_factory.operators import factory_settings, poll_seconds, require_keys
from image_factory.settings import DEFAULT_POLL_SECONDS, MIN_TRIGGER_SECONDS

if TYPE_CHECKING:
    from airflow.sdk import Context

    from image_factory.configuration import FactorySettings
    from image_factory.hooks.compute import FactoryComputeHook
    from image_factory.hooks.storage import FactoryStorageHook

REQUIRED_JOB_KEYS = ("vm_name", "image_path", "image_name", "version", "os_type", "sysprep")


class CaptureVmOperator(BaseOperator):
    """Copy a deallocated factory VM's OS disk into the factory catalogue, idempotently.

    A present sidecar means done. A pending copy into ``<image>.vhd`` is adopted. Otherwise a short read SAS is
    granted on the managed disk, a server-side copy started and the task defers to ``CaptureTrigger``; on
    completion the VHD footer is checked and the sidecar written. Disk access is always revoked.

    :param job: a ``CaptureJob`` as a dict (from ``list_factory_vms``).
    :param poll_interval: seconds between two copy status reads (templated).
    """

    template_fields: Sequence[str] = ("job", "poll_interval")
    ui_color = "#cfe8ff"

    def __init__(
        self,
        *,
        job: dict[str, Any],
        poll_interval: float | str = DEFAULT_POLL_SECONDS,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        require_keys(job, REQUIRED_JOB_KEYS, "capture job", "pass CaptureJob.to_dict()")
        self.job = job
        self.poll_interval = poll_interval

    # helpers ------------------------------------------------------------------------------------------------
    def _job(self) -> CaptureJob:
        return CaptureJob.from_dict(self.job)

    def _hooks(self) -> tuple[FactorySettings, FactoryStorageHook, FactoryComputeHook]:
        from image_factory.hooks.compute import FactoryComputeHook  # noqa: PLC0415 - light DAG parsing
        from image_factory.hooks.storage import FactoryStorageHook  # noqa: PLC0415

        settings = factory_settings()
        return (
            settings,
            FactoryStorageHook(wasb_conn_id=settings.storage_conn_id),
            FactoryComputeHook(azure_conn_id=settings.arm_conn_id),
        )

    def _defer_copy(self, settings: FactorySettings, job: CaptureJob, copy_id: str | None) -> None:
        from image_factory import naming  # noqa: PLC0415
        from image_factory.triggers.capture import CaptureTrigger  # noqa: PLC0415

        self.defer(
            trigger=CaptureTrigger(
                container=settings.container,
                blob=naming.vhd_blob(job.image_name),
                storage_conn_id=settings.storage_conn_id,
                deadline=time.time() + settings.copy_timeout_minutes * 60,
                poll_interval=poll_seconds(self.poll_interval, DEFAULT_POLL_SECONDS),
                label=f"capture {job.vm_name} → {job.image_name}",
                copy_id=copy_id,
                not_before=time.time() + MIN_TRIGGER_SECONDS,
            ),
            method_name="capture_complete",
        )

    def _revoke(self, compute: FactoryComputeHook, job: CaptureJob) -> None:
        if not job.os_disk_id:
            return
        try:
            compute.revoke_disk(job.os_disk_id)
        except Exception:
            self.log.exception("Could not revoke access to the disk of %s; revoke it by hand", job.vm_name)

    # execution ------------------------------------------------------------------------------------------
    def execute(self, context: Context) -> dict[str, Any]:
        """Capture the VM, or adopt/skip work already done."""
        from image_factory import naming  # noqa: PLC0415
        from image_factory.states import CopyStatus  # noqa: PLC0415

        job = self._job()
        settings, storage, compute = self._hooks()
        vhd = naming.vhd_blob(job.image_name)
        if storage.check_for_blob(settings.container, naming.sidecar_blob(job.image_name)):
            self.log.info("%s is already catalogued as %s: nothing to do", job.vm_name, job.image_name)
            return {"image_name": job.image_name, "action": "present"}
        state = storage.copy_state(settings.container, vhd)
        if state.status == CopyStatus.PENDING:
            self.log.info("A copy into %s is already running (%s): adopting it", vhd, state.copy_id)
            self._defer_copy(settings, job, state.copy_id)
        if state.status == CopyStatus.SUCCESS:
            self.log.info("%s was copied by an earlier attempt: finishing the capture", vhd)
            return self._finish(settings, storage, compute, job)
        if not job.os_disk_id:
            raise CaptureError(f"{job.vm_name}: the VM reports no OS disk (computeVm.osDiskId); cannot capture")
        sas = compute.grant_disk_read(job.os_disk_id, settings.disk_access_seconds)
        try:
            copy_id = storage.start_copy(settings.container, vhd, sas)
        except BaseException:
            self._revoke(compute, job)
            raise
        self.log.info(
            "Started copying the disk of %s into %s/%s (copy %s)", job.vm_name, settings.container, vhd, copy_id
        )
        context["ti"].xcom_push(key="copy_id", value=copy_id)
        self._defer_copy(settings, job, copy_id)
        raise AssertionError("unreachable: defer() raises TaskDeferred")  # pragma: no cover

    def capture_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        """Resume after the copy: check the VHD, write the sidecar, always revoke disk access."""
        from image_factory.triggers.events import CopyEvent, parse_event  # noqa: PLC0415

        job = self._job()
        settings, storage, compute = self._hooks()
        copied = parse_event(event)
        if not (isinstance(copied, CopyEvent) and copied.status == "success"):
            self._revoke(compute, job)
            raise CaptureError(f"capture of {job.vm_name} failed: {copied.message}")
        return self._finish(settings, storage, compute, job)

    def _finish(
        self, settings: FactorySettings, storage: FactoryStorageHook, compute: FactoryComputeHook, job: CaptureJob
    ) -> dict[str, Any]:
        from image_factory import naming  # noqa: PLC0415
        from image_factory.catalogue import sidecar_json  # noqa: PLC0415
        from image_factory.hooks.storage import footer_digest, is_vhd_footer  # noqa: PLC0415
        from image_factory.models import ImageVersion  # noqa: PLC0415

        vhd = naming.vhd_blob(job.image_name)
        try:
            footer, size = storage.read_footer(settings.container, vhd)
            if not is_vhd_footer(footer):
                raise CaptureError(
                    f"{job.vm_name}: {settings.container}/{vhd} ({size} bytes) does not end with a VHD footer "
                    "('conectix'): the disk is not a fixed VHD; check the VM's OS disk"
                )
            image = ImageVersion(
                image_name=job.image_name,
                image_path=job.image_path,
                version=job.version,
                vhd_blob=vhd,
                os_type=job.os_type,
                sysprep=job.sysprep,
                description=f"{job.image_path} captured from {job.vm_name}",
                timestamp=datetime.now(UTC).isoformat(timespec="seconds"),
                size_bytes=size,
                source_vm=job.vm_name,
                footer_sha256=footer_digest(footer),
            )
            storage.write_json(settings.container, naming.sidecar_blob(job.image_name), sidecar_json(image))
        finally:
            self._revoke(compute, job)
        self.log.info("Catalogued %s (%s bytes) from %s", job.image_name, size, job.vm_name)
        return {"image_name": job.image_name, "action": "captured", "size_bytes": size}

    def on_kill(self) -> None:
        """Revoke disk access when the task is killed (the copy itself is adopted by a retry)."""
        try:
            job = self._job()
            _, _, compute = self._hooks()
            self._revoke(compute, job)
        except Exception:
            self.log.exception("on_kill: could not revoke disk access")
