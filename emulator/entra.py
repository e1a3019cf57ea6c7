"""Entra ID for the local Azure: OpenID discovery, JWKS and the client-credentials token endpoint."""

from __future__ import annotations

import base64
import hmac
import logging
import re
import secrets
import time
import uuid
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from emulator.world import Principal, World

log = logging.getLogger(__name__)

#: Audiences ARM accepts in a bearer token.
ARM_AUDIENCES = (
    "https://management.azure.com",
    "https://management.azure.com/",
    "https://management.core.windows.net/",
)
#: Audiences Blob storage accepts (the SDK asks for ``https://storage.azure.com/.default``).
STORAGE_AUDIENCES = ("https://storage.azure.com", "https://storage.azure.com/")


class TokenError(Exception):
    """A bearer token was refused; ``code`` is ARM's error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class TokenClaims:
    """The claims of a validated token that the ARM side needs."""

    object_id: str
    app_id: str
    tenant_id: str
    expires: int


def _b64url_uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


class Entra:
    """Issue and validate RS256 tokens for the world's principals (key and secrets made per start)."""

    def __init__(self, world: World) -> None:
        self.world = world
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._kid = uuid.uuid4().hex
        self._pem = self._key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        self._public = self._key.public_key()
        self.secrets: dict[str, str] = {name: secrets.token_urlsafe(30) for name in world.principals}
        self.tokens_issued = 0

    @property
    def token_lifetime(self) -> int:
        """Lifetime of new tokens in seconds (world setting, changeable at run time)."""
        return self.world.settings.token_lifetime

    def issuer(self, base_url: str) -> str:
        """Return the issuer of tokens served from ``base_url``."""
        return f"{base_url}/{self.world.tenant_id}/v2.0"

    def issue(self, principal: Principal, audience: str, base_url: str) -> tuple[str, int]:
        """Sign a token for ``principal``; return it and its lifetime."""
        now = int(time.time())
        lifetime = self.token_lifetime
        claims = {
            "aud": audience,
            "iss": self.issuer(base_url),
            "iat": now,
            "nbf": now,
            "exp": now + lifetime,
            "tid": self.world.tenant_id,
            "oid": principal.object_id,
            "sub": principal.object_id,
            "appid": principal.client_id,
            "azp": principal.client_id,
            "idtyp": "app",
            "ver": "2.0",
            "jti": uuid.uuid4().hex,
        }
        token = jwt.encode(claims, self._pem, algorithm="RS256", headers={"kid": self._kid})
        self.tokens_issued += 1
        return token, lifetime

    def validate(self, token: str, audiences: tuple[str, ...] = ARM_AUDIENCES) -> TokenClaims:
        """Check signature, audience (ARM's unless told) and expiry; raise TokenError with ARM's code when refused."""
        try:
            claims = jwt.decode(
                token,
                self._public,
                algorithms=["RS256"],
                audience=list(audiences),
                options={"require": ["exp", "oid", "tid"]},
            )
        except jwt.ExpiredSignatureError as exc:
            expired = jwt.decode(token, options={"verify_signature": False}).get("exp", 0)
            raise TokenError(
                "ExpiredAuthenticationToken",
                "The access token expiry UTC time "
                f"'{time.strftime('%m/%d/%Y %H:%M:%S', time.gmtime(int(expired)))}' is earlier than current "
                f"UTC time '{time.strftime('%m/%d/%Y %H:%M:%S', time.gmtime())}'.",
            ) from exc
        except jwt.InvalidAudienceError as exc:
            raise TokenError(
                "InvalidAuthenticationTokenAudience", "The access token has been obtained for wrong audience."
            ) from exc
        except jwt.PyJWTError as exc:
            raise TokenError(
                "InvalidAuthenticationToken", "The access token is invalid (signature or format)."
            ) from exc
        if claims["tid"] != self.world.tenant_id:
            raise TokenError("InvalidAuthenticationTokenTenant", "The access token is from the wrong issuer.")
        return TokenClaims(
            object_id=str(claims["oid"]),
            app_id=str(claims.get("appid", "")),
            tenant_id=str(claims["tid"]),
            expires=int(claims["exp"]),
        )

    def jwks(self) -> dict[str, Any]:
        """Return the public signing key as a JWK set."""
        numbers = self._public.public_numbers()
        key = {"kty": "RSA", "use": "sig", "alg": "RS256", "kid": self._kid}
        key |= {"n": _b64url_uint(numbers.n), "e": _b64url_uint(numbers.e)}
        return {"keys": [key]}

    def check_secret(self, client_id: str, secret: str) -> Principal | None:
        """Return the principal when ``secret`` is its client secret."""
        principal = self.world.principal_by_client_id(client_id)
        if principal is None:
            return None
        expected = self.secrets[principal.name]
        return principal if hmac.compare_digest(expected.encode(), secret.encode()) else None

    # -- HTTP --------------------------------------------------------------------------------------

    def _tenant_ok(self, request: Request) -> bool:
        tenant = str(request.path_params["tenant"]).lower()
        return tenant in {self.world.tenant_id.lower(), "organizations"}

    async def openid_configuration(self, request: Request) -> Response:
        """Serve the OpenID discovery document of the tenant."""
        if not self._tenant_ok(request):
            return _oauth_error(400, "invalid_tenant", "AADSTS90002: Tenant not found.")
        base = _base_url(request)
        tenant = self.world.tenant_id
        return JSONResponse(
            {
                "issuer": self.issuer(base),
                "token_endpoint": f"{base}/{tenant}/oauth2/v2.0/token",
                "authorization_endpoint": f"{base}/{tenant}/oauth2/v2.0/authorize",
                "jwks_uri": f"{base}/{tenant}/discovery/v2.0/keys",
                "response_types_supported": ["code", "id_token", "token"],
                "subject_types_supported": ["pairwise"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
                "grant_types_supported": ["client_credentials"],
                "tenant_region_scope": "EU",
            }
        )

    async def keys(self, request: Request) -> Response:
        """Serve the JWKS."""
        if not self._tenant_ok(request):
            return _oauth_error(400, "invalid_tenant", "AADSTS90002: Tenant not found.")
        return JSONResponse(self.jwks())

    async def token(self, request: Request) -> Response:
        """Exchange client credentials for a bearer token."""
        if not self._tenant_ok(request):
            return _oauth_error(400, "invalid_request", "AADSTS90002: Tenant not found.")
        form = await request.form()
        grant = str(form.get("grant_type", ""))
        if grant != "client_credentials":
            return _oauth_error(400, "unsupported_grant_type", f"AADSTS70003: grant type {grant!r} not supported.")
        client_id = str(form.get("client_id", ""))
        secret = str(form.get("client_secret", ""))
        scope = str(form.get("scope", ""))
        resource = next((s for s in scope.split() if s.endswith("/.default")), None)
        if resource is None:
            return _oauth_error(400, "invalid_scope", "AADSTS1002012: The scope must end with /.default.")
        if self.world.principal_by_client_id(client_id) is None:
            return _oauth_error(
                400, "unauthorized_client", f"AADSTS700016: Application '{client_id}' was not found in the tenant."
            )
        principal = self.check_secret(client_id, secret)
        if principal is None:
            log.info("token refused for client %s: invalid secret", client_id)
            return _oauth_error(
                401, "invalid_client", "AADSTS7000215: Invalid client secret provided for the application."
            )
        audience = resource[: -len("/.default")]
        token, lifetime = self.issue(principal, audience, _base_url(request))
        return JSONResponse(
            {"token_type": "Bearer", "expires_in": lifetime, "ext_expires_in": lifetime, "access_token": token},
            headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
        )

    def routes(self) -> list[Route]:
        """Return the Starlette routes of the token service."""
        return [
            Route("/{tenant}/v2.0/.well-known/openid-configuration", self.openid_configuration, methods=["GET"]),
            Route("/{tenant}/.well-known/openid-configuration", self.openid_configuration, methods=["GET"]),
            Route("/{tenant}/discovery/v2.0/keys", self.keys, methods=["GET"]),
            Route("/{tenant}/discovery/keys", self.keys, methods=["GET"]),
            Route("/{tenant}/oauth2/v2.0/token", self.token, methods=["POST"]),
        ]


def _base_url(request: Request) -> str:
    return f"{request.url.scheme}://{request.url.netloc}"


def _oauth_error(status: int, error: str, description: str) -> JSONResponse:
    body = {
        "error": error,
        "error_description": description,
        "error_codes": [int(m.group(1))] if (m := re.match(r"AADSTS(\d+)", description)) else [],
        "timestamp": time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime()),
        "trace_id": str(uuid.uuid4()),
        "correlation_id": str(uuid.uuid4()),
    }
    return JSONResponse(body, status_code=status)
