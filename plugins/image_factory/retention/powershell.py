"""What the PowerShell factory made, recognised: its custom images, its catalogue versions, the VMs it captured.

The original tagged a custom image with ``ImagePath`` only (no ``ImageFactory.ManagedBy``) and named it
``<folder>_<file>-MMM-d-yyyy`` (``.json`` dropped, dots → ``_``, spaces → ``-``), appending ``A``, ``B``… for a
same-day rebuild; its sidecars have no ``schemaVersion`` and no ``sourceVm``. An image counts as the PowerShell
factory's only when all of it holds: the tag, no marker, a name of that pattern whose stem is the one the original
gives the tagged ImagePath. Anything else without the factory's marker is someone else's (``unknown``).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC
from typing import Literal

from image_factory import imagepaths
from image_factory.catalogue import powershell_name
from image_factory.models import LabImage

MadeBy = Literal["factory", "powershell", "unknown"]

#: What the image list prints in its "made by" column.
MADE_BY_LABEL: dict[MadeBy, str] = {
    "factory": "this factory",
    "powershell": "PowerShell factory",
    "unknown": "unknown",
}
KEEP_NOT_ADOPTED = "made by the PowerShell factory, kept (AdoptPowerShellImages is off)"
KEEP_UNKNOWN_PATH = "made by the PowerShell factory, kept: its ImagePath {path} is no golden image this factory knows"
KEEP_NOT_KEEP_N = "made by the PowerShell factory, kept: adoption deletes only beyond keep-N (would go: {reason})"
ADOPTED = "adopted from the PowerShell factory: "
NOTE_UNTAGGED = (
    "{where}: custom image {name} has a PowerShell factory name but no ImagePath tag: ignored, never deleted"
)


def original_stem(image_path: str) -> str:
    """Return the name the PowerShell factory gave ``image_path``'s images, before their date (its GetImageName)."""
    segs = imagepaths.segments(image_path)
    name = "_".join(segs[-2:])
    return name.replace(".json", "").replace(".", "_").replace(" ", "-")


def _is_original_name(name: str, image_path: str) -> bool:
    parts = powershell_name(name)
    return parts is not None and parts[0].casefold() == original_stem(image_path).casefold()


def made_by(image: LabImage) -> MadeBy:
    """Tell who made a custom image: this factory (its marker), the PowerShell factory, or someone else."""
    if image.managed:
        return "factory"
    if image.managed_by is None and image.image_path and _is_original_name(image.name, image.image_path):
        return "powershell"
    return "unknown"


def version_of(image: LabImage) -> str | None:
    """Return a PowerShell image's version: the date in its name (``A`` → ``.2``…), else its creation day."""
    parts = powershell_name(image.name)
    if parts is not None:
        return parts[1]
    if image.created is None:
        return None
    moment = image.created if image.created.tzinfo else image.created.replace(tzinfo=UTC)
    return moment.astimezone(UTC).date().isoformat()


def still_adoptable(image: LabImage, image_path: str) -> bool:
    """Tell whether a custom image re-read before its deletion is still the PowerShell image of ``image_path``."""
    tagged = image.image_path or ""
    return made_by(image) == "powershell" and imagepaths.key(tagged) == imagepaths.key(image_path)


def untagged_notes(images: Iterable[LabImage], where: str) -> list[str]:
    """Warn about images named like the PowerShell factory's but without an ImagePath tag (as the original did)."""
    return [
        NOTE_UNTAGGED.format(where=where, name=i.name)
        for i in images
        if not i.image_path and i.managed_by is None and powershell_name(i.name) is not None
    ]
