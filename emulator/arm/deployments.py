"""Microsoft.Resources/deployments in a resource group: create (an LRO evaluating the template), get, list, delete.

The template language lives in ``template_language``; the lab VMs a template makes in ``deployments_vms``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from starlette.responses import JSONResponse, Response

from emulator.arm.core import ArmRoute, Call, Services, paged
from emulator.arm.deployments_vms import LabVmBuilds, ResourceFailure, is_vm_resource, parse_vm_resource
from emulator.arm.devtestlabs import DevTestLabs
from emulator.arm.errors import ArmError
from emulator.arm.labs import NAMESPACE as DTL_NAMESPACE
from emulator.arm.lro import LroFailure
from emulator.arm.template_language import Evaluated, Scope, TemplateError, evaluate_template

log = logging.getLogger(__name__)

NAMESPACE = "Microsoft.Resources"
DEPLOYMENTS_PATH = "/subscriptions/{sub}/resourcegroups/{rg}/providers/Microsoft.Resources/deployments"
_ACTIVE = frozenset({"Accepted", "Running"})
_DEFAULT_LOCATION = "westeurope"
_FAILED_MESSAGE = (
    "At least one resource deployment operation failed. Please list deployment operations for details. "
    "Please see https://aka.ms/arm-deployment-operations for usage details."
)


def _now() -> datetime:
    return datetime.now(UTC)


def _arm_time(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


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
    started: datetime = field(default_factory=_now)
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
            "timestamp": _arm_time(self.ended or self.started),
            "duration": _duration(self.started, self.ended or _now()),
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


def _invalid_template(message: str) -> ArmError:
    return ArmError(400, "InvalidTemplate", f"Deployment template validation failed: '{message}'.")


def _parse_body(body: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
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


class Deployments:
    """State and handlers of resource group deployments."""

    def __init__(self, services: Services, dtl: DevTestLabs) -> None:
        self.services = services
        self.dtl = dtl
        self.vm_builds = LabVmBuilds(services, dtl)
        self.records: dict[tuple[str, str, str], DeploymentState] = {}
        self.by_operation: dict[str, DeploymentState] = {}

    # -- helpers -----------------------------------------------------------------------------------

    def _scope(self, call: Call) -> str:
        p = call.params
        return f"/subscriptions/{p['sub']}/resourceGroups/{p['rg']}/providers/{NAMESPACE}/deployments/{p['name']}"

    def _key(self, call: Call) -> tuple[str, str, str]:
        p = call.params
        return (p["sub"].lower(), p["rg"].lower(), p["name"].lower())

    def _location(self, sub: str, rg: str) -> str:
        """The resource group's location: that of its labs (the world gives groups none)."""
        for (lab_sub, lab_rg, _), lab in self.dtl.labs.items():
            if lab_sub == sub.lower() and lab_rg == rg.lower():
                return lab.spec.location
        return _DEFAULT_LOCATION

    def _record(self, call: Call) -> DeploymentState:
        record = self.records.get(self._key(call))
        if record is None:
            raise ArmError(404, "DeploymentNotFound", f"Deployment '{call.params['name']}' could not be found.")
        return record

    def _retry_after(self) -> str:
        settings = self.services.world.settings
        return str(max(1, min(10, math.ceil(min(settings.artifact_seconds, settings.vm_create_seconds)))))

    def _evaluate(self, call: Call, template: dict[str, Any], parameters: dict[str, Any]) -> Evaluated:
        p = call.params
        world = self.services.world
        scope = Scope(
            subscription_id=p["sub"],
            resource_group=p["rg"],
            location=self._location(p["sub"], p["rg"]),
            tenant_id=world.tenant_id,
            subscription_name=world.subscriptions.get(p["sub"].lower(), ""),
        )
        try:
            evaluated = evaluate_template(template, parameters, scope)
        except TemplateError as exc:
            raise _invalid_template(exc.message) from exc
        for resource in evaluated.resources:
            if not is_vm_resource(resource):
                raise ArmError(
                    400,
                    "InvalidTemplate",
                    f"Deployment template validation failed: 'The resource type '{resource.get('type')}' of "
                    f"resource '{resource.get('name')}' is not supported by the local Azure (it deploys "
                    "'Microsoft.DevTestLab/labs/virtualmachines').'.",
                )
            lab = str(resource["name"]).split("/")[0]
            lab_scope = f"/subscriptions/{p['sub']}/resourceGroups/{p['rg']}/providers/{DTL_NAMESPACE}/labs/{lab}"
            self.dtl.authorize(call, lab_scope, f"{DTL_NAMESPACE}/labs/virtualMachines/write", write=True)
        return evaluated

    # -- create ------------------------------------------------------------------------------------

    async def create_or_update(self, call: Call) -> Response:
        """Start a deployment (LRO): 201 (or 200 replacing a finished one), state ``Accepted``."""
        self.services.authorizer.check(call.principal, self._scope(call), f"{NAMESPACE}/deployments/write", write=True)
        p = call.params
        self.dtl.check_group(p["sub"], p["rg"])
        template, parameters = _parse_body(await call.json_body())
        key = self._key(call)
        existing = self.records.get(key)
        if existing is not None and (existing.provisioning_state in _ACTIVE or existing.deleting):
            raise ArmError(
                409,
                "DeploymentActive",
                f"Unable to edit or replace deployment '{existing.name}': previous deployment from "
                f"'{_arm_time(existing.started)}' is still active. Please see https://aka.ms/arm-deploy for usage "
                "details.",
            )
        evaluated = self._evaluate(call, template, parameters)
        canonical = json.dumps(template, sort_keys=True).encode()
        record = DeploymentState(
            subscription_id=p["sub"].lower(),
            resource_group=existing.resource_group if existing else p["rg"],
            name=existing.name if existing else p["name"],
            correlation_id=call.request.headers.get("x-ms-correlation-request-id") or str(uuid.uuid4()),
            template_hash=str(int(hashlib.sha256(canonical).hexdigest()[:15], 16)),
            evaluated=evaluated,
        )
        op = self.services.lro.start(
            operation=call.operation,
            subscription_id=record.subscription_id,
            namespace=NAMESPACE,
            location=self._location(p["sub"], p["rg"]),
            resource_id=record.id,
            delay=0,
            work=lambda: self._run(record),
        )
        record.operation_id = op.id
        self.records[key] = record
        self.by_operation[op.id] = record
        status_url = (
            f"{call.base_url}{DEPLOYMENTS_PATH.format(sub=p['sub'], rg=p['rg'])}/{p['name']}"
            f"/operationStatuses/{op.id}?api-version={call.api_version}"
        )
        headers = {"Azure-AsyncOperation": status_url, "Retry-After": self._retry_after()}
        log.info("deployment %s/%s accepted (%d resources)", p["rg"], p["name"], len(evaluated.resources))
        return JSONResponse(record.body(), status_code=200 if existing else 201, headers=headers)

    async def _run(self, record: DeploymentState) -> None:
        """Deploy the resources one after another; end ``Succeeded`` or ``Failed`` with ARM's error."""
        record.provisioning_state = "Running"
        details: list[dict[str, str]] = []
        for resource in record.evaluated.resources:
            try:
                request = parse_vm_resource(resource)
                lab, vm = self.vm_builds.create(record.subscription_id, record.resource_group, request)
            except ResourceFailure as failure:
                details.append({"code": failure.code, "message": failure.message})
                continue
            record.output_resources.append(f"{lab.id}/virtualmachines/{vm.name}".lower())
            await self.vm_builds.build(lab, vm)
        if not details:
            try:
                record.outputs = record.evaluated.evaluated_outputs()
            except TemplateError as exc:
                details.append({"code": "InvalidTemplate", "message": exc.message})
        record.ended = _now()
        if details:
            record.provisioning_state = "Failed"
            record.error = {
                "code": "DeploymentFailed",
                "target": record.id,
                "message": _FAILED_MESSAGE,
                "details": details,
            }
            log.info("deployment %s failed: %s", record.name, [d["code"] for d in details])
            raise LroFailure("DeploymentFailed", _FAILED_MESSAGE)
        record.provisioning_state = "Succeeded"
        log.info("deployment %s succeeded", record.name)

    async def operation_status(self, call: Call) -> Response:
        """Answer a poll of a deployment's Azure-AsyncOperation."""
        self.services.authorizer.check(call.principal, self._scope(call), f"{NAMESPACE}/deployments/read", write=False)
        record = self.by_operation.get(call.params["id"])
        if record is None or record.name.lower() != call.params["name"].lower():
            raise ArmError(404, "OperationNotFound", f"The operation '{call.params['id']}' was not found.")
        body: dict[str, Any] = {"status": record.provisioning_state}
        if record.error is not None:
            body["error"] = record.error
        headers = {"Retry-After": self._retry_after()} if record.provisioning_state in _ACTIVE else {}
        return JSONResponse(body, headers=headers)

    # -- read, list, delete ------------------------------------------------------------------------

    async def get(self, call: Call) -> Response:
        """Get one deployment."""
        self.services.authorizer.check(call.principal, self._scope(call), f"{NAMESPACE}/deployments/read", write=False)
        self.dtl.check_group(call.params["sub"], call.params["rg"])
        return JSONResponse(self._record(call).body())

    async def list_by_resource_group(self, call: Call) -> Response:
        """List a resource group's deployments."""
        p = call.params
        scope = f"/subscriptions/{p['sub']}/resourceGroups/{p['rg']}"
        self.services.authorizer.check(call.principal, scope, f"{NAMESPACE}/deployments/read", write=False)
        self.dtl.check_group(p["sub"], p["rg"])
        items = [
            record.body()
            for (sub, rg, _), record in self.records.items()
            if sub == p["sub"].lower() and rg == p["rg"].lower()
        ]
        return paged(call, items, self.services.world.settings.page_size)

    async def delete(self, call: Call) -> Response:
        """Delete a deployment record (LRO, Location only); 204 when there is none; 409 while it runs."""
        self.services.authorizer.check(call.principal, self._scope(call), f"{NAMESPACE}/deployments/delete", write=True)
        p = call.params
        self.dtl.check_group(p["sub"], p["rg"])
        key = self._key(call)
        record = self.records.get(key)
        if record is None:
            return Response(status_code=204)
        if record.provisioning_state in _ACTIVE:
            raise ArmError(
                409,
                "DeploymentActive",
                f"The deployment '{record.name}' cannot be deleted while it is running. Please see "
                "https://aka.ms/arm-deploy for usage details.",
            )
        if record.deleting is None:

            async def work() -> None:
                if self.records.get(key) is record:
                    del self.records[key]

            op = self.services.lro.start(
                operation=call.operation,
                subscription_id=record.subscription_id,
                namespace=NAMESPACE,
                location=self._location(p["sub"], p["rg"]),
                resource_id=record.id,
                delay=self.services.world.settings.lro_seconds,
                work=work,
            )
            record.deleting = op.id
        location = (
            f"{call.base_url}/subscriptions/{p['sub']}/operationresults/{record.deleting}"
            f"?api-version={call.api_version}"
        )
        retry = max(1, min(10, math.ceil(self.services.world.settings.lro_seconds / 2)))
        return Response(status_code=202, headers={"Location": location, "Retry-After": str(retry)})

    async def operation_result(self, call: Call) -> Response:
        """Answer a poll of a deployment deletion's Location: 202 while running, then 204."""
        op = self.services.lro.operations.get(call.params["id"])
        if op is None or op.subscription_id != call.params["sub"].lower() or op.namespace != NAMESPACE:
            raise ArmError(404, "OperationNotFound", f"The operation '{call.params['id']}' was not found.")
        self.services.authorizer.check(call.principal, op.resource_id, f"{NAMESPACE}/deployments/read", write=False)
        return self.services.lro.result_response(op, self.services.world.settings.lro_seconds)

    def state(self) -> list[dict[str, Any]]:
        """Describe every deployment record for ``GET /_emulator/state``."""
        return [record.describe() for record in self.records.values()]

    async def stop(self) -> None:
        """Cancel the VM builds' pending deallocations."""
        await self.vm_builds.stop()

    def routes(self) -> list[ArmRoute]:
        """Return the deployment operations (and ``VirtualMachines_Update``)."""
        one = DEPLOYMENTS_PATH + "/{name}"
        read, write, delete = (f"{NAMESPACE}/deployments/{verb}" for verb in ("read", "write", "delete"))
        return [
            ArmRoute("GET", DEPLOYMENTS_PATH, "Deployments_ListByResourceGroup", read, self.list_by_resource_group),
            ArmRoute("PUT", one, "Deployments_CreateOrUpdate", write, self.create_or_update),
            ArmRoute("GET", one, "Deployments_Get", read, self.get),
            ArmRoute("DELETE", one, "Deployments_Delete", delete, self.delete),
            ArmRoute(
                "GET",
                one + "/operationStatuses/{id}",
                "Deployments_OperationStatus",
                read,
                self.operation_status,
                poll=True,
            ),
            ArmRoute(
                "GET",
                "/subscriptions/{sub}/operationresults/{id}",
                "Deployments_OperationResult",
                read,
                self.operation_result,
                poll=True,
            ),
            *self.vm_builds.routes(),
        ]
