"""The control API under ``/_emulator`` (no bearer, loopback only): stats, faults, state, config, world changes."""

from __future__ import annotations

import inspect
import json
import logging
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from emulator.world import SETTING_KEYS, WorldError

if TYPE_CHECKING:
    from emulator.arm.app import ArmFrontDoor
    from emulator.arm.world_changes import WorldChanges
    from emulator.entra import Entra

log = logging.getLogger(__name__)

_LOOPBACK = {"127.0.0.1", "::1", "localhost"}


def refuse_non_loopback(request: Request) -> Response | None:
    """Answer 403 unless the client is on this machine (the control API has no bearer)."""
    host = request.client.host if request.client else ""
    if host not in _LOOPBACK:
        return JSONResponse({"error": "the control API only answers loopback clients"}, status_code=403)
    return None


async def read_json(request: Request) -> Any:
    """Parse a control request's JSON body (None when it is empty or not JSON)."""
    raw = await request.body()
    try:
        return json.loads(raw or b"null")
    except ValueError:
        return None


async def _maybe_await(value: Any) -> Any:
    if inspect.isawaitable(value):
        return await value
    return value


class Control:
    """Handlers of the control API."""

    def __init__(self, front: ArmFrontDoor, entra: Entra, storage: Any, faults: Any, changes: WorldChanges) -> None:
        self.front = front
        self.changes = changes
        self.entra = entra
        self.storage = storage
        self.faults = faults

    @staticmethod
    def _refuse(request: Request) -> Response | None:
        return refuse_non_loopback(request)

    async def _body(self, request: Request) -> Any:
        return await read_json(request)

    def arm_stats(self) -> dict[str, Any]:
        """Return the ``arm`` section of the stats."""
        services = self.front.services
        stats = services.stats
        return {
            "requests": dict(stats.requests),
            "reads": stats.reads,
            "writes": stats.writes,
            "actions": stats.actions,
            "lro_polls": stats.lro_polls,
            "while_copies_pending": dict(stats.while_copies_pending),
            "lros_started": services.lro.started,
            "lros_finished": services.lro.finished,
            "lros_in_progress": services.lro.in_progress(),
            "throttled": stats.throttled,
            "early_retries": services.faults.early_retries("arm") if services.faults is not None else 0,
        }

    async def stats(self, request: Request) -> Response:
        """Merge ARM and storage statistics."""
        if refused := self._refuse(request):
            return refused
        merged: dict[str, Any] = (
            dict(await _maybe_await(self.storage.stats())) if hasattr(self.storage, "stats") else {}
        )
        merged["arm"] = self.arm_stats()
        merged["disk_access"] = {**dict(merged.get("disk_access", {})), "granted_now": self.front.compute.granted_now()}
        merged["entra"] = {"tokens_issued": self.entra.tokens_issued}
        return JSONResponse(merged)

    async def reset_stats(self, request: Request) -> Response:
        """Zero ARM and storage counters."""
        if refused := self._refuse(request):
            return refused
        services = self.front.services
        services.stats.reset()
        services.lro.started = services.lro.in_progress()
        services.lro.finished = 0
        self.entra.tokens_issued = 0
        if hasattr(self.storage, "reset_stats"):
            await _maybe_await(self.storage.reset_stats())
        return Response(status_code=204)

    async def add_faults(self, request: Request) -> Response:
        """Add fault rules (a JSON list, or ``{"rules": [...]}``)."""
        if refused := self._refuse(request):
            return refused
        body = await self._body(request)
        rules = body.get("rules") if isinstance(body, dict) else body
        if not isinstance(rules, list) or not all(isinstance(r, dict) for r in rules):
            return JSONResponse({"error": "the body must be a JSON list of rule objects"}, status_code=400)
        if self.faults is None:
            return JSONResponse({"error": "faults are not available"}, status_code=501)
        try:
            self.faults.add(rules)
        except (ValueError, TypeError, KeyError) as exc:
            return JSONResponse({"error": f"invalid fault rule: {exc}"}, status_code=400)
        return JSONResponse({"rules": self._fault_snapshot()})

    def _fault_snapshot(self) -> Any:
        if self.faults is None or not hasattr(self.faults, "snapshot"):
            return []
        return self.faults.snapshot()

    async def list_faults(self, request: Request) -> Response:
        """Show the fault rules."""
        if refused := self._refuse(request):
            return refused
        return JSONResponse({"rules": self._fault_snapshot()})

    async def clear_faults(self, request: Request) -> Response:
        """Remove every fault rule."""
        if refused := self._refuse(request):
            return refused
        if self.faults is not None:
            self.faults.clear()
        return Response(status_code=204)

    async def state(self, request: Request) -> Response:
        """Describe labs, images, VMs, disk access and blobs."""
        if refused := self._refuse(request):
            return refused
        blobs = await self.storage.list_blobs() if hasattr(self.storage, "list_blobs") else {}
        return JSONResponse(
            {
                "labs": self.front.dtl.state(),
                "disk_access": self.front.compute.state(),
                "operations_in_progress": self.front.services.lro.in_progress(),
                "world_changes": list(self.changes.changes),
                "deployments": self.front.deployments.state(),
                "blobs": blobs,
            }
        )

    async def config(self, request: Request) -> Response:
        """Change the settings (``emulator.world.SETTING_KEYS``); answer the new settings."""
        if refused := self._refuse(request):
            return refused
        body = await self._body(request)
        if not isinstance(body, dict):
            return JSONResponse({"error": "the body must be a JSON object"}, status_code=400)
        settings = self.front.services.world.settings
        try:
            settings.update(body)
        except WorldError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        if "copy_seconds" in body and hasattr(self.storage, "configure"):
            await _maybe_await(self.storage.configure(copy_seconds=settings.copy_seconds))
        log.info("settings changed: %s", body)
        return JSONResponse({key: getattr(settings, key) for key in SETTING_KEYS})

    def routes(self) -> list[BaseRoute]:
        """Return the control API routes (mounted under ``/_emulator``)."""
        return [
            Route("/stats", self.stats, methods=["GET"]),
            Route("/reset-stats", self.reset_stats, methods=["POST"]),
            Route("/faults", self.add_faults, methods=["POST"]),
            Route("/faults", self.list_faults, methods=["GET"]),
            Route("/faults", self.clear_faults, methods=["DELETE"]),
            Route("/state", self.state, methods=["GET"]),
            Route("/config", self.config, methods=["POST"]),
            *self.changes.routes(),
        ]
