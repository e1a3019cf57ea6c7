"""Delete one thing retention or factory clean-up decided to delete (a custom image, a catalogue version, a VM)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException

from image_factory.exceptions import AzureRequestError, ForbiddenError, LabNotFoundError
from image_factory.operators import factory_settings

if TYPE_CHECKING:
    from airflow.sdk import Context

REQUIRED_KEYS = ("kind", "where", "name")
#: HTTP statuses that no retry will fix.
PERMANENT_STATUSES = frozenset({400, 403, 404})


class RetireOperator(BaseOperator):
    """Delete one decided item, idempotently: already gone is success, a retry repeats the same deletion.

    A custom image is re-read first and only deleted while it still carries the factory's marker tag.

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
        from image_factory.retire import delete_one  # noqa: PLC0415 - light DAG parsing

        item = self.deletion
        label = f"{item['kind']} {item['where']} / {item['name']}"
        try:
            outcome = delete_one(item, factory_settings())
        except AzureRequestError as exc:
            if isinstance(exc, (ForbiddenError, LabNotFoundError)) or exc.status in PERMANENT_STATUSES:
                raise AirflowFailException(f"{label}: {exc}") from exc
            raise
        (self.log.warning if outcome.startswith("refused") else self.log.info)("%s: %s", label, outcome)
        return {"kind": item["kind"], "where": item["where"], "name": item["name"], "outcome": outcome}
