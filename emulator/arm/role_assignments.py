"""Role assignments changed while the emulator runs (control API ``/_emulator/role-assignments``).

An administrator grants or removes a role between nights (the factory's principal losing *Storage Blob Data
Contributor* on one lab's storage account, say). ARM and the blob endpoint read a principal's roles on every
request, so a change applies at once — in Azure it can take minutes to propagate; tests wait on nothing.

- ``GET`` → ``{principal: [{"scope", "role"}]}`` for every principal.
- ``POST {"principal", "scope", "role"}`` → grants it (201; 200 when it was already granted).
- ``DELETE {"principal", "scope", "role"}`` → removes it (200; 404 when it was not granted).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from emulator.arm.control import read_json, refuse_non_loopback
from emulator.world import Principal, RoleAssignment, World, WorldError, role_assignment

log = logging.getLogger(__name__)


def _describe(principal: Principal) -> list[dict[str, str]]:
    return [{"scope": ra.scope, "role": ra.role} for ra in principal.roles]


def _same(a: RoleAssignment, b: RoleAssignment) -> bool:
    return a.scope.lower() == b.scope.lower() and a.role.lower() == b.role.lower()


class RoleAssignments:
    """Grant and remove the world's role assignments at run time."""

    def __init__(self, world: World) -> None:
        """Change the roles of ``world``'s principals."""
        self.world = world

    def _parse(self, body: Any) -> tuple[Principal, RoleAssignment]:
        if not isinstance(body, dict):
            raise WorldError('expected a JSON object {"principal", "scope", "role"}')
        name = str(body.get("principal", ""))
        principal = self.world.principals.get(name)
        if principal is None:
            raise WorldError(f"unknown principal {name!r} (known: {', '.join(self.world.principals)})")
        return principal, role_assignment(body, f"principal {name}")

    def grant(self, principal: Principal, assignment: RoleAssignment) -> bool:
        """Add ``assignment`` to the principal's roles; tell whether it was new."""
        if any(_same(ra, assignment) for ra in principal.roles):
            return False
        self.world.principals[principal.name] = replace(principal, roles=(*principal.roles, assignment))
        return True

    def remove(self, principal: Principal, assignment: RoleAssignment) -> bool:
        """Remove ``assignment`` from the principal's roles; tell whether it was there."""
        kept = tuple(ra for ra in principal.roles if not _same(ra, assignment))
        if len(kept) == len(principal.roles):
            return False
        self.world.principals[principal.name] = replace(principal, roles=kept)
        return True

    async def show(self, request: Request) -> Response:
        """Return every principal's role assignments."""
        refused = refuse_non_loopback(request)
        if refused is not None:
            return refused
        return JSONResponse({name: _describe(p) for name, p in self.world.principals.items()})

    async def change(self, request: Request) -> Response:
        """Grant (POST) or remove (DELETE) one role assignment."""
        refused = refuse_non_loopback(request)
        if refused is not None:
            return refused
        try:
            principal, assignment = self._parse(await read_json(request))
        except WorldError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        if request.method == "POST":
            changed = self.grant(principal, assignment)
            status = 201 if changed else 200
        else:
            changed = self.remove(principal, assignment)
            status = 200 if changed else 404
        verb = "granted" if request.method == "POST" else "removed"
        log.info("role %s %s %s at %s (changed: %s)", assignment.role, verb, principal.name, assignment.scope, changed)
        current = self.world.principals[principal.name]
        return JSONResponse({"principal": principal.name, "changed": changed, "roles": _describe(current)}, status)

    def routes(self) -> list[BaseRoute]:
        """Return the routes (mounted under ``/_emulator``)."""
        return [
            Route("/role-assignments", self.show, methods=["GET"]),
            Route("/role-assignments", self.change, methods=["POST", "DELETE"]),
        ]
