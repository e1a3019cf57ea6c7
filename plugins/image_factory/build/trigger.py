"""Await a build in the triggerer: first its deployment (the VM and its artifacts), then the VM's deallocation.

No worker is held for the 30–90 minutes a real build takes. ``BuildTrigger`` serializes names, ids and times
only — never the admin password, which only the deployment PUT made in ``BuildVmOperator.execute`` carries. It
fires one ``BuildEvent``; the operator resumes on it. The state → event mappings are pure functions.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from airflow.triggers.base import BaseTrigger, TriggerEvent

from image_factory.build.hook import DeploymentState
from image_factory.polling import PollSchedule
from image_factory.redact import redact
from image_factory.states import FAILED_PROVISIONING, ProvisioningState
from image_factory.triggers import hold_until

CLASSPATH = "image_factory.build.trigger.BuildTrigger"
Phase = Literal["deployment", "deallocation"]
PHASES: tuple[Phase, ...] = ("deployment", "deallocation")
#: The power state a generalized (or stopped) factory VM ends in, which capture waits for.
DEALLOCATED = "deallocated"


@dataclass(frozen=True, kw_only=True)
class BuildEvent:
    """A phase of a build ended: ``status`` ``success``/``error``, the state last read, a redacted message."""

    phase: Phase
    status: Literal["success", "error"]
    label: str
    message: str
    state: str | None = None
    timeout: bool = False

    def payload(self) -> dict[str, Any]:
        return {"kind": "build", **dataclasses.asdict(self)}

    @classmethod
    def from_payload(cls, data: dict[str, Any]) -> BuildEvent:
        """Read an event back; anything that is not a build event reads as an error."""
        names = {f.name for f in dataclasses.fields(cls)}
        if data.get("kind") != "build" or data.get("phase") not in PHASES:
            return cls(phase="deployment", status="error", label="", message=str(data.get("message", data)))
        return cls(**{k: v for k, v in data.items() if k in names})


def _fired(phase: Phase, label: str, state: str | None) -> Callable[..., BuildEvent]:
    """Return a maker of this phase's events: ``make(status, text, timeout=False)`` prefixes ``label``."""

    def make(status: Literal["success", "error"], text: str, *, timeout: bool = False) -> BuildEvent:
        return BuildEvent(
            phase=phase, status=status, label=label, message=f"{label}: {text}", state=state, timeout=timeout
        )

    return make


def deployment_event(label: str, state: DeploymentState | None, now: float, deadline: float) -> BuildEvent | None:
    """Map a deployment's state (None: no record) to the event to fire, or None to keep waiting."""
    value = state.provisioning_state if state is not None else None
    fired = _fired("deployment", label, value)
    if state is None:
        return fired("error", "the deployment is gone")
    if ProvisioningState.SUCCEEDED.matches(value):
        return fired("success", "deployed")
    if any(s.matches(value) for s in FAILED_PROVISIONING):
        return fired("error", f"deployment {value}" + (f": {state.error}" if state.error else ""))
    if now >= deadline:
        return fired(
            "error", f"deployment still {value} at its deadline (factory.json Build.DeployMinutes)", timeout=True
        )
    return None


def deallocation_event(label: str, power_state: str | None, now: float, deadline: float) -> BuildEvent | None:
    """Map the VM's power state (None: the VM is gone) to the event to fire, or None to keep waiting."""
    fired = _fired("deallocation", label, power_state)
    if power_state is None:
        return fired("error", "the VM is gone")
    if power_state.casefold() == DEALLOCATED:
        return fired("success", "deallocated")
    if now >= deadline:
        return fired(
            "error",
            f"the VM is still {power_state} at its deadline (factory.json Build.StopMinutes): its sysprep / "
            "deprovision artifact did not stop it",
            timeout=True,
        )
    return None


async def wait_for(
    read: Callable[[], Awaitable[Any]],
    decide: Callable[[Any, float], BuildEvent | None],
    *,
    poll_interval: float,
    deadline: float,
    log: Any,
    label: str,
) -> BuildEvent:
    """Read, decide, back off (1 s up to ``poll_interval``) until ``decide`` fires an event; return it."""
    schedule = PollSchedule(cap=poll_interval)
    while True:
        value = await read()
        fired = decide(value, time.time())
        if fired is not None:
            return fired
        log.info("%s: %s", label, getattr(value, "provisioning_state", value))
        await asyncio.sleep(max(0.0, min(schedule.next_delay(time.time()), deadline - time.time())))


