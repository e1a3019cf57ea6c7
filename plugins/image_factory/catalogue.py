"""The factory catalogue: ``<name>.vhd`` + ``<name>.json`` sidecars in the factory storage container.

Sidecars written here carry the PowerShell factory's fields plus ours (``schemaVersion`` 2), among them
``source``: what the version was captured from (``models.CaptureSource``), which the capture rules compare with
the VM's disk today; a sidecar without it (older ones, the PowerShell factory's) has an unknown source. Sidecars
the PowerShell factory wrote are read as they are: UTF-8 or UTF-16 with a BOM (``Out-File``), ``imagePath`` with
backslashes, ``osType`` in any case, ``timestamp`` as ``(Get-Date).ToUniversalTime().ToString()`` printed it, and
no sysprep flag (the original always created generalized images). Their version is the date in the image
name's ``-MMM-d-yyyy`` suffix, a same-day letter ``A``, ``B``… read as ``.2``, ``.3``… (the name the labs' copies
carry), else the UTC date of the timestamp; they are marked ``by_powershell`` (no ``schemaVersion``).
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from image_factory import imagepaths, naming, versions
from image_factory.exceptions import ImageFactoryError
from image_factory.models import CaptureSource, ImageVersion, OsType

#: ``schemaVersion`` of the sidecars this factory writes (the PowerShell ones have none, i.e. 1).
SCHEMA_VERSION = 2

_OS_TYPES: dict[str, OsType] = {"windows": "Windows", "linux": "Linux"}
_MS_DATE = re.compile(r"^/Date\((-?\d+)([+-]\d{4})?\)/$")
_NAME_DATE = re.compile(r"-([A-Za-z]{3})-(\d{1,2})-(\d{4})([A-Z]?)$")
_MONTHS = {
    m: i
    for i, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), start=1)
}
# Forms ``Get-Date``'s ToString() prints in the cultures a factory is likely to run in (US first).
_CLOCK_FORMATS = (
    "%m/%d/%Y %I:%M:%S %p",
    "%m/%d/%Y %H:%M:%S",
    "%d/%m/%Y %H:%M:%S",
    "%d.%m.%Y %H:%M:%S",
    "%Y-%m-%d %H:%M:%S",
    "%m/%d/%Y",
)


class CatalogueError(ImageFactoryError):
    """A sidecar in the factory catalogue cannot be read: fix or delete the blob named in the message."""


def sidecar_json(image: ImageVersion) -> bytes:
    """Serialize ``image`` as its catalogue sidecar (UTF-8 JSON, original fields first)."""
    doc: dict[str, Any] = {
        "imageName": image.image_name,
        "imagePath": imagepaths.normalize(image.image_path),
        "description": image.description,
        "osType": image.os_type,
        "vhdFileName": image.vhd_blob,
        "timestamp": image.timestamp,
        "version": image.version,
        "generalized": image.sysprep,
        "sizeBytes": image.size_bytes,
        "sourceVm": image.source_vm,
        "footerSha256": image.footer_sha256,
        "schemaVersion": SCHEMA_VERSION,
    }
    if image.source is not None:
        doc["source"] = image.source.to_document()
    if image.run_id:
        doc["runId"] = image.run_id
    return (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def parse_timestamp(text: str) -> datetime | None:
    """Parse a sidecar timestamp (ISO 8601, ``/Date(ms)/`` or a ``Get-Date`` string) as UTC; None if unknown."""
    text = text.strip()
    if not text:
        return None
    ms = _MS_DATE.match(text)
    if ms:
        return datetime.fromtimestamp(int(ms.group(1)) / 1000, tz=UTC)
    moment: datetime | None = None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        for fmt in _CLOCK_FORMATS:
            try:
                moment = datetime.strptime(text, fmt)
                break
            except ValueError:
                continue
    if moment is None:
        return None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def powershell_name(name: str) -> tuple[str, str] | None:
    """Split a PowerShell image name ``<stem>-MMM-d-yyyy[A-Z]`` into (stem, version), None if it is not one.

    The original named a day's first image ``…-Dec-1-2026`` and each same-day rebuild after it with a letter,
    ``A`` for the second, ``B`` for the third: here ``2026-12-01``, ``2026-12-01.2``, ``2026-12-01.3``.
    """
    found = _NAME_DATE.search(name)
    if not found or found.start() == 0:
        return None
    month = _MONTHS.get(found.group(1).lower())
    if month is None:
        return None
    try:
        day = datetime(int(found.group(3)), month, int(found.group(2)), tzinfo=UTC).date().isoformat()
    except ValueError:
        return None
    letter = found.group(4)
    version = f"{day}.{ord(letter) - ord('A') + 2}" if letter else day
    return name[: found.start()], version


def version_from_name(name: str) -> str | None:
    """Return the version of a PowerShell image name's ``-MMM-d-yyyy[A-Z]`` suffix, if it has one."""
    parts = powershell_name(name)
    return parts[1] if parts else None


