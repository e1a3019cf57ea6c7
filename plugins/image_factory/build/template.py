"""Rewrite a golden image template for a build: append the generalizing artifact, check the parameters.

As the original's ``makeUpdatedTemplateFile``: the public repository's ``windows-sysprep`` (Windows) or
``linux-deprovision`` (Linux) artifact, chosen by the VM's ``galleryImageReference.osType``, is appended to the
VM's ``artifacts`` unless the last one already is it; a template whose VM resource carries the tag
``ImageType=Specialized`` opts out (the original's ``includeSysprep`` switch, per template here) and its VM is
captured as specialized. Pure: a template in, a new template out; the file is never written.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from image_factory.configuration.golden import DTL_VM_TYPE
from image_factory.models import IMAGE_TYPE_TAG, OsType

#: The artifact that generalizes a VM of each OS and then stops it (DevTest Labs' public repository).
GENERALIZE_ARTIFACTS: dict[OsType, str] = {"Windows": "windows-sysprep", "Linux": "linux-deprovision"}
#: The public artifact repository's name in every lab.
PUBLIC_REPO = "public repo"
#: The parameters a build passes, as the original did (each only when the template declares it).
BUILD_PARAMETERS = ("labName", "newVMName", "userName", "password", "size")
#: Parameters without which a build cannot name the VM or its lab.
REQUIRED_PARAMETERS = ("labName", "newVMName")
SPECIALIZED = "specialized"


class TemplateError(ValueError):
    """A golden image template cannot be built as it is (the message says what to change)."""


@dataclass(frozen=True)
class BuildTemplate:
    """A template ready to deploy and what the rewriting decided."""

    template: dict[str, Any]
    os_type: OsType | None
    #: True: generalized (the artifact is there); False: the template asked for a specialized image.
    generalize: bool
    #: The artifact appended, or None (already last, or specialized).
    appended: str | None
    #: The build parameters the template declares, in ``BUILD_PARAMETERS`` order.
    parameters: tuple[str, ...]


def artifact_id(name: str) -> str:
    """Return the template expression of a public repository artifact's id (the original's form)."""
    return (
        "[resourceId('Microsoft.DevTestLab/labs/artifactSources/artifacts', parameters('labName'), "
        f"'{PUBLIC_REPO}', '{name}')]"
    )


def names_artifact(value: Any, name: str) -> bool:
    """Tell whether an ``artifactId`` (an expression or a literal id, any casing) ends with artifact ``name``."""
    if not isinstance(value, str):
        return False
    return re.search(rf"[/',\s]{re.escape(name)}['\s)\]]*$", value.strip(), re.IGNORECASE) is not None


def vm_resource(template: Mapping[str, Any]) -> dict[str, Any]:
    """Return the template's DevTest Labs VM resource (validation guarantees exactly one)."""
    resources = template.get("resources")
    vms = [
        r
        for r in (resources if isinstance(resources, list) else [])
        if isinstance(r, dict) and str(r.get("type", "")).casefold() == DTL_VM_TYPE
    ]
    if len(vms) != 1:
        raise TemplateError("the template must deploy exactly one 'Microsoft.DevTestLab/labs/virtualmachines'")
    return vms[0]


def os_type_of(vm: Mapping[str, Any]) -> OsType | None:
    """Return the VM's ``galleryImageReference.osType`` as ``Windows``/``Linux``, or None when it names none."""
    properties = vm.get("properties")
    reference = properties.get("galleryImageReference") if isinstance(properties, dict) else None
    value = reference.get("osType") if isinstance(reference, dict) else None
    text = str(value or "").strip().casefold()
    return next((os for os in GENERALIZE_ARTIFACTS if os.casefold() == text), None)


def is_specialized(vm: Mapping[str, Any]) -> bool:
    """Tell whether the VM resource asks for a specialized image (tag ``ImageType=Specialized``)."""
    tags = vm.get("tags")
    if not isinstance(tags, dict):
        return False
    return any(k.casefold() == IMAGE_TYPE_TAG.casefold() and str(v).casefold() == SPECIALIZED for k, v in tags.items())


def _parameters(template: Mapping[str, Any]) -> tuple[str, ...]:
    declared = template.get("parameters")
    declared = declared if isinstance(declared, dict) else {}
    by_key = {str(k).casefold(): str(k) for k in declared}
    missing = [p for p in REQUIRED_PARAMETERS if p.casefold() not in by_key]
    if missing:
        raise TemplateError(f"the template declares no parameter {', '.join(missing)}: a build passes them")
    ours = {p.casefold() for p in BUILD_PARAMETERS}
    unfilled = [
        name
        for name, spec in declared.items()
        if str(name).casefold() not in ours and not (isinstance(spec, dict) and "defaultValue" in spec)
    ]
    if unfilled:
        raise TemplateError(
            f"parameter(s) {', '.join(unfilled)} have no defaultValue and a build passes only "
            f"{', '.join(BUILD_PARAMETERS)}: give them a defaultValue"
        )
    return tuple(p for p in BUILD_PARAMETERS if p.casefold() in by_key)


def for_build(template: Mapping[str, Any]) -> BuildTemplate:
    """Return the template to deploy: a copy with the generalizing artifact appended where it is needed."""
    rewritten = copy.deepcopy(dict(template))
    parameters = _parameters(rewritten)
    vm = vm_resource(rewritten)
    os_type = os_type_of(vm)
    if is_specialized(vm):
        return BuildTemplate(rewritten, os_type, generalize=False, appended=None, parameters=parameters)
    if os_type is None:
        raise TemplateError(
            "the VM names no galleryImageReference.osType (Windows or Linux), so the factory cannot tell "
            "windows-sysprep from linux-deprovision: set it, or tag the VM resource ImageType=Specialized"
        )
    name = GENERALIZE_ARTIFACTS[os_type]
    properties = vm.setdefault("properties", {})
    artifacts = properties.get("artifacts")
    if not isinstance(artifacts, list):
        artifacts = []
    if artifacts and isinstance(artifacts[-1], dict) and names_artifact(artifacts[-1].get("artifactId"), name):
        properties["artifacts"] = artifacts
        return BuildTemplate(rewritten, os_type, generalize=True, appended=None, parameters=parameters)
    properties["artifacts"] = [*artifacts, {"artifactId": artifact_id(name)}]
    return BuildTemplate(rewritten, os_type, generalize=True, appended=name, parameters=parameters)
