"""Template deployments through the unmodified SDK (DeploymentsMgmtClient): lab VM builds, artifacts, errors, LROs.

One local Azure on the build world (an empty factory lab) for the module, so the demo world's VMs stay as other
modules expect them.
"""

from __future__ import annotations

import copy
import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.mgmt.devtestlabs import models as dtl_models
from azure.mgmt.resource.deployments import DeploymentsMgmtClient
from azure.mgmt.resource.deployments.models import Deployment, DeploymentProperties
from azure.storage.blob import BlobClient

from tests.emulator.conftest import (
    REPO,
    SUB1,
    EmulatorProcess,
    compute_client,
    control_delete,
    control_get,
    control_post,
    credential,
    dtl_client,
)

pytestmark = pytest.mark.emulator

BUILD_WORLD = REPO / "emulator" / "worlds" / "build.json"
DATA = Path(__file__).parent / "data" / "golden"
RG = "rg-imagefactory"
LAB = "ImageFactory"
FAST = {"lro_seconds": 0.2, "vm_create_seconds": 0.2, "artifact_seconds": 0.2, "deallocate_seconds": 0.3}
SYSPREP = (
    "[resourceId('Microsoft.DevTestLab/labs/artifactSources/artifacts', parameters('labName'), 'public repo', '{}')]"
)


@pytest.fixture(scope="module")
def azure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The local Azure on the build world, fast build timings."""
    emulator = EmulatorProcess(BUILD_WORLD, tmp_path_factory.mktemp("build-azure"))
    info = dict(emulator.info)
    assert control_post(info, "/config", FAST).status_code == 200
    yield info
    assert emulator.stop() == 0, f"the emulator failed; see {emulator.log_path}"


@pytest.fixture
def faults(azure: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Clear the fault rules around a test."""
    control_delete(azure, "/faults")
    yield azure
    control_delete(azure, "/faults")


def deployments(info: dict[str, Any], principal: str | None = None) -> DeploymentsMgmtClient:
    """The unmodified deployments client against the local ARM endpoint."""
    return DeploymentsMgmtClient(
        credential(info, principal), SUB1, base_url=info["arm_endpoint"], connection_verify=info["ca_bundle"]
    )


def template(name: str = "Win2016 Datacenter.json", *artifacts: str) -> dict[str, Any]:
    """A test template with the given public-repo artifacts appended (as the factory appends sysprep)."""
    loaded: dict[str, Any] = json.loads((DATA / name).read_text(encoding="utf-8"))
    if artifacts:
        props = loaded["resources"][0]["properties"]
        props["artifacts"] = [{"artifactId": SYSPREP.format(a), "parameters": []} for a in artifacts]
    return loaded


def parameters(vm: str, **extra: Any) -> dict[str, Any]:
    values = {"labName": LAB, "newVMName": vm, "userName": "factoryadmin", "password": "Pa55-w0rd!", "size": "Small"}
    values.update(extra)
    return {key: {"value": value} for key, value in values.items()}


def body(tpl: dict[str, Any], params: dict[str, Any]) -> Deployment:
    return Deployment(properties=DeploymentProperties(mode="Incremental", template=tpl, parameters=params))


def unique_vm(prefix: str = "vm") -> str:
    return f"{prefix}{uuid.uuid4().hex[:6]}"


