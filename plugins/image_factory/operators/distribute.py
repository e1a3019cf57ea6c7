"""Distribute one catalogued image version to one target lab: upload copy, custom image, clean-up."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException

from image_factory.exceptions import (
    AzureRequestError,
    CopyFailedError,
    ForbiddenError,
    ImageCreationError,
    LabNotFoundError,
)
from image_factory.models import Pair
from image_factory.operators import factory_settings, poll_seconds, require_keys
from image_factory.settings import DEFAULT_POLL_SECONDS, MIN_TRIGGER_SECONDS

if TYPE_CHECKING:
    from airflow.sdk import Context

    from image_factory.configuration import FactorySettings
    from image_factory.hooks.devtestlabs import DevTestLabsHook

REQUIRED_PAIR_KEYS = ("lab_name", "subscription_id", "resource_group", "image_name", "image_path", "version")
#: HTTP statuses that no retry will fix.
PERMANENT_STATUSES = frozenset({400, 403, 404})


class DistributeImageOperator(BaseOperator):
    """Make sure one lab has one image version as a custom image, idempotently.

    Image present and Succeeded → done, no write. Present but Failed/Canceled → deleted and recreated. An
    upload copy already running → awaited, never restarted. Otherwise the factory VHD is copied into the lab
    through ``generateUploadUri`` (a read SAS on the factory blob as source), the custom image is created from
    it, and the uploaded VHD is deleted once the image is ``Succeeded``.

    :param pair: a ``Pair`` as a dict (from ``plan``).
    :param poll_interval: seconds between two status reads in the triggers (templated).
    """

    template_fields: Sequence[str] = ("pair", "poll_interval")
    ui_color = "#d8f5d0"

    def __init__(
        self,
        *,
        pair: dict[str, Any],
        poll_interval: float | str = DEFAULT_POLL_SECONDS,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        require_keys(pair, REQUIRED_PAIR_KEYS, "pair", "pass Pair.to_dict()")
        self.pair = pair
        self.poll_interval = poll_interval

    # helpers ------------------------------------------------------------------------------------------------
    def _pair(self) -> Pair:
        return Pair.from_dict(self.pair)

    def _arm(self, settings: FactorySettings) -> DevTestLabsHook:
        from image_factory.hooks.devtestlabs import DevTestLabsHook  # noqa: PLC0415 - light DAG parsing

        return DevTestLabsHook(arm_conn_id=settings.arm_conn_id)

    @staticmethod
    def _upload_blob(pair: Pair) -> str:
        from image_factory import naming  # noqa: PLC0415

        return naming.vhd_blob(pair.image_name)

    def _summary(self, pair: Pair, action: str) -> dict[str, Any]:
        return {"lab": pair.lab_name, "image_name": pair.image_name, "version": pair.version, "action": action}

    def _permanent(self, pair: Pair, exc: AzureRequestError) -> AirflowFailException:
        """Turn an error no retry will fix into a failure of this pair only."""
        return AirflowFailException(f"{pair.label}: {exc}")

    def _guard(self, pair: Pair, exc: Exception) -> Exception:
        if isinstance(exc, (ForbiddenError, LabNotFoundError)):
            return self._permanent(pair, exc)
        if isinstance(exc, AzureRequestError) and exc.status in PERMANENT_STATUSES:
            return self._permanent(pair, exc)
        return exc

    def _poll(self) -> float:
        return poll_seconds(self.poll_interval, DEFAULT_POLL_SECONDS)

    # execution ------------------------------------------------------------------------------------------
    def execute(self, context: Context) -> dict[str, Any]:
        """Check what exists, then copy (or adopt a copy) and defer."""
        pair = self._pair()
        settings = factory_settings()
        try:
            return self._execute(context, pair, settings)
        except AzureRequestError as exc:
            raise self._guard(pair, exc) from exc

    def _execute(self, context: Context, pair: Pair, settings: FactorySettings) -> dict[str, Any]:
        from image_factory.hooks.storage import FactoryStorageHook, sas_copy_state, start_copy_to_sas  # noqa: PLC0415
        from image_factory.redact import mask  # noqa: PLC0415
        from image_factory.states import CopyStatus  # noqa: PLC0415

        arm = self._arm(settings)
        # The plan read every lab's images moments ago: on a first try, trust it for an absent image (one ARM
        # read less per pair). A retry, or an image the plan saw in a bad state, is checked afresh.
        first_try = int(getattr(context.get("ti"), "try_number", 1) or 1) <= 1
        trusted = first_try and pair.existing_state is None
        if not trusted and self._image_is_ready(arm, settings, pair):
            return self._summary(pair, "present")

        blob = self._upload_blob(pair)
        upload_url = arm.generate_upload_uri(pair.subscription_id, pair.resource_group, pair.lab_name, blob)
        mask(upload_url)
        verify = arm.settings.connection_verify
        state = sas_copy_state(upload_url, verify)
        if state.status == CopyStatus.PENDING:
            self.log.info("%s: an upload copy is already running (%s): adopting it", pair.label, state.copy_id)
            self._defer_copy(settings, pair, state.copy_id)
        if state.status == CopyStatus.SUCCESS and state.size:
            self.log.info("%s: the VHD was uploaded by an earlier attempt: creating the image", pair.label)
            self._defer_image(settings, pair)

        if pair.cross_region and not pair.source_lab:
            self.log.warning(
                "%s: lab %s is in %s, the factory elsewhere: this copy is billed as inter-region egress",
                pair.label,
                pair.lab_name,
                pair.location,
            )
        source = self._regional_source(arm, pair, verify) if pair.source_lab else None
        if source is None:
            storage = FactoryStorageHook(wasb_conn_id=settings.storage_conn_id)
            source = storage.read_sas_url(settings.container, pair.vhd_blob, settings.read_sas_hours)
            origin = f"the factory's {pair.vhd_blob}"
        else:
            origin = f"{pair.source_lab}'s upload (same region)"
        copy_id = start_copy_to_sas(upload_url, source, verify)
        self.log.info("%s: started copying from %s (copy %s)", pair.label, origin, copy_id)
        context["ti"].xcom_push(key="copy_id", value=copy_id)
        self._defer_copy(settings, pair, copy_id, check_existing=not trusted)
        raise AssertionError("unreachable: defer() raises TaskDeferred")  # pragma: no cover

    def _image_is_ready(self, arm: DevTestLabsHook, settings: FactorySettings, pair: Pair) -> bool:
        """Read the lab's image: True when it Succeeded; a failed one is deleted, one in progress awaited (defers)."""
        from image_factory.states import FAILED_PROVISIONING, ProvisioningState  # noqa: PLC0415

        image = arm.get_custom_image(pair.subscription_id, pair.resource_group, pair.lab_name, pair.image_name)
        if image is None:
            return False
        if image.provisioning_state == ProvisioningState.SUCCEEDED:
            self.log.info("%s already exists and Succeeded: nothing to do", pair.label)
            return True
        if image.provisioning_state in FAILED_PROVISIONING:
            self.log.warning("%s is %s: deleting it to recreate it", pair.label, image.provisioning_state)
            arm.delete_custom_image(pair.subscription_id, pair.resource_group, pair.lab_name, pair.image_name)
        else:
            self.log.info("%s is %s: waiting for it", pair.label, image.provisioning_state)
            self._defer_image(settings, pair)
        return False

    def _regional_source(self, arm: DevTestLabsHook, pair: Pair, verify: str | bool) -> str | None:
        """Return a read URL of the seed lab's finished upload of this image, or None to copy from the factory."""
        from image_factory.hooks.storage import sas_copy_state  # noqa: PLC0415
        from image_factory.redact import mask  # noqa: PLC0415
        from image_factory.states import CopyStatus  # noqa: PLC0415

        seed_url = arm.generate_upload_uri(
            str(pair.source_subscription_id),
            str(pair.source_resource_group),
            str(pair.source_lab),
            self._upload_blob(pair),
        )
        mask(seed_url)
        state = sas_copy_state(seed_url, verify)
        if state.exists and state.size and state.status in (None, CopyStatus.SUCCESS):
            return seed_url
        self.log.warning(
            "%s: %s holds no finished upload of this image (%s): copying from the factory across regions instead",
            pair.label,
            pair.source_lab,
            state.status or ("absent" if not state.exists else "empty"),
        )
        return None

    def _defer(
        self,
        settings: FactorySettings,
        pair: Pair,
        stage: str,
        copy_id: str | None = None,
        *,
        check_existing: bool = True,
    ) -> None:
        """Hand the rest of the pair to the triggerer; it ends the task itself when the image is ready."""
        from image_factory.triggers.distribution import DistributionTrigger  # noqa: PLC0415

        minutes = (settings.copy_timeout_minutes if stage == "copy" else 0) + settings.image_timeout_minutes
        self.defer(
            trigger=DistributionTrigger(
                pair=pair.to_dict(),
                upload_blob=self._upload_blob(pair),
                arm_conn_id=settings.arm_conn_id,
                deadline=time.time() + minutes * 60,
                stage="copy" if stage == "copy" else "image",
                copy_id=copy_id,
                poll_interval=self._poll(),
                not_before=time.time() + MIN_TRIGGER_SECONDS,
                check_existing=check_existing,
            ),
            method_name="distribution_failed",
        )

    def _defer_copy(
        self, settings: FactorySettings, pair: Pair, copy_id: str | None, *, check_existing: bool = True
    ) -> None:
        self._defer(settings, pair, "copy", copy_id, check_existing=check_existing)

    def _defer_image(self, settings: FactorySettings, pair: Pair) -> None:
        self._defer(settings, pair, "image")

    def distribution_failed(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        """Resume when the triggerer could not finish the pair (fail with its message: Airflow retries), or when it
        finished leaving the upload (return the summary the trigger sent, ``upload_left`` included)."""
        from image_factory.triggers.events import ImageEvent, parse_event  # noqa: PLC0415

        pair = self._pair()
        if isinstance(event, dict) and event.get("status") == "success" and isinstance(event.get("summary"), dict):
            return dict(event["summary"])  # done, with an upload left that verify reports
        if not isinstance(event, dict) or event.get("status") == "success":
            # The trigger ended the task itself (TaskSuccessEvent); only ``dag.test()``, which runs triggers
            # inline, hands that event back to the worker.
            return self._summary(pair, "created")
        failed = parse_event(event)
        if isinstance(failed, ImageEvent):
            raise ImageCreationError(f"{failed.message}: a retry deletes and recreates it")
        raise CopyFailedError(failed.message)

    def on_kill(self) -> None:
        """Do nothing destructive: a running copy is adopted by the retry."""
        self.log.info("Killed; any running copy is left to be adopted by the next attempt")
