"""The ARM front door: routing, authentication, faults, stats and ARM's standard headers."""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import Receive, Scope, Send

from emulator.arm.auth import Authorizer
from emulator.arm.compute import Compute
from emulator.arm.control import Control
from emulator.arm.core import ArmRoute, Call, FaultsApi, RateLimits, Services, StorageApi
from emulator.arm.deployments import Deployments
from emulator.arm.devtestlabs import DevTestLabs
from emulator.arm.errors import ArmError
from emulator.arm.lro import LroManager
from emulator.arm.world_changes import WorldChanges
from emulator.entra import Entra
from emulator.world import World

log = logging.getLogger(__name__)

_METHODS = ["GET", "PUT", "POST", "DELETE", "PATCH", "HEAD", "OPTIONS"]
_API_VERSION = re.compile(r"^\d{4}-\d{2}-\d{2}(-preview)?$")
_OPERATIONS = "/subscriptions/{sub}/providers/{ns}/locations/{loc}"
#: Default ARM error code per injected status.
_FAULT_CODES = {
    429: "SubscriptionRequestsThrottled",
    500: "InternalServerError",
    502: "BadGateway",
    503: "ServiceUnavailable",
    504: "GatewayTimeout",
    409: "Conflict",
}


class ConnectionResetByFault(Exception):
    """Raised mid-response to drop the connection (an injected ``reset`` fault)."""


class _HideInjectedResets(logging.Filter):
    """Drop uvicorn's traceback for connections broken on purpose by a ``reset`` fault."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Keep every record but those caused by ConnectionResetByFault."""
        return not (record.exc_info and isinstance(record.exc_info[1], ConnectionResetByFault))


class ResetResponse(Response):
    """Start a response, send part of the body, then break the connection."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Send a truncated answer and abort."""
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"4096")]})
        await send({"type": "http.response.body", "body": b'{"value": [', "more_body": True})
        raise ConnectionResetByFault("connection reset by an injected fault")


