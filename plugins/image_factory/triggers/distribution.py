"""Finish one distribution in the triggerer: await the upload copy, create the custom image, await it, clean up.

Each deferral costs a worker start on resume (seconds of Airflow overhead for a copy that may take seconds).
So after the operator has started the copy (or found one running, or found the VHD already uploaded), this
trigger carries the pair to its end and finishes the task itself with ``TaskSuccessEvent``: one worker run per
pair. Every step is idempotent, so a triggerer restart that re-runs the trigger from the top is harmless: a
finished copy is seen as finished, an image that exists is not created again. Failures come back to the worker
as an error event, where Airflow's retries apply (a retry deletes a Failed image and recreates it).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any, Literal

from airflow.triggers.base import BaseTrigger, TaskSuccessEvent, TriggerEvent
from azure.core.exceptions import ResourceNotFoundError

from image_factory.hooks.devtestlabs import DevTestLabsAsyncHook
from image_factory.hooks.storage import CopyState, async_sas_blob_client, copy_state
from image_factory.hooks.uploads import delete_upload_async
from image_factory.redact import redact
from image_factory.states import FAILED_PROVISIONING
from image_factory.triggers import hold_until
from image_factory.triggers.copy_watch import WatchedCopy, watch_copy
from image_factory.triggers.events import CopyEvent, ErrorEvent, FactoryEvent, ImageEvent, trigger_event
from image_factory.triggers.image_wait import WatchedImage, wait_for_image
from image_factory.uploads_left import DELETE_ROLE, UploadLeft, gib

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
        #: The upload this run could not delete (reported in the task's XCom), if any.
        self.upload_left: UploadLeft | None = None

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
        result: dict[str, Any] = {
            "lab": self.pair["lab_name"],
            "image_name": self.pair["image_name"],
            "version": self.pair["version"],
            "action": action,
        }
        if self.upload_left is not None:
            result["upload_left"] = self.upload_left.to_dict()
        return result

    async def _await_copy(self, hook: DevTestLabsAsyncHook, upload_url: str) -> CopyEvent | None:
        """Poll the upload copy until it ends; return its error event, or None on success."""
        copy = WatchedCopy(
            label=self.label,
            blob=self.upload_blob,
            deadline=self.deadline,
            poll_interval=self.poll_interval,
            copy_id=self.copy_id,
        )
        verify = (await hook.async_settings()).connection_verify
        async with async_sas_blob_client(upload_url, verify) as blob:

            async def read() -> CopyState:
                try:
                    return copy_state(await blob.get_blob_properties())
                except ResourceNotFoundError:
                    return copy_state(None)

            fired = await watch_copy(copy, read, self.log)
        return None if fired.status == "success" else fired

    async def _ensure_image(self, hook: DevTestLabsAsyncHook) -> ImageEvent | None:
        """Create the custom image unless it exists, then poll it to Succeeded; return an error event or None."""
        sub, rg, lab = self._where()
        image = WatchedImage(
            label=self.label,
            image_name=str(self.pair["image_name"]),
            deadline=self.deadline,
            poll_interval=self.poll_interval,
        )
        # A first attempt of a pair the plan found absent skips this read; if a triggerer restart makes it PUT
        # over an image it already started, ARM answers 409 and the worker's retry checks and waits instead.
        state = await hook.custom_image_state_async(sub, rg, lab, image.image_name) if self.check_existing else None
        if state is None:
            self.log.info("%s: creating the custom image", self.label)
            state = await hook.create_custom_image_and_wait_async(
                sub,
                rg,
                lab,
                image.image_name,
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
        elif state in FAILED_PROVISIONING:
            # Left by an earlier attempt: the worker's retry deletes it and starts over.
            return ImageEvent(
                status="error",
                label=self.label,
                image_name=image.image_name,
                provisioning_state=state,
                message=f"{self.label}: custom image is {state}",
            )

        async def read_state() -> str | None:
            return await hook.custom_image_state_async(sub, rg, lab, image.image_name)

        fired = await wait_for_image(image, state, read_state, self.log)
        return None if fired.status == "success" else fired

    async def _delete_upload(self, hook: DevTestLabsAsyncHook, upload_url: str) -> None:
        """Delete the uploaded VHD with the connection's Entra token (the upload SAS grants no delete).

        Refused (no *Storage Blob Data Contributor* on the lab's storage account) or failing, the upload stays:
        it only costs storage, the pair is done. It is handed on in the task's XCom for verify's report.
        """
        verify = (await hook.async_settings()).connection_verify
        credential = await hook.credential_async()
        outcome = await delete_upload_async(upload_url, credential, lab=str(self.pair["lab_name"]), verify=verify)
        left = outcome.left
        if left is None:
            return
        self.upload_left = left
        self.log.info(
            "%s: the image is ready but uploads/%s stays (%s, %s: %s)%s",
            self.label,
            self.upload_blob,
            gib(left.size or 0),
            left.reason,
            outcome.detail,
            f"; the '{DELETE_ROLE}' role on storage account {left.account} would let the factory delete it"
            if left.missing_role
            else "",
        )

    async def _finish(self, hook: DevTestLabsAsyncHook) -> FactoryEvent | None:
        """Await the copy (stage ``copy``), ensure the image, delete the upload; return an error event or None."""
        sub, rg, lab = self._where()
        # One upload SAS for the whole trigger: never serialized, never logged.
        upload_url = await hook.generate_upload_uri_async(sub, rg, lab, self.upload_blob)
        failed: FactoryEvent | None = await self._await_copy(hook, upload_url) if self.stage == "copy" else None
        if failed is None:
            failed = await self._ensure_image(hook)
        if failed is not None:
            return failed
        if self.pair.get("keep_upload"):
            self.log.info("%s: keeping uploads/%s for its region's other labs", self.label, self.upload_blob)
        else:
            await self._delete_upload(hook, upload_url)
        return None

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Carry the pair to its end and end the task (``TaskSuccessEvent``), or hand an error event back."""
        try:
            async with DevTestLabsAsyncHook(arm_conn_id=self.arm_conn_id) as hook:
                failed = await self._finish(hook)
            if failed is not None:
                await hold_until(self.not_before)
                yield trigger_event(failed)
                return
            self.log.info("%s: distributed", self.label)
            await hold_until(self.not_before)
            if self.upload_left is not None:
                # Resume the worker to return the summary: ``dag.test()`` drops a TaskSuccessEvent's XComs, and
                # verify must see the upload left in every runner. It costs a worker run only when one is left.
                yield TriggerEvent({"status": "success", "summary": self.summary("created")})  # type: ignore[no-untyped-call]
                return
            yield TaskSuccessEvent(xcoms={"return_value": self.summary("created")})
        except Exception as exc:
            message = f"{self.label}: {type(exc).__name__}: {redact(str(exc))}"
            yield trigger_event(ErrorEvent(label=self.label, message=message))
