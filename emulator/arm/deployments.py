"""Microsoft.Resources/deployments in a resource group: create (an LRO running the template), get, list, cancel, delete.

Templates are checked by ``templates``; the record is ``deployments_records``; the lab VMs are ``deployments_vms``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import uuid
from typing import Any

from starlette.responses import JSONResponse, Response

from emulator.arm.core import ArmRoute, Call, Services, paged
from emulator.arm.deployments_records import NAMESPACE, DeploymentState, invalid_template, now, parse_body
from emulator.arm.deployments_vms import LabVmBuilds, ResourceFailure, is_vm_resource, parse_vm_resource
from emulator.arm.devtestlabs import DevTestLabs
from emulator.arm.errors import ArmError
from emulator.arm.labs import NAMESPACE as DTL_NAMESPACE
from emulator.arm.labs import dtl_time
from emulator.arm.lro import LroFailure, Operation, Work
from emulator.arm.template_language import Scope, TemplateError
from emulator.arm.templates import Evaluated, evaluate_template

log = logging.getLogger(__name__)

DEPLOYMENTS_PATH = "/subscriptions/{sub}/resourcegroups/{rg}/providers/Microsoft.Resources/deployments"
_ACTIVE = frozenset({"Accepted", "Running"})
_DEFAULT_LOCATION = "westeurope"
_FAILED_MESSAGE = (
    "At least one resource deployment operation failed. Please list deployment operations for details. "
    "Please see https://aka.ms/arm-deployment-operations for usage details."
)


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
            raise invalid_template(exc.message) from exc
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

    def _start(self, call: Call, record: DeploymentState, delay: float, work: Work) -> Operation:
        """Start ``call``'s long-running ``work`` on the deployment ``record``."""
        return self.services.lro.start(
            operation=call.operation,
            subscription_id=record.subscription_id,
            namespace=NAMESPACE,
            location=self._location(record.subscription_id, record.resource_group),
            resource_id=record.id,
            delay=delay,
            work=work,
        )

    # -- create ------------------------------------------------------------------------------------

    async def create_or_update(self, call: Call) -> Response:
        """Start a deployment (LRO): 201 (or 200 replacing a finished one), state ``Accepted``."""
        self.services.authorizer.check(call.principal, self._scope(call), f"{NAMESPACE}/deployments/write", write=True)
        p = call.params
        self.dtl.check_group(p["sub"], p["rg"])
        template, parameters = parse_body(await call.json_body())
        key = self._key(call)
        existing = self.records.get(key)
        if existing is not None and (existing.provisioning_state in _ACTIVE or existing.deleting):
            raise ArmError(
                409,
                "DeploymentActive",
                f"Unable to edit or replace deployment '{existing.name}': previous deployment from "
                f"'{dtl_time(existing.started)}' is still active. Please see https://aka.ms/arm-deploy for usage "
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
        op = self._start(call, record, 0, lambda: self._run(record))
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
        injected = self._injected_failure(record)
        try:
            details = [injected] if injected is not None else await self._deploy_resources(record)
        except Exception:
            # A failure of the local Azure itself (e.g. writing a disk) must not leave the deployment Running.
            log.exception("deployment %s crashed", record.name)
            details = [{"code": "InternalServerError", "message": "The resource operation failed unexpectedly."}]
        if record.provisioning_state == "Canceled":
            return
        if not details:
            try:
                record.outputs = record.evaluated.evaluated_outputs()
            except TemplateError as exc:
                details.append({"code": "InvalidTemplate", "message": exc.message})
        record.ended = now()
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

    async def _deploy_resources(self, record: DeploymentState) -> list[dict[str, str]]:
        """Create and build each VM of the template (until canceled); return the failures' details."""
        details: list[dict[str, str]] = []
        for resource in record.evaluated.resources:
            if record.provisioning_state == "Canceled":
                break
            try:
                request = parse_vm_resource(resource)
                lab, vm = self.vm_builds.create(record.subscription_id, record.resource_group, request)
            except ResourceFailure as failure:
                details.append({"code": failure.code, "message": failure.message})
                continue
            record.output_resources.append(f"{lab.id}/virtualmachines/{vm.name}".lower())
            await self.vm_builds.build(lab, vm)
        return details

    async def cancel(self, call: Call) -> Response:
        """Cancel a running deployment (204): it ends ``Canceled``; what it started is left as it is."""
        self.services.authorizer.check(
            call.principal, self._scope(call), f"{NAMESPACE}/deployments/cancel/action", write=True
        )
        self.dtl.check_group(call.params["sub"], call.params["rg"])
        record = self._record(call)
        if record.provisioning_state not in _ACTIVE:
            raise ArmError(
                409,
                "Conflict",
                f"The deployment '{record.name}' cannot be canceled: it is '{record.provisioning_state}', not "
                "'Accepted' or 'Running'.",
            )
        record.provisioning_state = "Canceled"
        record.ended = now()
        log.info("deployment %s canceled", record.name)
        return Response(status_code=204)

    async def check_existence(self, call: Call) -> Response:
        """Answer 204 when the deployment exists, else 404 (no body)."""
        self.services.authorizer.check(call.principal, self._scope(call), f"{NAMESPACE}/deployments/read", write=False)
        return Response(status_code=204 if self._key(call) in self.records else 404)

    def _injected_failure(self, record: DeploymentState) -> dict[str, str] | None:
        """Return the error of an ``LRO`` fault rule on ``Deployments_CreateOrUpdate`` (the deployment fails)."""
        faults = self.services.faults
        if faults is None:
            return None
        fault = faults.match(
            service="arm", operation="Deployments_CreateOrUpdate", method="LRO", path=record.id.lower()
        )
        if fault is None:
            return None
        return {
            "code": str(getattr(fault, "error_code", "") or "InternalServerError"),
            "message": str(getattr(fault, "message", "") or "Injected failure of the deployment."),
        }

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

            op = self._start(call, record, self.services.world.settings.lro_seconds, work)
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
        if not op.done:
            retry = max(1, min(10, math.ceil(self.services.world.settings.lro_seconds / 2)))
            return Response(status_code=202, headers={"Retry-After": str(retry)})
        if op.status != "Succeeded":
            error = op.error or {"code": "OperationFailed", "message": "The operation failed."}
            return JSONResponse({"error": error}, status_code=400)
        return Response(status_code=204)

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
            ArmRoute("HEAD", one, "Deployments_CheckExistence", read, self.check_existence),
            ArmRoute(
                "POST", one + "/cancel", "Deployments_Cancel", f"{NAMESPACE}/deployments/cancel/action", self.cancel
            ),
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
