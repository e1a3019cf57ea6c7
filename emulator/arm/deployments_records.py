"""A deployment record as ARM keeps it (``DeploymentExtended``) and the checks of a deployment's PUT body."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from emulator.arm.errors import ArmError
from emulator.arm.labs import NAMESPACE as DTL_NAMESPACE
from emulator.arm.labs import dtl_time
from emulator.arm.templates import Evaluated

NAMESPACE = "Microsoft.Resources"


def now() -> datetime:
    return datetime.now(UTC)


def _duration(start: datetime, end: datetime) -> str:
    return f"PT{max(0.0, (end - start).total_seconds()):.7f}S"


@dataclass
class DeploymentState:
    """One deployment record of a resource group."""

    subscription_id: str
    resource_group: str
    name: str
    correlation_id: str
    template_hash: str
    evaluated: Evaluated
    provisioning_state: str = "Accepted"
    started: datetime = field(default_factory=now)
    ended: datetime | None = None
    operation_id: str = ""
    error: dict[str, Any] | None = None
    outputs: dict[str, Any] | None = None
    output_resources: list[str] = field(default_factory=list)
    deleting: str | None = None

    @property
    def id(self) -> str:
        """Resource id of the deployment."""
        return (
            f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
            f"/providers/{NAMESPACE}/deployments/{self.name}"
        )

    def body(self) -> dict[str, Any]:
        """Render the deployment as ``DeploymentExtended``."""
        resources = self.evaluated.resources
        props: dict[str, Any] = {
            "templateHash": self.template_hash,
            "parameters": {p.name: p.echo() for p in self.evaluated.parameters},
            "mode": "Incremental",
            "provisioningState": self.provisioning_state,
            "timestamp": dtl_time(self.ended or self.started),
            "duration": _duration(self.started, self.ended or now()),
            "correlationId": self.correlation_id,
            "providers": [
                {
                    "namespace": DTL_NAMESPACE,
                    "resourceTypes": [
                        {
                            "resourceType": "labs/virtualmachines",
                            "locations": sorted({str(r.get("location")) for r in resources}),
                        }
                    ],
                }
            ]
            if resources
            else [],
            "dependencies": [],
            "outputResources": [{"id": rid} for rid in self.output_resources],
        }
        if self.outputs is not None:
            props["outputs"] = self.outputs
        if self.error is not None:
            props["error"] = self.error
        return {"id": self.id, "name": self.name, "type": f"{NAMESPACE}/deployments", "properties": props}

    def describe(self) -> dict[str, Any]:
        """Describe the deployment for ``GET /_emulator/state``."""
        return {
            "subscription": self.subscription_id,
            "resource_group": self.resource_group,
            "name": self.name,
            "provisioning_state": self.provisioning_state,
            "vms": [str(r["name"]) for r in self.evaluated.resources],
            "error": self.error,
        }


def invalid_template(message: str) -> ArmError:
    return ArmError(400, "InvalidTemplate", f"Deployment template validation failed: '{message}'.")


def parse_body(body: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return the template and parameters of a ``Deployment`` body; raise 400 as ARM does."""
    props = body.get("properties")
    if not isinstance(props, dict):
        raise ArmError(400, "InvalidRequestContent", "The request content was invalid: 'properties' is required.")
    if props.get("templateLink") is not None or props.get("parametersLink") is not None:
        raise ArmError(
            400,
            "InvalidRequestContent",
            "The local Azure deploys inline templates only: pass 'template' and 'parameters', not links.",
        )
    mode = props.get("mode")
    if not isinstance(mode, str) or mode.lower() not in {"incremental", "complete"}:
        raise ArmError(
            400, "InvalidRequestContent", "The request content was invalid: 'mode' must be 'Incremental' or 'Complete'."
        )
    if mode.lower() == "complete":
        raise ArmError(400, "InvalidRequestContent", "The local Azure deploys in 'Incremental' mode only.")
    template = props.get("template")
    if not isinstance(template, dict):
        raise ArmError(400, "InvalidRequestContent", "The request content was invalid: 'template' is required.")
    parameters = props.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise ArmError(400, "InvalidRequestContent", "The request content was invalid: 'parameters' must be an object.")
    return template, parameters
