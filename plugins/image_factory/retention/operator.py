"""Delete one thing retention or factory clean-up decided to delete (a custom image, a catalogue version, a VM)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException

from image_factory.exceptions import AzureRequestError, ForbiddenError, ImageFactoryError, LabNotFoundError
from image_factory.operators import factory_settings
from image_factory.retention.powershell import still_adoptable

if TYPE_CHECKING:
    from airflow.sdk import Context

    from image_factory.configuration import FactorySettings
    from image_factory.models import LabImage

REQUIRED_KEYS = ("kind", "where", "name")
#: HTTP statuses that no retry will fix.
PERMANENT_STATUSES = frozenset({400, 403, 404})
#: What a deletion ended as (``delete_one``'s answer).
DELETED = "deleted"
ALREADY_GONE = "already gone"
REFUSED = "refused"


def _refusal(item: Mapping[str, Any], image: LabImage, settings: FactorySettings) -> str | None:
    """Say why a re-read custom image must not be deleted (None: delete it)."""
    if not item.get("adopted"):
        return None if image.managed else "no longer carries the factory's marker tag"
    if not settings.adopt_powershell_images:
        return "was made by the PowerShell factory and AdoptPowerShellImages is off now"
    if not still_adoptable(image, str(item.get("image_path") or "")):
        return f"is no longer the PowerShell factory's image of {item.get('image_path')} (its tags or name changed)"
    return None


def delete_one(item: Mapping[str, Any], settings: FactorySettings) -> str:
    """Delete one decided item; return ``deleted``, ``already gone`` or ``refused: …`` (never deletes what the
    factory did not make: a custom image is re-read and must still carry the factory's marker, or, adopted from the
    PowerShell factory, still be its image of the same ImagePath while AdoptPowerShellImages is on)."""
    from image_factory.hooks.devtestlabs import DevTestLabsHook  # noqa: PLC0415 - light DAG parsing
    from image_factory.hooks.storage import FactoryStorageHook  # noqa: PLC0415

    kind = item.get("kind")
    name = str(item["name"])
    if kind == "catalogue_version":
        if item.get("adopted") and not settings.adopt_powershell_images:
            return f"{REFUSED}: {name} was written by the PowerShell factory and AdoptPowerShellImages is off now"
        storage = FactoryStorageHook(wasb_conn_id=settings.storage_conn_id)
        blobs = [str(b) for b in item.get("blobs") or []]
        # Sidecars first: the version leaves the catalogue at once, so no planner can pick a half-deleted one.
        gone = [storage.delete(settings.container, blob) for blob in blobs]
        return DELETED if any(gone) else ALREADY_GONE
    sub, rg, lab = str(item["subscription_id"]), str(item["resource_group"]), str(item["where"])
    arm = DevTestLabsHook(arm_conn_id=settings.arm_conn_id)
    if kind == "custom_image":
        image = arm.get_custom_image(sub, rg, lab, name)
        if image is None:
            return ALREADY_GONE
        refusal = _refusal(item, image, settings)
        if refusal:
            return f"{REFUSED}: {name} in {lab} {refusal}"
        arm.delete_custom_image(sub, rg, lab, name)
        return DELETED
    if kind == "factory_vm":
        return DELETED if arm.delete_vm(sub, rg, lab, name) else ALREADY_GONE
    raise ImageFactoryError(f"unknown deletion kind {kind!r} for {name}")


class RetireOperator(BaseOperator):
    """Delete one decided item, idempotently: already gone is success, a retry repeats the same deletion.

    A custom image is re-read first and only deleted while it still carries the factory's marker tag (an adopted
    PowerShell image: while adoption is on and it is still that factory's image of the same ImagePath).

    :param deletion: one item of ``retire.decide`` (a ``Decision`` as a dict; catalogue versions add ``blobs``).
    """

    template_fields: Sequence[str] = ("deletion",)
    ui_color = "#f5d8d0"

    def __init__(self, *, deletion: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if isinstance(deletion, dict):
            missing = [k for k in REQUIRED_KEYS if k not in deletion]
            if missing:
                raise ValueError(f"deletion lacks {', '.join(missing)}: pass an item of retire.decide")
        self.deletion = deletion

    def execute(self, context: Context) -> dict[str, Any]:
        """Delete the item and return what happened."""
        item = self.deletion
        label = f"{item['kind']} {item['where']} / {item['name']}"
        try:
            outcome = delete_one(item, factory_settings())
        except AzureRequestError as exc:
            if isinstance(exc, (ForbiddenError, LabNotFoundError)) or exc.status in PERMANENT_STATUSES:
                raise AirflowFailException(f"{label}: {exc}") from exc
            raise
        (self.log.warning if outcome.startswith(REFUSED) else self.log.info)("%s: %s", label, outcome)
        return {"kind": item["kind"], "where": item["where"], "name": item["name"], "outcome": outcome}
