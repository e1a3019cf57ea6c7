"""Deterministic names: custom image names and the blobs named after them (versions live in ``versions``).

An image name reads like the PowerShell factory's (``<folder>_<file>`` without ``.json``, dots → ``_``, spaces →
``-``), followed by the version and a short hash of the ImagePath's case-insensitive identity, so that two
ImagePaths that clean up to the same text (``Win 2016/a.json`` and ``Win-2016/a.json``) never share a name, and a
version of an ImagePath always produces the same name. A same-day rebuild is a new version (``2026-12-01.2``,
spelled ``2026-12-01-2`` in names, see ``versions.in_name``) where the original appended ``A``, ``B``, ``C``.
"""

from __future__ import annotations

import hashlib
import re

from image_factory import imagepaths, versions

#: What a DevTest Labs custom image name made here always matches.
IMAGE_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,79}$")
#: The longest custom image name produced.
MAX_IMAGE_NAME = 80
#: Length of the ImagePath hash in a name (hex digits of SHA-256 of the path key).
HASH_LENGTH = 8
#: Folder of the uploaded VHD in a target lab's storage (the container ``generateUploadUri`` hands out).
UPLOAD_FOLDER = "uploads"

_INVALID = re.compile(r"[^A-Za-z0-9_-]")
_JSON_SUFFIX = re.compile(r"\.json$", re.IGNORECASE)


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
    if not versions.is_version(version):
        raise ValueError(
            f"version {version!r} is not a version: an ISO date YYYY-MM-DD, or YYYY-MM-DD.N for a same-day rebuild"
        )
    suffix = f"-{versions.in_name(version)}-{path_hash(image_path)}"
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