def _decode(blob_name: str, data: bytes) -> dict[str, Any]:
    if data.startswith(codecs.BOM_UTF8):
        encoding = "utf-8-sig"
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding = "utf-16"
    else:
        encoding = "utf-8"
    try:
        doc = json.loads(data.decode(encoding))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CatalogueError(f"sidecar {blob_name} is not JSON text ({exc}); fix or delete it") from exc
    if not isinstance(doc, dict):
        raise CatalogueError(f"sidecar {blob_name} is not a JSON object; fix or delete it")
    return doc


def _text(doc: dict[str, Any], key: str, blob_name: str, *, required: bool) -> str:
    value = doc.get(key)
    if value is None:
        if required:
            raise CatalogueError(f"sidecar {blob_name} has no {key!r}; fix or delete it")
        return ""
    if not isinstance(value, str):
        raise CatalogueError(f"sidecar {blob_name}: {key!r} must be a string, not {type(value).__name__}")
    return value


def _stem(blob_name: str) -> str:
    base = blob_name.rsplit("/", 1)[-1]
    return base[: -len(".json")] if base.lower().endswith(".json") else base


def _source(doc: dict[str, Any], blob_name: str) -> CaptureSource | None:
    raw = doc.get("source")
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise CatalogueError(f"sidecar {blob_name}: 'source' must be an object; fix or delete it")
    try:
        return CaptureSource.from_document(raw)
    except ValueError as exc:
        raise CatalogueError(f"sidecar {blob_name}: {exc}; fix or delete it") from exc


def parse_sidecar(blob_name: str, data: bytes) -> ImageVersion:
    """Read one sidecar (ours or the PowerShell factory's) into an ImageVersion; CatalogueError for junk."""
    doc = _decode(blob_name, data)
    image_path = imagepaths.normalize(_text(doc, "imagePath", blob_name, required=True))
    if not image_path:
        raise CatalogueError(f"sidecar {blob_name} has an empty 'imagePath'; fix or delete it")
    os_raw = _text(doc, "osType", blob_name, required=True)
    os_type = _OS_TYPES.get(os_raw.strip().lower())
    if os_type is None:
        raise CatalogueError(f"sidecar {blob_name}: osType {os_raw!r} is neither Windows nor Linux")
    name = _text(doc, "imageName", blob_name, required=False) or _stem(blob_name)
    vhd = _text(doc, "vhdFileName", blob_name, required=False) or naming.vhd_blob(_stem(blob_name))
    raw_time = _text(doc, "timestamp", blob_name, required=False)
    moment = parse_timestamp(raw_time)
    timestamp = moment.isoformat() if moment else raw_time

    version = _text(doc, "version", blob_name, required=False)
    if version:
        if not versions.is_version(version):
            raise CatalogueError(
                f"sidecar {blob_name}: version {version!r} is not an ISO date YYYY-MM-DD (or YYYY-MM-DD.N)"
            )
    else:
        # The name's date first: it is what the lab's copy of the image is called, so verify can match it.
        found = version_from_name(name) or (moment.date().isoformat() if moment else None)
        if found is None:
            raise CatalogueError(
                f"sidecar {blob_name}: no version, timestamp {raw_time!r} unreadable and image name "
                f"{name!r} has no -MMM-d-yyyy date; fix or delete it"
            )
        version = found

    generalized = doc.get("generalized", True)
    if not isinstance(generalized, bool):
        raise CatalogueError(f"sidecar {blob_name}: 'generalized' must be true or false")
    size = doc.get("sizeBytes")
    if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 0):
        raise CatalogueError(f"sidecar {blob_name}: 'sizeBytes' must be a non-negative integer")
    return ImageVersion(
        image_name=name,
        image_path=image_path,
        version=version,
        vhd_blob=vhd,
        os_type=os_type,
        sysprep=generalized,
        description=_text(doc, "description", blob_name, required=False),
        timestamp=timestamp,
        size_bytes=size,
        source_vm=_text(doc, "sourceVm", blob_name, required=False) or None,
        footer_sha256=_text(doc, "footerSha256", blob_name, required=False) or None,
        source=_source(doc, blob_name),
        run_id=_text(doc, "runId", blob_name, required=False) or None,
        by_powershell="schemaVersion" not in doc,
    )


