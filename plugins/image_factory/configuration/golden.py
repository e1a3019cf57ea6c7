"""GoldenImages/: the ARM templates of the golden image VMs, and which of them the labs' ImagePaths select."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from image_factory import imagepaths
from image_factory.configuration.findings import Collector, Finding, format_location
from image_factory.configuration.reader import find_entry, read_json
from image_factory.configuration.scanner import JsonPath
from image_factory.configuration.schema import json_type
from image_factory.models import LabRef

GOLDEN_IMAGES_DIR = "GoldenImages"
#: Azure Resource Manager refuses templates larger than 4 MB; so do we.
MAX_TEMPLATE_BYTES = 4 * 1024 * 1024
DTL_VM_TYPE = "microsoft.devtestlab/labs/virtualmachines"
ARM_TEMPLATE_SCHEMA_MARK = "deploymenttemplate.json"
_SECURE_TYPES = ("securestring", "secureobject")


def golden_images_dir(config_dir: str | os.PathLike[str]) -> Path:
    """Return the GoldenImages folder of a configuration folder (found case-insensitively)."""
    base = Path(config_dir)
    return find_entry(base, GOLDEN_IMAGES_DIR) or base / GOLDEN_IMAGES_DIR


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def _walk_golden(root: Path) -> Iterator[tuple[str, Path, bool]]:
    """Yield (ImagePath, file, inside) for every ``*.json`` below ``root``, following links (no cycles)."""
    real_root = root.resolve()

    def walk(folder: Path, rel: tuple[str, ...], ancestors: frozenset[Path]) -> Iterator[tuple[str, Path, bool]]:
        real = folder.resolve()
        if real in ancestors:
            return  # a link back to a folder being walked
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            return
        for entry in entries:
            path = Path(entry.path)
            inside = _inside(path.resolve(), real_root)
            if entry.is_dir():
                if inside:
                    yield from walk(path, (*rel, entry.name), ancestors | {real})
                else:
                    yield "/".join((*rel, entry.name)), path, False
            elif entry.name.casefold().endswith(".json"):
                yield "/".join((*rel, entry.name)), path, inside

    if root.is_dir():
        yield from walk(root, (), frozenset())


def _sorted_paths(paths: set[str] | list[str]) -> list[str]:
    return sorted(paths, key=lambda p: (p.casefold(), p))


def golden_images(config_dir: str | os.PathLike[str]) -> list[str]:
    """Return the normalized ImagePaths of all golden image files, sorted (links leading outside left out)."""
    root = golden_images_dir(config_dir)
    return _sorted_paths({rel for rel, path, inside in _walk_golden(root) if inside and path.is_file()})


def _check_vm_resources(col: Collector, resources: list[Any]) -> None:
    """Check that the template deploys exactly one DevTest Labs VM, from a gallery or a custom image."""
    vms = [
        i for i, r in enumerate(resources) if isinstance(r, dict) and str(r.get("type", "")).casefold() == DTL_VM_TYPE
    ]
    if not vms:
        col.add(
            ("resources",),
            "has no 'Microsoft.DevTestLab/labs/virtualmachines' resource (the golden image VM)",
        )
    elif len(vms) > 1:
        col.add(("resources", vms[1]), "deploys more than one DevTest Labs VM; a golden image is exactly one VM")
    for index in vms:
        props = resources[index].get("properties")
        if not isinstance(props, dict) or not (
            isinstance(props.get("galleryImageReference"), dict) or props.get("customImageId")
        ):
            col.add(("resources", index), "the VM has neither properties.galleryImageReference nor customImageId")


def _check_secure_parameters(col: Collector, params: Any) -> None:
    """Refuse a default value on a secure parameter (no secrets in the repository)."""
    if not isinstance(params, dict):
        return
    for name, spec in params.items():
        secure = isinstance(spec, dict) and str(spec.get("type", "")).casefold() in _SECURE_TYPES
        if secure and spec.get("defaultValue") not in (None, ""):
            col.add(
                ("parameters", name, "defaultValue"),
                "a secure parameter must not have a default value (no secrets in the repository)",
            )


def _check_template(col: Collector) -> None:
    """Check that a golden image file is an ARM template deploying one DevTest Labs VM."""
    ok, doc = read_json(col, MAX_TEMPLATE_BYTES)
    if not ok:
        return
    if not isinstance(doc, dict):
        col.add((), f"must be a JSON object (an ARM template), not {json_type(doc)}")
        return
    schema = doc.get("$schema")
    if not isinstance(schema, str) or ARM_TEMPLATE_SCHEMA_MARK not in schema.casefold():
        col.add(
            ("$schema",) if "$schema" in doc else (),
            "is not an ARM template: '$schema' must name a deploymentTemplate.json schema",
        )
    resources = doc.get("resources")
    if not isinstance(resources, list):
        col.add(("resources",) if "resources" in doc else (), "is not an ARM template: 'resources' array missing")
        return
    _check_vm_resources(col, resources)
    _check_secure_parameters(col, doc.get("parameters"))


def check_golden(config_dir: Path) -> tuple[list[Finding], list[str], Path]:
    """Check every file under GoldenImages; return (errors, valid ImagePaths, GoldenImages folder)."""
    root = golden_images_dir(config_dir)
    errors: list[Finding] = []
    if not root.is_dir():
        errors.append(Finding(str(root), "", "folder is missing; it holds the golden image ARM templates"))
        return errors, [], root
    images: list[str] = []
    for rel, path, inside in _walk_golden(root):
        col = Collector(path)
        if not inside:
            col.add((), f"resolves outside GoldenImages ({rel} is a symbolic link); it is ignored")
        else:
            _check_template(col)
            if path.is_file():
                images.append(rel)
        errors.extend(col.errors)
    return errors, _sorted_paths(images), root


def _escapes_by_link(root: Path, selector: str) -> bool:
    """Return whether ``selector`` names (any casing) an entry under ``root`` whose real path is outside it."""
    real_root = root.resolve()
    current = root
    for segment in imagepaths.segments(selector):
        entry = find_entry(current, segment)
        if entry is None:
            return False
        if not _inside(entry.resolve(), real_root):
            return True
        current = entry
    return False


def match_image_paths(col: Collector, root: Path, labs: list[tuple[int, LabRef]], images: list[str]) -> set[str]:
    """Report ImagePaths that select no golden image; return the golden images some lab uses."""
    used: set[str] = set()
    refused = {f.location for f in col.errors}
    for index, lab in labs:
        for p_index, selector in enumerate(lab.image_paths):
            location: JsonPath = ("Labs", index, "ImagePaths", p_index)
            if format_location(location) in refused:
                continue  # already refused (absolute, '..')
            chosen = imagepaths.selected([selector], images)
            if chosen:
                used.update(chosen)
                continue
            if _escapes_by_link(root, selector):
                col.add(location, f"{selector!r} leads outside GoldenImages (through a symbolic link)")
                continue
            hint = ""
            if imagepaths.selected([selector + ".json"], images):
                hint = f"; did you mean {imagepaths.normalize(selector) + '.json'!r}?"
            col.add(
                location,
                f"{selector!r} matches no golden image file under GoldenImages "
                f"(folders and files match whole path segments){hint}",
            )
    return used


def unused_images(root: Path, images: list[str], used: set[str]) -> list[Finding]:
    """Warn about every golden image no lab's ImagePath selects."""
    return [
        Finding(
            str(root / image),
            "",
            f"golden image {image!r} is used by no lab (no ImagePath selects it)",
            None,
            "warning",
        )
        for image in images
        if image not in used
    ]
