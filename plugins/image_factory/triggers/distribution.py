"""Finish one distribution in the triggerer: await the upload copy, create the custom image, await it, clean up.

Each deferral costs a worker start on resume (seconds of Airflow overhead for a copy that may take seconds).
So after the operator has started the copy (or found one running, or found the VHD already uploaded), this
trigger carries the pair to its end and finishes the task itself with ``TaskSuccessEvent``: one worker run per
pair. Every step is idempotent, so a triggerer restart that re-runs the trigger from the top is harmless: a
finished copy is seen as finished, an image that exists is not created again. Failures come back to the worker
as an error event, where Airflow's retries apply (a retry deletes a Failed image and recreates it).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any, Literal

from airflow.triggers.base import BaseTrigger, TaskSuccessEvent, TriggerEvent
from azure.core.exceptions import ResourceNotFoundError

from image_factory.hooks.devtestlabs import FAILED_STATES, DevTestLabsAsyncHook
from image_factory.hooks.storage import CopyState, async_sas_blob_client, copy_state
from image_factory.polling import PollSchedule
from image_factory.redact import redact
from image_factory.triggers import event, hold_until
from image_factory.triggers.blob_copy import BlobCopyTrigger
from image_factory.triggers.lro import CustomImageTrigger

Stage = Literal["copy", "image"]
CLASSPATH = "image_factory.triggers.distribution.DistributionTrigger"


class DistributionTrigger(BaseTrigger):
    """Carry one (lab, image) pair from its upload copy (``stage="copy"``) or image creation (``"image"``) to done.

    :param pair: the ``Pair`` as a dict (names only; no secret).
    :param upload_blob: the VHD's name in the lab's ``uploads`` container.
    :param deadline: absolute deadline for the whole rest of the pair, epoch seconds (survives restarts).
    :param poll_interval: the longest wait between two status reads (see ``polling``).
    :param check_existing: read the image before creating it (False only on a first try the plan vouches for).
    """

    def __init__(
        self,
        *,
        pair: dict[str, Any],
        upload_blob: str,
        arm_conn_id: str,
        deadline: float,
        stage: Stage = "copy",
        copy_id: str | None = None,
        poll_interval: float = 15.0,
        not_before: float | None = None,
        check_existing: bool = True,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        if stage not in ("copy", "image"):
            raise ValueError(f"stage must be 'copy' or 'image', not {stage!r}")
        self.pair = dict(pair)
        self.upload_blob = upload_blob
        self.arm_conn_id = arm_conn_id
        self.deadline = float(deadline)
        self.stage: Stage = stage
        self.copy_id = copy_id
        self.poll_interval = float(poll_interval)
        self.not_before = not_before
        self.check_existing = check_existing

    @property
    def label(self) -> str:
        return f"{self.pair['lab_name']} / {self.pair['image_name']}"

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Serialize the trigger's arguments (names and ids only: no key, no SAS)."""
        return (
            CLASSPATH,
            {
                "pair": self.pair,
                "upload_blob": self.upload_blob,
                "arm_conn_id": self.arm_conn_id,
                "deadline": self.deadline,
                "stage": self.stage,
                "copy_id": self.copy_id,
                "poll_interval": self.poll_interval,
                "not_before": self.not_before,
                "check_existing": self.check_existing,
            },
        )

    def _where(self) -> tuple[str, str, str]:
        return str(self.pair["subscription_id"]), str(self.pair["resource_group"]), str(self.pair["lab_name"])

    def summary(self, action: str) -> dict[str, Any]:
        return {
            "lab": self.pair["lab_name"],
            "image_name": self.pair["image_name"],
            "version": self.pair["version"],
            "action": action,
        }

    def _error(self, message: str, **extra: Any) -> TriggerEvent:
        return event({"status": "error", "label": self.label, "message": message, **extra})

    async def _await_copy(self, hook: DevTestLabsAsyncHook, upload_url: str) -> TriggerEvent | None:
        """Poll the upload copy until it ends; return an error event, or None on success."""
        watcher = BlobCopyTrigger(
            target="lab",
            blob=self.upload_blob,
            deadline=self.deadline,
            poll_interval=self.poll_interval,
            label=self.label,
            copy_id=self.copy_id,
            arm_conn_id=self.arm_conn_id,
            subscription_id=self._where()[0],
            resource_group=self._where()[1],
            lab_name=self._where()[2],
        )
        verify = (await hook.async_settings()).connection_verify
        async with async_sas_blob_client(upload_url, verify) as blob:

            async def read() -> CopyState:
                try:
                    return copy_state(await blob.get_blob_properties())
                except ResourceNotFoundError:
                    return copy_state(None)

            fired = await watcher.watch(read)
        return None if fired.payload.get("status") == "success" else fired

    async def _ensure_image(self, hook: DevTestLabsAsyncHook) -> TriggerEvent | None:
        """Create the custom image unless it exists, then poll it to Succeeded; return an error event or None."""
        sub, rg, lab = self._where()
        name = str(self.pair["image_name"])
        # A first attempt of a pair the plan found absent skips this read; if a triggerer restart makes it PUT
        # over an image it already started, ARM answers 409 and the worker's retry checks and waits instead.
        state = await hook.custom_image_state_async(sub, rg, lab, name) if self.check_existing else None
        if state is None:
            self.log.info("%s: creating the custom image", self.label)
            state = await hook.create_custom_image_and_wait_async(
                sub,
                rg,
                lab,
                name,
                vhd_name=self.upload_blob,
                os_type=str(self.pair["os_type"]),
                sysprep=bool(self.pair["sysprep"]),
                image_path=str(self.pair["image_path"]),
                version=str(self.pair["version"]),
                description=str(self.pair.get("description", "")),
                timeout=self.deadline - time.time(),
                polling_interval=self.poll_interval,
            )
            self.log.info("%s: custom image %s", self.label, state)
        elif state in FAILED_STATES:
            # Left by an earlier attempt: the worker's retry deletes it and starts over.
            return self._error(f"{self.label}: custom image is {state}", provisioning_state=state)
        watcher = CustomImageTrigger(
            arm_conn_id=self.arm_conn_id,
            subscription_id=sub,
            resource_group=rg,
            lab_name=lab,
            image_name=name,
            deadline=self.deadline,
            label=self.label,
        )
        schedule = PollSchedule(cap=self.poll_interval)
        while True:
            fired = watcher.event_for(state, time.time())
            if fired is not None:
                return None if fired.payload.get("status") == "success" else fired
            self.log.info("%s: custom image %s", self.label, state)
            delay = schedule.next_delay(time.time())
            await asyncio.sleep(max(0.0, min(delay, self.deadline - time.time())))
            state = await hook.custom_image_state_async(sub, rg, lab, name)

    async def _delete_upload(self, hook: DevTestLabsAsyncHook, upload_url: str) -> None:
        """Delete the uploaded VHD (the image no longer needs it); a failure only costs storage."""
        verify = (await hook.async_settings()).connection_verify
        try:
            async with async_sas_blob_client(upload_url, verify) as blob:
                await blob.delete_blob()
        except ResourceNotFoundError:
            return
        except Exception as exc:
            self.log.warning(
                "%s: the image is ready but uploads/%s could not be deleted (%s); it only costs storage",
                self.label,
                self.upload_blob,
                redact(str(exc))[:300],
            )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Await the copy (stage ``copy``), ensure the image, delete the upload, end the task."""
        try:
            async with DevTestLabsAsyncHook(arm_conn_id=self.arm_conn_id) as hook:
                sub, rg, lab = self._where()
                # One upload SAS for the whole trigger: never serialized, never logged.
                upload_url = await hook.generate_upload_uri_async(sub, rg, lab, self.upload_blob)
                failed = await self._await_copy(hook, upload_url) if self.stage == "copy" else None
                if failed is None:
                    failed = await self._ensure_image(hook)
                if failed is not None:
                    await hold_until(self.not_before)
                    yield failed
                    return
                if self.pair.get("keep_upload"):
                    self.log.info("%s: keeping uploads/%s for its region's other labs", self.label, self.upload_blob)
                else:
                    await self._delete_upload(hook, upload_url)
            self.log.info("%s: distributed", self.label)
            await hold_until(self.not_before)
            yield TaskSuccessEvent(xcoms={"return_value": self.summary("created")})
        except Exception as exc:
            yield self._error(f"{self.label}: {type(exc).__name__}: {redact(str(exc))}")