def wait_for(condition: Callable[[], Any], what: str, timeout: float = 30) -> Any:
    """Poll ``condition`` until it returns a truthy value (a condition, not a clock, decides)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def vm_with_artifacts(info: dict[str, Any], vm: str) -> dtl_models.LabVirtualMachine:
    return dtl_client(info).virtual_machines.get(RG, LAB, vm, expand="properties($expand=artifacts,computeVm)")


def power_state(vm: dtl_models.LabVirtualMachine) -> str:
    assert vm.compute_vm is not None and vm.compute_vm.statuses is not None
    return next(str(s.code) for s in vm.compute_vm.statuses if str(s.code).startswith("PowerState/"))


def delete_vm(info: dict[str, Any], vm: str) -> None:
    dtl_client(info).virtual_machines.begin_delete(RG, LAB, vm).result()


def test_a_template_builds_a_lab_vm_that_sysprep_leaves_deallocated(azure: dict[str, Any]) -> None:
    vm = unique_vm("dc")
    client = deployments(azure)
    result = client.deployments.begin_create_or_update(
        RG,
        f"Deploy-{vm}",
        body(template("Win2016 Datacenter.json", "windows-chocolatey", "windows-sysprep"), parameters(vm)),
    ).result()
    assert result.properties is not None
    assert result.properties.provisioning_state == "Succeeded"
    vm_id = f"/subscriptions/{SUB1}/resourceGroups/{RG}/providers/Microsoft.DevTestLab/labs/{LAB}/virtualmachines/{vm}"
    assert result.properties.outputs == {"labVMId": {"type": "String", "value": vm_id}}
    echoed = result.properties.parameters
    assert echoed["password"] == {"type": "SecureString"}
    assert echoed["newVMName"] == {"type": "String", "value": vm}
    assert [r.id for r in result.properties.output_resources or []] == [vm_id.lower()]

    built = vm_with_artifacts(azure, vm)
    assert built.provisioning_state == "Succeeded"
    assert built.os_type == "Windows"
    assert built.artifact_deployment_status is not None
    assert built.artifact_deployment_status.deployment_status == "Succeeded"
    assert (built.artifact_deployment_status.artifacts_applied, built.artifact_deployment_status.total_artifacts) == (
        2,
        2,
    )
    assert [(a.artifact_title, a.status) for a in built.artifacts or []] == [
        ("windows-chocolatey", "Succeeded"),
        ("windows-sysprep", "Succeeded"),
    ]
    first = (built.artifacts or [])[0]
    assert first.artifact_id is not None and first.artifact_id.endswith(
        "/artifactSources/public repo/artifacts/windows-chocolatey"
    )
    assert first.install_time is not None
    deallocated = wait_for(
        lambda: (v := vm_with_artifacts(azure, vm)) and power_state(v) == "PowerState/deallocated" and v, "deallocation"
    )
    assert deallocated.compute_vm is not None and deallocated.compute_vm.os_disk_id is not None
    disk_rg = deallocated.compute_vm.os_disk_id.split("/")[4]
    disk = compute_client(azure).disks.get(disk_rg, deallocated.compute_vm.os_disk_id.rsplit("/", 1)[-1])
    assert disk.disk_state == "Reserved"
    assert disk.unique_id
    delete_vm(azure, vm)


def _disk_bytes(info: dict[str, Any], vm: str) -> bytes:
    built = vm_with_artifacts(info, vm)
    assert built.compute_vm is not None and built.compute_vm.os_disk_id is not None
    parts = built.compute_vm.os_disk_id.split("/")
    compute = compute_client(info)
    sas = compute.disks.begin_grant_access(parts[4], parts[-1], {"access": "Read", "durationInSeconds": 600}).result()
    try:
        blob = BlobClient.from_blob_url(sas.access_sas, connection_verify=info["ca_bundle"])
        return blob.download_blob(offset=0, length=4096).readall()
    finally:
        compute.disks.begin_revoke_access(parts[4], parts[-1]).result()


def test_every_build_gets_a_new_disk_and_the_templates_of_the_repository_deploy(azure: dict[str, Any]) -> None:
    client = deployments(azure)
    golden = sorted((REPO / "Configuration" / "GoldenImages").rglob("*.json"))
    names = [unique_vm("g") for _ in golden]
    pollers = []
    for path, vm in zip(golden, names, strict=True):
        tpl = json.loads(path.read_text(encoding="utf-8"))
        os_type = tpl["resources"][0]["properties"]["galleryImageReference"]["osType"]
        last = "windows-sysprep" if os_type == "Windows" else "linux-deprovision"
        props = tpl["resources"][0]["properties"]
        props["artifacts"] = [*props.get("artifacts", []), {"artifactId": SYSPREP.format(last)}]
        pollers.append(client.deployments.begin_create_or_update(RG, f"Deploy-{vm}", body(tpl, parameters(vm))))
    states = [poller.result().properties.provisioning_state for poller in pollers]  # type: ignore[union-attr]
    assert states == ["Succeeded"] * len(golden)
    for vm in names[:2]:
        wait_for(lambda vm=vm: power_state(vm_with_artifacts(azure, vm)) == "PowerState/deallocated", vm)
    first, second = (_disk_bytes(azure, vm) for vm in names[:2])
    assert first != second
    for vm in names:
        delete_vm(azure, vm)


def test_while_building_the_vm_is_creating_and_its_artifacts_move_one_by_one(settings_fast: dict[str, Any]) -> None:
    info = settings_fast
    assert control_post(info, "/config", {"artifact_seconds": 1.0}).status_code == 200
    vm = unique_vm("wip")
    client = deployments(info)
    poller = client.deployments.begin_create_or_update(
        RG, f"Deploy-{vm}", body(template("Win2016 Datacenter.json", "windows-7zip", "windows-sysprep"), parameters(vm))
    )
    creating = wait_for(lambda: _maybe_vm(info, vm), "the VM to exist")
    assert creating.provisioning_state == "Creating"
    assert power_state(creating) == "PowerState/running"
    installing = wait_for(
        lambda: (
            (v := vm_with_artifacts(info, vm))
            and [a.status for a in v.artifacts or []] == ["Installing", "Pending"]
            and v
        ),
        "the first artifact installing",
    )
    assert installing.artifact_deployment_status is not None
    assert installing.artifact_deployment_status.deployment_status == "Running"
    running = client.deployments.get(RG, f"Deploy-{vm}")
    assert running.properties is not None and running.properties.provisioning_state == "Running"
    with pytest.raises(HttpResponseError) as active:
        client.deployments.begin_create_or_update(RG, f"Deploy-{vm}", body(template(), parameters(vm)))
    assert active.value.error is not None and active.value.error.code == "DeploymentActive"
    with pytest.raises(HttpResponseError) as busy:
        client.deployments.begin_delete(RG, f"Deploy-{vm}")
    assert busy.value.status_code == 409
    assert poller.result().properties.provisioning_state == "Succeeded"  # type: ignore[union-attr]
    stopped_or_later = power_state(vm_with_artifacts(info, vm))
    assert stopped_or_later in {"PowerState/stopped", "PowerState/deallocated"}
    client.deployments.begin_delete(RG, f"Deploy-{vm}").result()
    with pytest.raises(ResourceNotFoundError) as gone:
        client.deployments.get(RG, f"Deploy-{vm}")
    assert gone.value.error is not None and gone.value.error.code == "DeploymentNotFound"
    assert dtl_client(info).virtual_machines.get(RG, LAB, vm).name == vm, "deleting the record keeps the VM"
    delete_vm(info, vm)


def _maybe_vm(info: dict[str, Any], vm: str) -> dtl_models.LabVirtualMachine | None:
    try:
        return vm_with_artifacts(info, vm)
    except ResourceNotFoundError:
        return None


@pytest.fixture
def settings_fast(azure: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Let a test slow the builds down, and restore the fast timings afterwards."""
    yield azure
    control_post(azure, "/config", FAST)


