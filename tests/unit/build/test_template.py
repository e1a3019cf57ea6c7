"""Template rewriting: the sysprep / deprovision artifact appended by osType unless last, opt-out, parameters."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from image_factory.build.template import TemplateError, artifact_id, for_build, names_artifact

GOLDEN = Path(__file__).resolve().parents[3] / "Configuration" / "GoldenImages"
PARAMETERS = {
    "newVMName": {"type": "string"},
    "labName": {"type": "string"},
    "size": {"type": "string"},
    "userName": {"type": "string"},
    "password": {"type": "securestring"},
}


def template(os_type: str | None = "Windows", artifacts: list[Any] | None = None, **vm: Any) -> dict[str, Any]:
    properties: dict[str, Any] = {"galleryImageReference": {"offer": "WindowsServer", "osType": os_type}}
    if artifacts is not None:
        properties["artifacts"] = artifacts
    resource = {"type": "Microsoft.DevTestLab/labs/virtualmachines", "name": "[variables('vmName')]"}
    return {
        "$schema": "https://schema.management.azure.com/schemas/2015-01-01/deploymentTemplate.json",
        "parameters": copy.deepcopy(PARAMETERS),
        "resources": [{**resource, "properties": properties, **vm}],
    }


def artifacts_of(doc: dict[str, Any]) -> list[Any]:
    return list(doc["resources"][0]["properties"]["artifacts"])


def test_a_windows_template_without_artifacts_gets_windows_sysprep() -> None:
    original = template("Windows")
    built = for_build(original)
    assert built.appended == "windows-sysprep" and built.generalize and built.os_type == "Windows"
    assert artifacts_of(built.template) == [{"artifactId": artifact_id("windows-sysprep")}]
    assert "artifacts" not in original["resources"][0]["properties"]  # the input is not changed


def test_a_linux_template_gets_linux_deprovision_after_its_own_artifacts() -> None:
    own = {"artifactId": artifact_id("linux-apt-package"), "parameters": [{"name": "packages", "value": "git"}]}
    built = for_build(template("linux", [own]))
    assert built.os_type == "Linux" and built.appended == "linux-deprovision"
    assert artifacts_of(built.template) == [own, {"artifactId": artifact_id("linux-deprovision")}]


@pytest.mark.parametrize(
    "last",
    [
        artifact_id("windows-sysprep"),
        artifact_id("windows-sysprep").upper(),
        "/subscriptions/s/resourceGroups/rg/providers/Microsoft.DevTestLab/labs/l/artifactSources/public repo"
        "/artifacts/windows-sysprep",
    ],
)
def test_a_template_that_already_ends_with_it_is_left_as_it_is(last: str) -> None:
    built = for_build(template("Windows", [{"artifactId": artifact_id("windows-7zip")}, {"artifactId": last}]))
    assert built.appended is None and built.generalize
    assert len(artifacts_of(built.template)) == 2


def test_sysprep_in_the_middle_is_not_last_so_it_is_appended_again() -> None:
    middle = [{"artifactId": artifact_id("windows-sysprep")}, {"artifactId": artifact_id("windows-7zip")}]
    assert for_build(template("Windows", middle)).appended == "windows-sysprep"


def test_a_specialized_template_opts_out() -> None:
    built = for_build(template("Windows", tags={"imagetype": "specialized"}))
    assert not built.generalize and built.appended is None
    assert "artifacts" not in built.template["resources"][0]["properties"]


def test_an_artifact_id_names_an_artifact_only_at_its_end() -> None:
    assert names_artifact(artifact_id("windows-sysprep"), "windows-sysprep")
    assert not names_artifact(artifact_id("windows-sysprep-extra"), "windows-sysprep")
    assert not names_artifact(None, "windows-sysprep")


def test_a_template_without_os_type_cannot_be_generalized() -> None:
    with pytest.raises(TemplateError, match="osType"):
        for_build(template(None))


def test_parameters_are_the_five_the_template_declares() -> None:
    doc = template()
    del doc["parameters"]["size"]
    assert for_build(doc).parameters == ("labName", "newVMName", "userName", "password")
    doc["parameters"]["region"] = {"type": "string", "defaultValue": "x"}
    assert for_build(doc).parameters == ("labName", "newVMName", "userName", "password")


def test_a_parameter_a_build_cannot_fill_is_refused_by_name() -> None:
    doc = template()
    doc["parameters"]["domain"] = {"type": "string"}
    with pytest.raises(TemplateError, match="domain"):
        for_build(doc)
    del doc["parameters"]["newVMName"]
    with pytest.raises(TemplateError, match="newVMName"):
        for_build(doc)


@pytest.mark.parametrize("path", sorted(p.relative_to(GOLDEN).as_posix() for p in GOLDEN.rglob("*.json")))
def test_every_sample_template_can_be_built(path: str) -> None:
    built = for_build(json.loads((GOLDEN / path).read_text(encoding="utf-8")))
    assert built.generalize and built.appended in {"windows-sysprep", "linux-deprovision"}
    assert "password" in built.parameters
