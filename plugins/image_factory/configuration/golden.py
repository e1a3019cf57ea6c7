"""GoldenImages/: the ARM templates of the golden image VMs, and which of them the labs' ImagePaths select."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from image_factory import imagepaths
from image_factory.configuration.findings import Collector, Finding, format_location
from image_factory.configuration.reader import find_entry, read_json
from image_factory.configuration.scanner import JsonPath
from image_factory.configuration.schema import closest, json_type
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


_JSON = ".json"


def _stem_matches(selector: str, images: list[str]) -> list[str]:
    """Return the golden image files ``selector`` (no ``.json``, no trailing separator) names by their stem."""
    if selector.rstrip().endswith(("/", "\\")) or selector.strip().casefold().endswith(_JSON):
        return []  # a trailing separator names a folder; a '.json' ending names a file already
    stem = imagepaths.key(selector) + _JSON
    return [image for image in images if image.casefold() == stem]


def _closest_path(selector: str, images: list[str]) -> str:
    """Return ``; did you mean ...?`` for the golden file or folder closest to ``selector``, or ''."""
    folders = {"/".join(imagepaths.segments(i)[:n]) for i in images for n in range(1, len(imagepaths.segments(i)))}
    hint = closest(imagepaths.normalize(selector), [*images, *sorted(folders)])
    return f"; did you mean {hint!r}?" if hint else ""


@dataclass
class _Matcher:
    """Matches one lab's ImagePaths against the golden images, reporting into the labs file's collector."""

    col: Collector
    root: Path
    images: list[str]
    used: set[str] = field(default_factory=set)

    def spelled(self, location: JsonPath, lab: LabRef, selector: str) -> str:
        """Return the ImagePath as the lab uses it: ``selector``, or the file its stem names (with a warning)."""
        chosen = imagepaths.selected([selector], self.images)
        stems = _stem_matches(selector, self.images)
        if chosen and stems:
            self.col.add(
                location,
                f"{selector!r} is ambiguous: it names the folder {imagepaths.normalize(selector)!r} and, by its"
                f" stem, the file {stems[0]!r}; write {imagepaths.normalize(selector) + '/'!r} for the folder or"
                f" {stems[0]!r} for the file",
            )
        elif len(stems) > 1:
            named = ", ".join(map(repr, stems))
            self.col.add(location, f"{selector!r} is ambiguous: it names {len(stems)} files by their stem: {named}")
        elif stems:
            self.used.add(stems[0])
            self.col.add(
                location,
                f"{selector!r} has no '.json': it selects the file {stems[0]!r} by its stem; write {stems[0]!r}"
                " (the canonical spelling)",
                severity="warning",
            )
            return stems[0]
        elif chosen:
            self.used.update(chosen)
        elif _escapes_by_link(self.root, selector) or _escapes_by_link(self.root, selector + _JSON):
            self.col.add(location, f"{selector!r} leads outside GoldenImages (through a symbolic link)")
        else:
            self.col.add(
                location,
                f"{selector!r} selects no golden image file under GoldenImages (folders and files match whole path"
                f" segments): lab {lab.lab_name!r} gets nothing for it, its other ImagePaths still run"
                f"{_closest_path(selector, self.images)}",
                severity="warning",
            )
        return selector


def match_image_paths(
    col: Collector, root: Path, labs: list[tuple[int, LabRef]], images: list[str]
) -> tuple[set[str], list[tuple[int, LabRef]]]:
    """Match every lab's ImagePaths against the golden images; return the images some lab uses and the labs.

    An ImagePath that names one file by its stem (no ``.json``) selects it with a warning, and the labs returned
    spell it canonically; one that is ambiguous or leads outside GoldenImages is an error; one that selects
    nothing (its file was removed, a typo) is a warning for that lab: it stays, selecting nothing.
    """
    matcher = _Matcher(col, root, images)
    refused = {f.location for f in col.errors}
    out: list[tuple[int, LabRef]] = []
    for index, lab in labs:
        paths: list[str] = []
        for p_index, selector in enumerate(lab.image_paths):
            location: JsonPath = ("Labs", index, "ImagePaths", p_index)
            if format_location(location) in refused:
                paths.append(selector)  # already refused (absolute, '..')
            else:
                paths.append(matcher.spelled(location, lab, selector))
        out.append((index, replace(lab, image_paths=tuple(paths))))
    return matcher.used, out


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