def test_an_injected_artifact_failure_is_reported_and_the_rest_skipped(faults: dict[str, Any]) -> None:
    vm = unique_vm("bad")
    rule = {"service": "arm", "kind": "artifact_fail", "artifact": "Windows-Chocolatey", "vm": vm, "message": "exit 1"}
    assert control_post(faults, "/faults", [rule]).status_code == 200
    result = (
        deployments(faults)
        .deployments.begin_create_or_update(
            RG,
            f"Deploy-{vm}",
            body(template("Win2016 Datacenter.json", "windows-chocolatey", "windows-sysprep"), parameters(vm)),
        )
        .result()
    )
    assert result.properties is not None and result.properties.provisioning_state == "Succeeded"
    built = vm_with_artifacts(faults, vm)
    assert built.provisioning_state == "Succeeded"
    assert built.artifact_deployment_status is not None
    assert built.artifact_deployment_status.deployment_status == "Failed"
    assert built.artifact_deployment_status.artifacts_applied == 0
    failed, skipped = built.artifacts or []
    assert (failed.status, skipped.status) == ("Failed", "Skipped")
    assert failed.deployment_status_message is not None and "exit 1" in failed.deployment_status_message
    assert "The 'windows-chocolatey' artifact failed to install" in failed.deployment_status_message
    assert failed.vm_extension_status_message is not None and "exit 1" in failed.vm_extension_status_message
    assert power_state(built) == "PowerState/running", "sysprep never ran"
    vms = {v["name"]: v for lab in control_get(faults, "/state")["labs"] for v in lab["vms"]}
    assert vms[vm]["artifacts"] == [
        {"name": "windows-chocolatey", "status": "Failed"},
        {"name": "windows-sysprep", "status": "Skipped"},
    ]
    delete_vm(faults, vm)


