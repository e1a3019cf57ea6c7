"""The states Azure reports that the factory compares: an ARM resource's ``provisioningState``, a blob copy's status.

One home for these strings, so a comparison never spells ``"Succeeded"`` or ``"pending"`` itself. Both enums are
``StrEnum``: a member equals the string Azure sends, so ``state == ProvisioningState.SUCCEEDED`` works on the raw
value an SDK model carries; values the factory never compares (``Updating``, ``Deleting``…) stay plain strings.
"""

from __future__ import annotations

from enum import StrEnum


class ProvisioningState(StrEnum):
    """An ARM resource's ``provisioningState`` (custom images, lab VMs)."""

    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    CANCELED = "Canceled"
    CREATING = "Creating"
    UNKNOWN = "Unknown"

    def matches(self, value: str | None) -> bool:
        """Tell whether ``value`` is this state in any casing (ARM's casing is not guaranteed everywhere)."""
        return value is not None and value.strip().casefold() == self.value.casefold()


#: Provisioning ends that no waiting will turn into Succeeded: a retry deletes and recreates the resource.
FAILED_PROVISIONING = frozenset({ProvisioningState.FAILED, ProvisioningState.CANCELED})


class CopyStatus(StrEnum):
    """A blob copy's status (``x-ms-copy-status``)."""

    PENDING = "pending"
    SUCCESS = "success"
    FAILED = "failed"
    ABORTED = "aborted"


#: Copy ends other than success.
FAILED_COPY = frozenset({CopyStatus.FAILED, CopyStatus.ABORTED})