class ArmFrontDoor:
    """Dispatch ARM requests to the DevTest Labs and Compute handlers."""

    def __init__(self, services: Services, dtl: DevTestLabs, compute: Compute, deployments: Deployments) -> None:
        self.services = services
        self.dtl = dtl
        self.compute = compute
        self.deployments = deployments
        self.rate_limits = RateLimits()
        routes = [
            *dtl.routes(),
            *compute.routes(),
            *deployments.routes(),
            ArmRoute(
                "GET", _OPERATIONS + "/operations/{id}", "AsyncOperations_Get", "", self.operation_status, poll=True
            ),
            ArmRoute(
                "GET",
                _OPERATIONS + "/operationResults/{id}",
                "OperationResults_Get",
                "",
                self.operation_result,
                poll=True,
            ),
        ]
        self.routes = [(route, route.compile()) for route in routes]

    def _match(self, request: Request) -> tuple[ArmRoute, dict[str, str]]:
        path = request.url.path
        allowed = False
        for route, pattern in self.routes:
            match = pattern.match(path)
            if match is None:
                continue
            if route.method == request.method:
                return route, match.groupdict()
            allowed = True
        if allowed:
            raise ArmError(405, "MethodNotAllowed", f"The HTTP method '{request.method}' is not supported at '{path}'.")
        raise ArmError(
            404,
            "InvalidResourceType",
            f"The resource type for the path '{path}' could not be found in the local Azure.",
        )

    @staticmethod
    def _api_version(request: Request, route: ArmRoute) -> str:
        version = next((v for k, v in request.query_params.multi_items() if k.lower() == "api-version"), None)
        if not version:
            raise ArmError(
                400, "MissingApiVersionParameter", "The api-version query parameter (?api-version=) is required."
            )
        if (route.api_versions and version not in route.api_versions) or not _API_VERSION.match(version):
            supported = ", ".join(route.api_versions) or "a date-formatted version"
            raise ArmError(
                400,
                "InvalidApiVersionParameter",
                f"The api-version '{version}' is invalid. The supported versions are '{supported}'.",
            )
        return version

    async def _fault(self, route: ArmRoute, request: Request, subscription: str) -> Response | None:
        faults = self.services.faults
        if faults is None:
            return None
        where = {"service": "arm", "operation": route.operation, "method": request.method, "path": request.url.path}
        faults.check_early_retry(**where)
        fault = faults.match(**where)
        if fault is None:
            return None
        kind = getattr(fault, "kind", "status")
        if kind == "delay":
            await asyncio.sleep(float(getattr(fault, "delay", 0) or 0))
            return None
        if kind == "reset":
            log.info("fault: resetting %s %s", request.method, request.url.path)
            return ResetResponse()
        status = int(getattr(fault, "status", 0) or 429)
        code = getattr(fault, "error_code", None) or _FAULT_CODES.get(status, "InjectedFault")
        retry_after = getattr(fault, "retry_after", None)
        headers = {"Retry-After": f"{float(retry_after):g}"} if retry_after is not None else {}
        if retry_after is not None and status in {429, 503}:
            faults.record_throttle(**where, retry_after=float(retry_after))
        if status == 429:
            self.services.stats.throttled += 1
            kind_word = "read" if request.method == "GET" else "write"
            message = (
                f"Number of {kind_word} requests for subscription '{subscription}' exceeded the limit for time "
                f"interval '01:00:00'. Please try again after '{float(retry_after or 1):g}' seconds."
            )
        else:
            message = str(getattr(fault, "message", "") or f"Injected fault (status {status}).")
        log.info("fault: %s %s -> %s %s", request.method, request.url.path, status, code)
        return ArmError(status, str(code), message, headers=headers).response()

    async def dispatch(self, request: Request) -> Response:
        """Handle one ARM request end to end."""
        request_id = str(uuid.uuid4())
        correlation = request.headers.get("x-ms-correlation-request-id") or str(uuid.uuid4())
        subscription = ""
        try:
            route, params = self._match(request)
            subscription = params.get("sub", "")
            self.services.stats.count(
                route.operation,
                request.method,
                poll=route.poll,
                copies_pending=self.services.storage.pending_copies(),
            )
            principal = self.services.authorizer.authenticate(request)
            api_version = self._api_version(request, route)
            faulted = await self._fault(route, request, subscription)
            if faulted is not None:
                response = faulted
            else:
                call = Call(
                    request=request,
                    principal=principal,
                    params=params,
                    operation=route.operation,
                    api_version=api_version,
                )
                response = await route.handler(call)
        except ArmError as exc:
            response = exc.response()
        response.headers["x-ms-request-id"] = request_id
        response.headers["x-ms-correlation-request-id"] = correlation
        response.headers["x-ms-routing-request-id"] = f"LOCAL:{request_id}"
        if subscription:
            for key, value in self.rate_limits.headers(subscription, request.method).items():
                response.headers[key] = value
        return response

    # -- LRO polling -------------------------------------------------------------------------------

    def _operation(self, call: Call) -> Any:
        op = self.services.lro.operations.get(call.params["id"])
        if op is None or op.subscription_id != call.params["sub"].lower():
            raise ArmError(404, "OperationNotFound", f"The operation '{call.params['id']}' was not found.")
        if not self.services.authorizer.any_role_within(call.principal, op.resource_id):
            self.services.authorizer.check(call.principal, op.resource_id, "operations/read", write=False)
        return op

    async def operation_status(self, call: Call) -> Response:
        """Answer a poll of an Azure-AsyncOperation status resource."""
        op = self._operation(call)
        return self.services.lro.status_response(op, self.services.world.settings.lro_seconds)

    async def operation_result(self, call: Call) -> Response:
        """Answer a poll of an operation's Location (result) resource."""
        op = self._operation(call)
        return self.services.lro.result_response(op, self.services.world.settings.lro_seconds)


def build_app(
    world: World,
    entra: Entra,
    storage: StorageApi,
    faults: FaultsApi | None,
) -> tuple[Starlette, ArmFrontDoor]:
    """Assemble Entra ID, the control API and ARM into one Starlette app."""
    services = Services(
        world=world,
        storage=storage,
        faults=faults,
        lro=LroManager(),
        authorizer=Authorizer(world, entra),
    )
    dtl = DevTestLabs(services)
    compute = Compute(services, dtl)
    front = ArmFrontDoor(services, dtl, compute, Deployments(services, dtl))
    uvicorn_log = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _HideInjectedResets) for f in uvicorn_log.filters):
        uvicorn_log.addFilter(_HideInjectedResets())
    control = Control(front, entra, storage, faults, WorldChanges(dtl, compute, storage))
    routes: list[BaseRoute] = [*entra.routes(), Mount("/_emulator", routes=control.routes())]
    routes.append(Route("/{path:path}", front.dispatch, methods=_METHODS))
    return Starlette(routes=routes), front