def test_an_existing_vm_name_fails_the_deployment_with_a_conflict(azure: dict[str, Any]) -> None:
    vm = unique_vm("dup")
    client = deployments(azure)
    client.deployments.begin_create_or_update(RG, f"Deploy-{vm}", body(template(), parameters(vm))).result()
    before = dtl_client(azure).virtual_machines.get(RG, LAB, vm)
    with pytest.raises(HttpResponseError):
        client.deployments.begin_create_or_update(RG, f"Deploy-{vm}-2", body(template(), parameters(vm))).result()
    failed = client.deployments.get(RG, f"Deploy-{vm}-2")
    assert failed.properties is not None and failed.properties.provisioning_state == "Failed"
    error = failed.properties.error
    assert error is not None and error.code == "DeploymentFailed"
    assert [d.code for d in error.details or []] == ["Conflict"]
    after = dtl_client(azure).virtual_machines.get(RG, LAB, vm)
    assert after.unique_identifier == before.unique_identifier
    delete_vm(azure, vm)


def test_resource_failures_name_the_problem(azure: dict[str, Any]) -> None:
    client = deployments(azure)
    cases = {
        "toolongwindowsname": ("InvalidParameter", parameters("toolongwindowsname")),
        "nolab": ("ParentResourceNotFound", parameters("nolab", labName="NoSuchLab")),
    }
    for name, (code, params) in cases.items():
        with pytest.raises(HttpResponseError):
            client.deployments.begin_create_or_update(RG, f"Deploy-{name}", body(template(), params)).result()
        error = client.deployments.get(RG, f"Deploy-{name}").properties.error  # type: ignore[union-attr]
        assert error is not None and [d.code for d in error.details or []] == [code], name


def _put_raw(info: dict[str, Any], name: str, payload: Any) -> httpx.Response:
    token = credential(info).get_token("https://management.azure.com/.default").token
    url = (
        f"{info['arm_endpoint']}/subscriptions/{SUB1}/resourcegroups/{RG}/providers/Microsoft.Resources/deployments/"
        f"{name}?api-version=2026-06-01"
    )
    with httpx.Client(verify=info["ca_bundle"], timeout=30) as http:
        return http.put(url, json=payload, headers={"Authorization": f"Bearer {token}"})


