"""Names of a build: the factory VM's name (≤ 15 characters, Windows' computer-name limit) and its deployment's.

The original made a VM name from the file's base name (``_``, spaces and dots removed, ``vm`` before an all-digit
name), cut it to 13 characters and, when two files gave the same name, appended three *random* digits — so a retry
never found its own VM. Here the name is the readable stem cut to 9 characters, a hyphen and 5 hex digits of a
hash of (ImagePath, run): deterministic (a retry of the run, or of its task, finds the VM it made), different per
run (a VM left over from an earlier night never blocks tonight's), and made unique within a run by
:func:`unique_vm_names` (a collision of the hash moves on to the next salt).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable

from image_factory import imagepaths

#: Windows' computer-name limit, which DevTest Labs applies to Windows VM names (the original's 15).
MAX_VM_NAME = 15
#: Hex digits of the hash that makes a name unique per (ImagePath, run).
HASH_DIGITS = 5
#: What every VM name made here matches: a letter first, then letters, digits and hyphens.
VM_NAME_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,14}$")
#: Prefix of a build's deployment (the original's ``Deploy-<vm>``).
DEPLOYMENT_PREFIX = "Build-"

_NOT_NAME = re.compile(r"[^A-Za-z0-9]")
_JSON = re.compile(r"\.json$", re.IGNORECASE)


def readable_stem(image_path: str) -> str:
    """Return the template file's base name with only letters and digits, starting with a letter (``vm`` if not)."""
    segments = imagepaths.segments(image_path)
    if not segments:
        raise ValueError(f"ImagePath {image_path!r} is empty: give a path relative to GoldenImages/")
    stem = _NOT_NAME.sub("", _JSON.sub("", segments[-1]))
    if not stem or not stem[0].isalpha():
        stem = f"vm{stem}"
    return stem


def vm_name(image_path: str, run_id: str, salt: int = 0) -> str:
    """Return the build VM's name for ``image_path`` in run ``run_id`` (``salt`` > 0 only after a collision)."""
    seed = f"{imagepaths.key(image_path)}\n{run_id}\n{salt}".encode()
    digest = hashlib.sha256(seed).hexdigest()[:HASH_DIGITS]
    room = MAX_VM_NAME - HASH_DIGITS - 1
    return f"{readable_stem(image_path)[:room]}-{digest}"


def unique_vm_names(image_paths: Iterable[str], run_id: str) -> dict[str, str]:
    """Return a VM name per ImagePath, distinct case-insensitively, the same for the same run and paths."""
    names: dict[str, str] = {}
    used: set[str] = set()
    for path in sorted(set(image_paths), key=imagepaths.key):
        salt = 0
        name = vm_name(path, run_id)
        while name.casefold() in used:
            salt += 1
            name = vm_name(path, run_id, salt)
        used.add(name.casefold())
        names[path] = name
    return names


def deployment_name(vm: str) -> str:
    """Return the name of the deployment that builds VM ``vm`` (unique per run as the VM name is)."""
    return f"{DEPLOYMENT_PREFIX}{vm}"
