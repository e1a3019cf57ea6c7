"""BuildVmOperator with fake hooks: the password only in the PUT, deferral, artifacts checked, VM tagged or deleted."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException, TaskDeferred

from image_factory.build import hook as build_hook
from image_factory.build import password as passwords
from image_factory.build.hook import DeploymentState
from image_factory.build.operator import BUILD_RUN_TAG, BuildVmOperator
from image_factory.build.plan import BuildJob
from image_factory.build.trigger import BuildEvent, BuildTrigger
from image_factory.configuration import FactorySettings
from image_factory.exceptions import AzureRequestError

SETTINGS = FactorySettings(
    subscription_id="sub",
    resource_group="rg-f",
    lab_name="ImageFactory",
    build_enabled=True,
    build_vm_size="Standard_B2s",
)
JOB = BuildJob(
    image_path="Win2016/Datacenter.json",
    vm_name="Datacente-1a2b3",
    deployment_name="Build-Datacente-1a2b3",
    run_id="manual__1",
    os_type="Windows",
    appended="windows-sysprep",
)
PASSWORD = "Pa55-word-never-seen!"
ART = (
    "/subscriptions/sub/resourcegroups/rg-f/providers/microsoft.devtestlab/labs/imagefactory"
    "/artifactsources/public repo/artifacts/"
)


def lab_vm(power: str = "running", tags: dict[str, str] | None = None, failed: bool = False) -> Any:
    artifacts = [
        SimpleNamespace(artifact_id=ART + "windows-7zip", status="Failed" if failed else "Succeeded",
                        deployment_status_message="exit 1" if failed else None,
                        vm_extension_status_message="7zip download refused" if failed else None, install_time=None),
        SimpleNamespace(artifact_id=ART + "windows-sysprep", status="Skipped" if failed else "Succeeded",
                        deployment_status_message=None, vm_extension_status_message=None, install_time=None),
    ]  # fmt: skip
    return SimpleNamespace(
        name=JOB.vm_name,
        tags=dict(tags or {}),
        artifacts=artifacts,
        artifact_deployment_status=SimpleNamespace(
            deployment_status="Failed" if failed else "Succeeded",
            total_artifacts=2,
            artifacts_applied=1 if failed else 2,
        ),
        compute_vm=SimpleNamespace(statuses=[SimpleNamespace(code=f"PowerState/{power}")], os_type="Windows"),
        last_known_power_state=None,
    )


@dataclass
class FakeDtl:
    vm: Any = None
    deleted: list[str] = field(default_factory=list)
    tagged: list[dict[str, str]] = field(default_factory=list)

    def delete_vm(self, subscription_id: str, resource_group: str, lab_name: str, vm_name: str) -> bool:
        self.deleted.append(vm_name)
        existed, self.vm = self.vm is not None, None
        return existed


@dataclass
class FakeDeployments:
    deployment: DeploymentState | None = None
    bodies: list[Any] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)

    def state(self, subscription_id: str, resource_group: str, name: str) -> DeploymentState | None:
        return self.deployment

    def start(self, subscription_id: str, resource_group: str, name: str, body: Any) -> DeploymentState:
        self.bodies.append(body)
        self.deployment = DeploymentState("Accepted")
        return self.deployment

    def delete(self, subscription_id: str, resource_group: str, name: str) -> bool:
        self.deleted.append(name)
        self.deployment = None
        return True


@pytest.fixture
def fakes(monkeypatch: pytest.MonkeyPatch) -> tuple[FakeDtl, FakeDeployments]:
    dtl, deployments = FakeDtl(), FakeDeployments()
    monkeypatch.setattr(BuildVmOperator, "_hooks", lambda self: (SETTINGS, dtl, deployments))
    monkeypatch.setattr(build_hook, "get_lab_vm", lambda hook, *a, vm_name, expand: dtl.vm)

    def tag(hook: Any, *where: str, vm: Any, tags: dict[str, str]) -> None:
        dtl.tagged.append(dict(tags))
        vm.tags.update(tags)

    monkeypatch.setattr(build_hook, "tag_vm", tag)
    monkeypatch.setattr(passwords, "generate", lambda length=24: PASSWORD)
    return dtl, deployments


def operator() -> BuildVmOperator:
    return BuildVmOperator(task_id="build_vm", job=JOB.to_dict(), poll_interval="3")


def event(phase: str, status: str = "success", message: str = "ok") -> dict[str, Any]:
    return BuildEvent(phase=phase, status=status, label="build", message=message).payload()  # type: ignore[arg-type]


def test_execute_puts_the_deployment_with_the_password_and_defers_without_it(
    fakes: tuple[FakeDtl, FakeDeployments], capsys: pytest.CaptureFixture[str]
) -> None:
    _, deployments = fakes
    with pytest.raises(TaskDeferred) as deferred:
        operator().execute({})  # type: ignore[arg-type]
    trigger = deferred.value.trigger
    assert isinstance(trigger, BuildTrigger) and trigger.phase == "deployment" and trigger.poll_interval == 3.0
    assert deferred.value.method_name == "build_complete"
    parameters = deployments.bodies[0].properties.parameters
    assert {k: v.value for k, v in parameters.items()} == {
        "labName": "ImageFactory",
        "newVMName": JOB.vm_name,
        "userName": "adminuser",
        "password": PASSWORD,
        "size": "Standard_B2s",
    }
    artifacts = deployments.bodies[0].properties.template["resources"][0]["properties"]["artifacts"]
    assert "windows-sysprep" in artifacts[-1]["artifactId"]
    assert PASSWORD not in repr(trigger.serialize())
    logged = capsys.readouterr().out  # the task logger writes here
    assert f"Deploying {JOB.image_path} as VM {JOB.vm_name}" in logged and PASSWORD not in logged


def test_a_password_connection_gives_the_password(monkeypatch: pytest.MonkeyPatch) -> None:
    read = {"pw": SimpleNamespace(password="From-the-connection-1")}
    assert passwords.admin_password("pw", read.__getitem__) == "From-the-connection-1"
    with pytest.raises(Exception, match="has no password"):
        passwords.admin_password("pw", lambda _: SimpleNamespace(password=None))


def test_a_generated_password_is_strong() -> None:
    for _ in range(50):
        word = passwords.generate()
        assert len(word) == passwords.LENGTH
        assert any(c.islower() for c in word) and any(c.isupper() for c in word) and any(c.isdigit() for c in word)
        assert any(not c.isalnum() for c in word)


def test_a_vm_of_that_name_not_made_by_this_run_fails_this_template_only(
    fakes: tuple[FakeDtl, FakeDeployments],
) -> None:
    dtl, deployments = fakes
    dtl.vm = lab_vm(tags={BUILD_RUN_TAG: "another run"})
    with pytest.raises(AirflowFailException, match="already has a VM named"):
        operator().execute({})  # type: ignore[arg-type]
    assert deployments.bodies == [] and dtl.deleted == []


def test_a_running_deployment_of_an_earlier_attempt_is_adopted(fakes: tuple[FakeDtl, FakeDeployments]) -> None:
    _, deployments = fakes
    deployments.deployment = DeploymentState("Running")
    with pytest.raises(TaskDeferred):
        operator().execute({})  # type: ignore[arg-type]
    assert deployments.bodies == []


def test_success_tags_the_vm_deletes_the_record_and_waits_for_deallocation(
    fakes: tuple[FakeDtl, FakeDeployments],
) -> None:
    dtl, deployments = fakes
    dtl.vm, deployments.deployment = lab_vm("stopped"), DeploymentState("Succeeded")
    with pytest.raises(TaskDeferred) as deferred:
        operator().build_complete({}, event("deployment"))  # type: ignore[arg-type]
    assert deferred.value.trigger.phase == "deallocation"
    assert dtl.tagged == [{"ImagePath": JOB.image_path, BUILD_RUN_TAG: JOB.run_id}]
    assert deployments.deleted == [JOB.deployment_name] and dtl.deleted == []
    # Deallocated: the build is done; a retry of the task after the tag finds its VM and ends at once.
    dtl.vm = lab_vm("deallocated", tags=dtl.vm.tags)
    assert operator().build_complete({}, event("deallocation"))["action"] == "built"  # type: ignore[arg-type]
    assert operator().execute({})["vm_name"] == JOB.vm_name  # type: ignore[arg-type]
    assert deployments.bodies == []


def test_failed_artifacts_are_reported_and_the_vm_deleted(
    fakes: tuple[FakeDtl, FakeDeployments], capsys: pytest.CaptureFixture[str]
) -> None:
    dtl, deployments = fakes
    dtl.vm, deployments.deployment = lab_vm(failed=True), DeploymentState("Succeeded")
    with pytest.raises(AirflowFailException) as failed:
        operator().build_complete({}, event("deployment"))  # type: ignore[arg-type]
    text = str(failed.value)
    assert "windows-7zip: Failed: exit 1 | 7zip download refused" in text and "windows-sysprep: Skipped" in text
    assert "its VM was deleted" in text and "windows-7zip: Failed" in capsys.readouterr().out
    assert dtl.deleted == [JOB.vm_name] and dtl.tagged == [] and deployments.deleted == [JOB.deployment_name]


def test_a_failed_deployment_deletes_what_it_made_but_never_a_vm_it_conflicted_with(
    fakes: tuple[FakeDtl, FakeDeployments],
) -> None:
    dtl, deployments = fakes
    dtl.vm = lab_vm()
    deployments.deployment = DeploymentState("Failed", "DeploymentFailed: …; InvalidParameter: no osType")
    with pytest.raises(AirflowFailException, match="InvalidParameter"):
        operator().build_complete({}, event("deployment", "error", "build: deployment Failed: InvalidParameter"))  # type: ignore[arg-type]
    assert dtl.deleted == [JOB.vm_name]
    dtl.vm, dtl.deleted = lab_vm(), []
    deployments.deployment = DeploymentState("Failed", "DeploymentFailed: …; Conflict: VM exists")
    with pytest.raises(AirflowFailException, match="Conflict"):
        operator().build_complete({}, event("deployment", "error", "build: deployment Failed: Conflict: VM exists"))  # type: ignore[arg-type]
    assert dtl.deleted == []


def test_a_vm_that_never_stops_is_deleted(fakes: tuple[FakeDtl, FakeDeployments]) -> None:
    dtl, _ = fakes
    dtl.vm = lab_vm("running")
    with pytest.raises(AirflowFailException, match="StopMinutes"):
        operator().build_complete({}, event("deallocation", "error", "still running at its deadline (StopMinutes)"))  # type: ignore[arg-type]
    assert dtl.deleted == [JOB.vm_name]


def test_a_template_error_fails_at_once(fakes: tuple[FakeDtl, FakeDeployments]) -> None:
    op = BuildVmOperator(task_id="b", job={**JOB.to_dict(), "error": "no osType"})
    with pytest.raises(AirflowFailException, match="no osType"):
        op.execute({})  # type: ignore[arg-type]


def test_a_refused_put_that_no_retry_fixes_fails_at_once(
    fakes: tuple[FakeDtl, FakeDeployments], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, deployments = fakes

    def refuse(*args: Any) -> DeploymentState:
        raise AzureRequestError("InvalidTemplate: The template function 'uniqueString' is not found", status=400)

    monkeypatch.setattr(deployments, "start", refuse)
    with pytest.raises(AirflowFailException, match="uniqueString"):
        operator().execute({})  # type: ignore[arg-type]


def test_the_job_is_checked() -> None:
    with pytest.raises(ValueError, match="deployment_name"):
        BuildVmOperator(task_id="b", job={"image_path": "x", "vm_name": "y"})


def test_a_specialized_build_is_tagged_so_and_stopped_by_the_factory(
    fakes: tuple[FakeDtl, FakeDeployments], monkeypatch: pytest.MonkeyPatch
) -> None:
    dtl, deployments = fakes
    stopped: list[str] = []

    def stop(hook: Any, *where: str) -> None:
        stopped.append(where[-1])
        dtl.vm = lab_vm("deallocated", tags=dtl.vm.tags)

    monkeypatch.setattr(build_hook, "stop_vm", stop)
    dtl.vm, deployments.deployment = lab_vm("running"), DeploymentState("Succeeded")
    op = BuildVmOperator(task_id="b", job={**JOB.to_dict(), "generalize": False, "appended": None})
    assert op.build_complete({}, event("deployment"))["action"] == "built"  # type: ignore[arg-type]
    assert dtl.tagged[0]["ImageType"] == "Specialized" and stopped == [JOB.vm_name]
