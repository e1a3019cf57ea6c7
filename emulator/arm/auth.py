"""Bearer-token authentication and role-based authorization of ARM requests."""

from __future__ import annotations

from starlette.requests import Request

from emulator.arm.errors import ArmError
from emulator.entra import Entra, TokenError
from emulator.world import Principal, World

_CHALLENGE = 'Bearer authorization_uri="{authority}/{tenant}", error="invalid_token", error_description="{description}"'


def covers(scope: str, resource_id: str) -> bool:
    """Tell whether a role assignment's ``scope`` covers ``resource_id`` (the same id, or a parent of it)."""
    scope_l = scope.lower().rstrip("/")
    rid = resource_id.lower().rstrip("/")
    return rid == scope_l or rid.startswith(scope_l + "/")


class Authorizer:
    """Authenticate bearer tokens and check the principal's role assignments."""

    def __init__(self, world: World, entra: Entra) -> None:
        self.world = world
        self.entra = entra

    def _unauthorized(self, request: Request, code: str, message: str) -> ArmError:
        authority = f"{request.url.scheme}://{request.url.netloc}"
        challenge = _CHALLENGE.format(authority=authority, tenant=self.world.tenant_id, description=message)
        return ArmError(401, code, message, headers={"WWW-Authenticate": challenge})

    def authenticate(self, request: Request) -> Principal:
        """Return the principal of the request's bearer token; raise a 401 ArmError otherwise."""
        header = request.headers.get("authorization")
        if not header:
            raise self._unauthorized(
                request,
                "AuthenticationFailed",
                "Authentication failed. The 'Authorization' header is missing.",
            )
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise self._unauthorized(
                request,
                "AuthenticationFailedInvalidHeader",
                "Authentication failed. The 'Authorization' header is provided in an invalid format.",
            )
        try:
            claims = self.entra.validate(token.strip())
        except TokenError as exc:
            raise self._unauthorized(request, exc.code, exc.message) from exc
        principal = self.world.principal_by_object_id(claims.object_id)
        if principal is None:
            raise self._unauthorized(request, "InvalidAuthenticationToken", "The access token is invalid.")
        return principal

    @staticmethod
    def role_at(principal: Principal, resource_id: str, *, write: bool) -> bool:
        """Tell whether a role of ``principal`` covering ``resource_id`` allows the access."""
        return any(
            ra.control_plane and covers(ra.scope, resource_id) and (ra.can_write or not write) for ra in principal.roles
        )

    @staticmethod
    def any_role_within(principal: Principal, prefix: str) -> bool:
        """Tell whether the principal holds any role at or below (or above) ``prefix``."""
        return any(
            ra.control_plane and (covers(ra.scope, prefix) or covers(prefix, ra.scope)) for ra in principal.roles
        )

    def check(self, principal: Principal, scope: str, action: str, *, write: bool) -> None:
        """Raise 403 AuthorizationFailed unless the principal may perform ``action`` on ``scope``."""
        if self.role_at(principal, scope, write=write):
            return
        raise ArmError(
            403,
            "AuthorizationFailed",
            f"The client '{principal.object_id}' with object id '{principal.object_id}' does not have "
            f"authorization to perform action '{action}' over scope '{scope}' or the scope is invalid. "
            "If access was recently granted, please refresh your credentials.",
        )