class BuildTrigger(BaseTrigger):
    """Poll a build's deployment until it ends, or its VM until it is deallocated (``phase``), or the deadline.

    :param deadline: absolute deadline, epoch seconds (survives a triggerer restart).
    :param not_before: epoch time before which no event is fired (see ``settings.MIN_TRIGGER_SECONDS``).
    """

    def __init__(
        self,
        *,
        phase: Phase,
        subscription_id: str,
        resource_group: str,
        lab_name: str,
        vm_name: str,
        deployment_name: str,
        arm_conn_id: str,
        deadline: float,
        poll_interval: float = 15.0,
        label: str = "",
        not_before: float | None = None,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        if phase not in PHASES:
            raise ValueError(f"phase must be one of {PHASES}, not {phase!r}")
        self.phase: Phase = phase
        self.subscription_id = subscription_id
        self.resource_group = resource_group
        self.lab_name = lab_name
        self.vm_name = vm_name
        self.deployment_name = deployment_name
        self.arm_conn_id = arm_conn_id
        self.deadline = float(deadline)
        self.poll_interval = float(poll_interval)
        self.label = label or f"build {vm_name}"
        self.not_before = not_before

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Serialize the trigger's arguments: names, ids and times (no password, no secret)."""
        return (
            CLASSPATH,
            {
                "phase": self.phase,
                "subscription_id": self.subscription_id,
                "resource_group": self.resource_group,
                "lab_name": self.lab_name,
                "vm_name": self.vm_name,
                "deployment_name": self.deployment_name,
                "arm_conn_id": self.arm_conn_id,
                "deadline": self.deadline,
                "poll_interval": self.poll_interval,
                "label": self.label,
                "not_before": self.not_before,
            },
        )

    async def _deployment(self) -> BuildEvent:
        from image_factory.build.hook import DeploymentsAsyncHook  # noqa: PLC0415 - SDK in the triggerer only

        hook = DeploymentsAsyncHook(self.arm_conn_id)
        try:

            async def read() -> DeploymentState | None:
                return await hook.state_async(self.subscription_id, self.resource_group, self.deployment_name)

            return await wait_for(
                read,
                lambda state, now: deployment_event(self.label, state, now, self.deadline),
                poll_interval=self.poll_interval,
                deadline=self.deadline,
                log=self.log,
                label=self.label,
            )
        finally:
            await hook.aclose()

    async def _deallocation(self) -> BuildEvent:
        from image_factory.hooks.devtestlabs import VM_EXPAND, DevTestLabsAsyncHook  # noqa: PLC0415
        from image_factory.hooks.lab_resources import power_state  # noqa: PLC0415

        async with DevTestLabsAsyncHook(self.arm_conn_id) as hook:

            async def read() -> str | None:
                from azure.core.exceptions import ResourceNotFoundError  # noqa: PLC0415

                client = await hook.async_client(self.subscription_id)
                try:
                    vm = await client.virtual_machines.get(
                        self.resource_group, self.lab_name, self.vm_name, expand=VM_EXPAND
                    )
                except ResourceNotFoundError:
                    return None
                return power_state(vm)

            return await wait_for(
                read,
                lambda state, now: deallocation_event(self.label, state, now, self.deadline),
                poll_interval=self.poll_interval,
                deadline=self.deadline,
                log=self.log,
                label=self.label,
            )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Wait for this phase's end and yield one event (an exception becomes an error event)."""
        try:
            fired = await (self._deployment() if self.phase == "deployment" else self._deallocation())
            await hold_until(self.not_before)
        except Exception as exc:
            fired = BuildEvent(
                phase=self.phase,
                status="error",
                label=self.label,
                message=f"{self.label}: {type(exc).__name__}: {redact(str(exc))}",
            )
        yield TriggerEvent(fired.payload())  # type: ignore[no-untyped-call]