def test_template_errors_are_refused_as_invalid_template(azure: dict[str, Any]) -> None:
    client = deployments(azure)
    unsupported = template()
    unsupported["variables"]["vmName"] = "[concat(parameters('labName'), '/', uniqueString(parameters('newVMName')))]"
    with pytest.raises(HttpResponseError) as caught:
        client.deployments.begin_create_or_update(RG, "Deploy-bad-fn", body(unsupported, parameters("x1")))
    assert caught.value.status_code == 400
    assert caught.value.error is not None and caught.value.error.code == "InvalidTemplate"
    assert "'uniqueString'" in str(caught.value.error.message)
    with pytest.raises(HttpResponseError) as extra:
        client.deployments.begin_create_or_update(RG, "Deploy-extra", body(template(), parameters("x2", colour="red")))
    assert extra.value.error is not None and extra.value.error.code == "InvalidTemplate"
    assert "'colour'" in str(extra.value.error.message)
    other_type = copy.deepcopy(template())
    other_type["resources"][0]["type"] = "Microsoft.Compute/virtualMachines"
    refused = _put_raw(
        azure,
        "Deploy-type",
        {"properties": {"mode": "Incremental", "template": other_type, "parameters": parameters("x3")}},
    )
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "InvalidTemplate"
    linked = _put_raw(
        azure, "Deploy-link", {"properties": {"mode": "Incremental", "templateLink": {"uri": "https://x"}}}
    )
    assert linked.status_code == 400 and linked.json()["error"]["code"] == "InvalidRequestContent"
    with pytest.raises(ResourceNotFoundError):
        client.deployments.get(RG, "Deploy-bad-fn")


def test_the_put_answers_as_arm_does(azure: dict[str, Any]) -> None:
    vm = unique_vm("raw")
    payload = {"properties": {"mode": "Incremental", "template": template(), "parameters": parameters(vm)}}
    response = _put_raw(azure, f"Deploy-{vm}", payload)
    assert response.status_code == 201
    assert response.json()["properties"]["provisioningState"] == "Accepted"
    assert "Location" not in response.headers
    status_url = response.headers["Azure-AsyncOperation"]
    assert f"/providers/Microsoft.Resources/deployments/Deploy-{vm}/operationStatuses/" in status_url
    token = credential(azure).get_token("https://management.azure.com/.default").token
    with httpx.Client(verify=azure["ca_bundle"], timeout=30, headers={"Authorization": f"Bearer {token}"}) as http:
        final = wait_for(
            lambda: (s := http.get(status_url).json())["status"] in {"Succeeded", "Failed"} and s, "the deployment"
        )
    assert final == {"status": "Succeeded"}
    assert "Pa55-w0rd!" not in json.dumps(control_get(azure, "/state"))
    assert "Pa55-w0rd!" not in http_get_deployment(azure, f"Deploy-{vm}")
    stats = control_get(azure, "/stats")["arm"]["requests"]
    assert stats["Deployments_CreateOrUpdate"] >= 1 and stats["Deployments_OperationStatus"] >= 1
    delete_vm(azure, vm)


def http_get_deployment(info: dict[str, Any], name: str) -> str:
    token = credential(info).get_token("https://management.azure.com/.default").token
    url = (
        f"{info['arm_endpoint']}/subscriptions/{SUB1}/resourcegroups/{RG}/providers/Microsoft.Resources/deployments/"
        f"{name}?api-version=2026-06-01"
    )
    with httpx.Client(verify=info["ca_bundle"], timeout=30) as http:
        return http.get(url, headers={"Authorization": f"Bearer {token}"}).text


def test_tags_are_updated_and_readers_cannot_deploy(azure: dict[str, Any]) -> None:
    vm = unique_vm("tag")
    deployments(azure).deployments.begin_create_or_update(RG, f"Deploy-{vm}", body(template(), parameters(vm))).result()
    updated = dtl_client(azure).virtual_machines.update(RG, LAB, vm, tags={"ImagePath": "Win2016/Datacenter.json"})
    assert updated.tags == {"ImagePath": "Win2016/Datacenter.json"}
    assert dtl_client(azure).virtual_machines.get(RG, LAB, vm).tags == {"ImagePath": "Win2016/Datacenter.json"}
    with pytest.raises(HttpResponseError) as refused:
        deployments(azure, "reader").deployments.begin_create_or_update(
            RG, "Deploy-reader", body(template(), parameters("r1"))
        )
    assert refused.value.status_code == 403
    delete_vm(azure, vm)
