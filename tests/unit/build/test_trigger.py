"""BuildTrigger: serialized without secrets, the state → event mappings, run() against fake async hooks."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

import pytest

from image_factory.build import hook as build_hook
from image_factory.build.hook import DeploymentState
from image_factory.build.trigger import BuildEvent, BuildTrigger, deallocation_event, deployment_event
from image_factory.hooks import devtestlabs


def trigger(phase: str = "deployment", deadline: float | None = None) -> BuildTrigger:
    return BuildTrigger(
        phase=phase,  # type: ignore[arg-type]
        subscription_id="sub",
        resource_group="rg-f",
        lab_name="ImageFactory",
        vm_name="Datacente-1a2b3",
        deployment_name="Build-Datacente-1a2b3",
        arm_conn_id="image_factory_arm",
        deadline=deadline or time.time() + 60,
        poll_interval=0.1,
    )


def test_it_serializes_names_and_times_only_and_round_trips() -> None:
    path, kwargs = trigger().serialize()
    assert path == "image_factory.build.trigger.BuildTrigger"
    assert not {k for k in kwargs if "pass" in k or "secret" in k}
    assert BuildTrigger(**kwargs).serialize() == (path, kwargs)
    with pytest.raises(ValueError, match="phase"):
        trigger("nap")


def test_deployment_states_map_to_events() -> None:
    assert deployment_event("b", DeploymentState("Running"), 0, 10) is None
    assert deployment_event("b", DeploymentState("Succeeded"), 0, 10).status == "success"  # type: ignore[union-attr]
    failed = deployment_event("b", DeploymentState("Failed", "DeploymentFailed: x; Conflict: y"), 0, 10)
    assert failed is not None and failed.status == "error" and "Conflict: y" in failed.message
    late = deployment_event("b", DeploymentState("Running"), 11, 10)
    assert late is not None and late.timeout and "DeployMinutes" in late.message
    assert "gone" in deployment_event("b", None, 0, 10).message  # type: ignore[union-attr]


def test_power_states_map_to_events() -> None:
    assert deallocation_event("b", "stopped", 0, 10) is None
    assert deallocation_event("b", "deallocated", 0, 10).status == "success"  # type: ignore[union-attr]
    late = deallocation_event("b", "running", 11, 10)
    assert late is not None and late.timeout and "StopMinutes" in late.message


def test_an_event_reads_back_and_a_foreign_one_is_an_error() -> None:
    fired = BuildEvent(phase="deallocation", status="success", label="b", message="m", state="deallocated")
    assert BuildEvent.from_payload(fired.payload()) == fired
    assert BuildEvent.from_payload({"kind": "copy", "message": "x"}).status == "error"


class FakeDeployments:
    def __init__(self, states: list[DeploymentState]) -> None:
        self.states = states
        self.closed = False

    async def state_async(self, subscription_id: str, resource_group: str, name: str) -> DeploymentState | None:
        return self.states.pop(0) if len(self.states) > 1 else self.states[0]

    async def aclose(self) -> None:
        self.closed = True


async def test_run_waits_for_the_deployment_to_end(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeDeployments([DeploymentState("Accepted"), DeploymentState("Running"), DeploymentState("Succeeded")])
    monkeypatch.setattr(build_hook, "DeploymentsAsyncHook", lambda conn_id: fake)
    events = [e async for e in trigger().run()]
    assert len(events) == 1 and events[0].payload["status"] == "success" and events[0].payload["phase"] == "deployment"
    assert fake.closed and fake.states == [DeploymentState("Succeeded")]


async def test_run_waits_for_the_vm_to_be_deallocated(monkeypatch: pytest.MonkeyPatch) -> None:
    powers = ["running", "stopped", "deallocated"]

    class Client:
        class virtual_machines:  # the SDK's attribute name
            @staticmethod
            async def get(*args: Any, **kwargs: Any) -> Any:
                code = powers.pop(0) if len(powers) > 1 else powers[0]
                return SimpleNamespace(
                    compute_vm=SimpleNamespace(statuses=[SimpleNamespace(code=f"PowerState/{code}")])
                )

    class Hook:
        def __init__(self, conn_id: str) -> None:
            pass

        async def async_client(self, subscription_id: str) -> Any:
            return Client

        async def __aenter__(self) -> Hook:
            return self

        async def __aexit__(self, *exc: object) -> None:
            return None

    monkeypatch.setattr(devtestlabs, "DevTestLabsAsyncHook", Hook)
    events = [e async for e in trigger("deallocation").run()]
    assert events[0].payload["status"] == "success" and events[0].payload["state"] == "deallocated"


async def test_run_turns_an_exception_into_an_error_event(monkeypatch: pytest.MonkeyPatch) -> None:
    class Broken(FakeDeployments):
        async def state_async(self, *args: str) -> DeploymentState | None:
            raise RuntimeError("boom sig=SECRET")

    monkeypatch.setattr(build_hook, "DeploymentsAsyncHook", lambda conn_id: Broken([]))
    events = [e async for e in trigger().run()]
    assert events[0].payload["status"] == "error" and "SECRET" not in events[0].payload["message"]


def test_the_sdk_s_state_enum_reads_as_its_value() -> None:
    from azure.mgmt.resource.deployments.models import DeploymentExtended

    found = DeploymentExtended({"properties": {"provisioningState": "Succeeded"}})
    assert build_hook.deployment_state(found) == DeploymentState("Succeeded")
    failed = DeploymentExtended(
        {
            "properties": {
                "provisioningState": "Failed",
                "error": {
                    "code": "DeploymentFailed",
                    "message": "one failed",
                    "details": [{"code": "Conflict", "message": "VM exists"}],
                },
            }
        }
    )
    assert build_hook.deployment_state(failed) == DeploymentState(
        "Failed", "DeploymentFailed: one failed; Conflict: VM exists"
    )