def _newest_first(images: Iterable[ImageVersion]) -> list[ImageVersion]:
    return sorted(images, key=lambda i: (versions.sort_key(i.version), i.timestamp, i.image_name), reverse=True)


@dataclass
class Catalogue:
    """The parsed catalogue: usable image versions, every blob of each version, and what is wrong with the rest."""

    #: One image per (ImagePath, version), the newest when several share one (the same version captured twice).
    images: list[ImageVersion] = field(default_factory=list)
    #: Human sentences: sidecars without VHD, VHDs without sidecar, unreadable sidecars.
    problems: list[str] = field(default_factory=list)
    #: Every readable sidecar's image, superseded and VHD-less ones included (their ``sourceVm`` counts as captured).
    all_images: list[ImageVersion] = field(default_factory=list)
    #: (ImagePath key, version) → the blobs of that version in the factory container, sidecars first.
    blobs: dict[tuple[str, str], tuple[str, ...]] = field(default_factory=dict)

    def newest(self, image_path: str) -> ImageVersion | None:
        """Return the newest usable version of ``image_path`` (any spelling), by ``versions.sort_key``, or None."""
        key = imagepaths.key(image_path)
        found = [i for i in self.images if imagepaths.key(i.image_path) == key]
        return max(found, key=lambda i: (versions.sort_key(i.version), i.timestamp), default=None)

    def versions_of(self, image_path: str) -> list[str]:
        """Return every version a sidecar of ``image_path`` names, newest first (VHD-less ones too: taken names)."""
        key = imagepaths.key(image_path)
        return versions.newest_first(
            i.version for i in (*self.images, *self.all_images) if imagepaths.key(i.image_path) == key
        )

    def blobs_of(self, image_path: str, version: str) -> list[str]:
        """Return the sidecar(s) then the VHD(s) of one version (every copy of it, superseded ones included)."""
        return list(self.blobs.get((imagepaths.key(image_path), version), ()))


def _version_blobs(
    readable: Iterable[tuple[str, ImageVersion]], vhd_names: set[str]
) -> dict[tuple[str, str], tuple[str, ...]]:
    """Index each version's sidecars, then the VHDs they name that exist (retention deletes them together)."""
    sidecars: dict[tuple[str, str], list[str]] = {}
    vhds: dict[tuple[str, str], list[str]] = {}
    for blob_name, image in readable:
        ident = (imagepaths.key(image.image_path), image.version)
        sidecars.setdefault(ident, []).append(blob_name)
        if image.vhd_blob in vhd_names and image.vhd_blob not in vhds.get(ident, []):
            vhds.setdefault(ident, []).append(image.vhd_blob)
    return {ident: tuple(sidecars.get(ident, []) + vhds.get(ident, [])) for ident in set(sidecars) | set(vhds)}


def build_catalogue(entries: Iterable[tuple[str, bytes]], vhd_names: set[str]) -> Catalogue:
    """Parse sidecars ``(blob_name, data)`` against the VHD blobs present into a Catalogue (each sidecar once)."""
    problems: list[str] = []
    readable: list[tuple[str, ImageVersion]] = []
    usable: list[ImageVersion] = []
    referenced: set[str] = set()
    for blob_name, data in sorted(entries, key=lambda e: e[0]):
        try:
            image = parse_sidecar(blob_name, data)
        except CatalogueError as exc:
            problems.append(str(exc))
            continue
        readable.append((blob_name, image))
        referenced.add(image.vhd_blob)
        if image.vhd_blob not in vhd_names:
            problems.append(f"sidecar {blob_name} names VHD {image.vhd_blob}, which is not in the container")
            continue
        usable.append(image)
    for vhd in sorted(vhd_names - referenced):
        problems.append(f"VHD {vhd} has no sidecar (.json) describing it")

    chosen: dict[tuple[str, str], ImageVersion] = {}
    for image in _newest_first(usable):
        chosen.setdefault((imagepaths.key(image.image_path), image.version), image)
    return Catalogue(
        images=_newest_first(chosen.values()),
        problems=problems,
        all_images=[image for _blob, image in readable],
        blobs=_version_blobs(readable, vhd_names),
    )
