"""Deterministic names: the run's version, custom image names and the blobs named after them.

An image name reads like the PowerShell factory's (``<folder>_<file>`` without ``.json``, dots → ``_``, spaces →
``-``), followed by the version and a short hash of the ImagePath's case-insensitive identity, so that two
ImagePaths that clean up to the same text (``Win 2016/a.json`` and ``Win-2016/a.json``) never share a name, and a
re-run of the same day produces the same name instead of the original's ``A``, ``B``, ``C`` suffixes.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime

from image_factory import imagepaths

#: What a DevTest Labs custom image name made here always matches.
IMAGE_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,79}$")
#: The longest custom image name produced.
MAX_IMAGE_NAME = 80
#: Length of the ImagePath hash in a name (hex digits of SHA-256 of the path key).
HASH_LENGTH = 8
#: Folder of the uploaded VHD in a target lab's storage (the container ``generateUploadUri`` hands out).
UPLOAD_FOLDER = "uploads"

_VERSION = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_INVALID = re.compile(r"[^A-Za-z0-9_-]")
_JSON_SUFFIX = re.compile(r"\.json$", re.IGNORECASE)


def version_for(logical_date: datetime | None, run_after: datetime) -> str:
    """Return the version of a run: the UTC date of its logical date, or of ``run_after`` when it has none."""
    moment = logical_date if logical_date is not None else run_after
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).date().isoformat()


def is_version(text: str) -> bool:
    """Tell whether ``text`` is a version (a real ISO date ``YYYY-MM-DD``)."""
    if not _VERSION.match(text):
        return False
    try:
        datetime.strptime(text, "%Y-%m-%d")
    except ValueError:
        return False
    return True


def path_hash(image_path: str) -> str:
    """Return the short stable hash of an ImagePath's case-insensitive identity."""
    return hashlib.sha256(imagepaths.key(image_path).encode("utf-8")).hexdigest()[:HASH_LENGTH]


def readable_stem(image_path: str) -> str:
    """Return the original factory's readable name for an ImagePath, cleaned to valid characters."""
    segs = imagepaths.segments(image_path)
    if not segs:
        raise ValueError(f"ImagePath {image_path!r} is empty: give a path relative to GoldenImages/")
    stem = "_".join((*segs[-2:-1], _JSON_SUFFIX.sub("", segs[-1])))
    stem = stem.replace(".", "_").replace(" ", "-")
    stem = _INVALID.sub("-", stem)
    return stem.lstrip("_-")


def image_name(image_path: str, version: str) -> str:
    """Return the custom image name (and catalogue blob stem) of ``image_path`` at ``version``."""
    if not is_version(version):
        raise ValueError(f"version {version!r} is not an ISO date YYYY-MM-DD")
    suffix = f"-{version}-{path_hash(image_path)}"
    room = MAX_IMAGE_NAME - len(suffix)
    stem = readable_stem(image_path)[:room].rstrip("_-") or "image"
    return f"{stem}{suffix}"


def vhd_blob(name: str) -> str:
    """Return the factory catalogue's VHD blob name of an image."""
    return f"{name}.vhd"


def sidecar_blob(name: str) -> str:
    """Return the factory catalogue's JSON sidecar blob name of an image."""
    return f"{name}.json"


def upload_blob(name: str) -> str:
    """Return the blob name of an image's VHD uploaded into a target lab through ``generateUploadUri``."""
    return f"{UPLOAD_FOLDER}/{name}.vhd"
