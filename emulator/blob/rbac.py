"""Data-plane RBAC of the blob endpoint: Entra bearer tokens checked against the world's Blob data roles.

Azure Storage accepts ``Authorization: Bearer <token>`` for audience ``https://storage.azure.com`` and authorizes
it with the principal's *data* roles only (Storage Blob Data Owner / Contributor / Reader at the account, its
resource group, its subscription, or a container as ``…/blobServices/default/containers/<name>``): ARM's Owner and
Contributor grant no data action. Azurite behind the proxy never sees the token: an authorized request is
forwarded with the emulator's own account SAS instead.

Answers, as Azure gives them:

- a bad token (signature, audience, expiry, tenant) → ``401 InvalidAuthenticationInfo`` with an
  ``AuthenticationErrorDetail`` and a ``WWW-Authenticate: Bearer authorization_uri=… resource_id=…`` challenge;
- a valid token without a role granting the operation's data action → ``403 AuthorizationPermissionMismatch``.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass

from emulator.arm.auth import covers
from emulator.blob.operations import BlobRequest
from emulator.blob.responses import Buffered, storage_error
from emulator.entra import STORAGE_AUDIENCES, Entra, TokenError
from emulator.world import Principal, World

log = logging.getLogger(__name__)

_AUTH_MESSAGE = (
    "Server failed to authenticate the request. Please refer to the information in the www-authenticate header."
)
_PERMISSION_MESSAGE = "This request is not authorized to perform this operation using this permission."
#: Azure's ``AuthenticationErrorDetail`` for each way a token is refused.
_DETAILS = {
    "ExpiredAuthenticationToken": "Lifetime validation failed. The token is expired.",
    "InvalidAuthenticationTokenAudience": "Audience validation failed. Audience did not match.",
    "InvalidAuthenticationTokenTenant": "Issuer validation failed. Issuer did not match.",
    "InvalidAuthenticationToken": "Signature validation failed. Signature is invalid.",
}


def data_action(request: BlobRequest) -> str:
    """Return the data action a request needs: ``read`` (GET, HEAD), ``delete`` (DELETE) or ``write``."""
    if request.method in ("GET", "HEAD") or request.operation == "GetUserDelegationKey":
        return "read"
    if request.method == "DELETE":
        return "delete"
    return "write"


def bearer_token(request: BlobRequest) -> str | None:
    """Return the token of an ``Authorization: Bearer`` header (``""`` when empty), None for other schemes."""
    header = request.header("authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


@dataclass(frozen=True)
class Decision:
    """The principal a request authenticated as, or the error that refuses it."""

    principal: Principal | None
    error: Buffered | None


class DataPlaneAuth:
    """Authenticate bearer tokens with the local Entra ID and authorize them with the world's data roles."""

    def __init__(self, entra: Entra, authority: str) -> None:
        """Check tokens signed by ``entra``; ``authority`` (``https://host:port``) goes into the 401 challenge."""
        self.entra = entra
        self.authority = authority.rstrip("/")
        self.refused: Counter[str] = Counter()
        self.allowed: Counter[str] = Counter()

    @property
    def world(self) -> World:
        """Return the world whose role assignments apply (they may change while the emulator runs)."""
        return self.entra.world

    def scope_of(self, request: BlobRequest) -> str | None:
        """Return the resource id a request acts on (account, or container under it); None for an unknown account."""
        account_id = self.world.storage_account_id(request.account or "")
        if account_id is None:
            return None
        if request.container is None:
            return account_id
        return f"{account_id}/blobServices/default/containers/{request.container}"

    def allows(self, principal: Principal, scope: str | None, action: str) -> bool:
        """Tell whether a data role of ``principal`` covering ``scope`` grants ``action``."""
        if scope is None:
            return False
        return any(action in ra.data_actions and covers(ra.scope, scope) for ra in principal.roles)

    def decide(self, request: BlobRequest, token: str) -> Decision:
        """Authenticate and authorize one bearer request."""
        try:
            claims = self.entra.validate(token, STORAGE_AUDIENCES)
        except TokenError as exc:
            return Decision(None, self._unauthenticated(exc.code))
        principal = self.world.principal_by_object_id(claims.object_id)
        if principal is None:
            return Decision(None, self._unauthenticated("InvalidAuthenticationToken"))
        action = data_action(request)
        if not self.allows(principal, self.scope_of(request), action):
            self.refused["AuthorizationPermissionMismatch"] += 1
            log.info(
                "data-plane %s refused for %s on %s (%s): no data role grants it",
                action,
                principal.name,
                request.path,
                request.operation,
            )
            return Decision(principal, storage_error(403, "AuthorizationPermissionMismatch", _PERMISSION_MESSAGE))
        self.allowed[action] += 1
        return Decision(principal, None)

    def _unauthenticated(self, code: str) -> Buffered:
        self.refused["InvalidAuthenticationInfo"] += 1
        tenant = self.world.tenant_id
        challenge = (
            f"Bearer authorization_uri={self.authority}/{tenant}/oauth2/authorize resource_id={STORAGE_AUDIENCES[0]}"
        )
        return storage_error(
            401,
            "InvalidAuthenticationInfo",
            _AUTH_MESSAGE,
            detail=_DETAILS.get(code, _DETAILS["InvalidAuthenticationToken"]),
            extra_headers={"www-authenticate": challenge},
        )

    def stats(self) -> dict[str, dict[str, int]]:
        """Return bearer requests allowed (by data action) and refused (by error code)."""
        return {"allowed": dict(self.allowed), "refused": dict(self.refused)}

    def reset_stats(self) -> None:
        """Zero the counters."""
        self.allowed.clear()
        self.refused.clear()


def as_emulator(request: BlobRequest, credential_query: str) -> BlobRequest:
    """Rewrite an authorized bearer request for Azurite: no Authorization header, the emulator's SAS instead."""
    query = request.query_string
    request.headers = [(k, v) for k, v in request.headers if k.lower() != b"authorization"]
    request.query_string = query + (b"&" if query else b"") + credential_query.encode("latin-1")
    return request
