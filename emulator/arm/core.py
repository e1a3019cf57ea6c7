"""Shared pieces of the ARM emulator: the per-request call, routes, stats, paging and OData options."""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from emulator.arm.errors import ArmError, invalid_parameter

if TYPE_CHECKING:
    from emulator.arm.auth import Authorizer
    from emulator.arm.lro import LroManager, Operation, Work
    from emulator.world import LabSpec, Principal, World


class BlobInfoLike(Protocol):
    """What the ARM side reads of a blob's properties."""

    blob_type: str
    size: int
    copy_status: str | None


class StorageApi(Protocol):
    """The part of ``emulator.storage.StorageEmulator`` the ARM side uses."""

    def blob_sas_url(
        self, account: str, container: str, blob: str, *, permission: str, expiry: datetime, purpose: str
    ) -> str: ...

    async def ensure_container(self, account: str, container: str) -> Any: ...

    async def put_page_blob(self, account: str, container: str, blob: str, data: bytes) -> None: ...

    async def delete_blob(self, account: str, container: str, blob: str) -> bool: ...

    async def blob_info(self, account: str, container: str, blob: str) -> Any: ...

    async def read_range(self, account: str, container: str, blob: str, offset: int, length: int) -> bytes: ...

    async def list_blobs(self) -> dict[str, Any]: ...

    def pending_copies(self) -> int: ...


class FaultsApi(Protocol):
    """The part of ``emulator.faults.FaultRules`` the ARM side uses."""

    def match(
        self,
        *,
        service: str,
        operation: str,
        method: str,
        path: str,
        account: str | None = None,
        artifact: str | None = None,
        lab: str | None = None,
        vm: str | None = None,
    ) -> Any: ...

    def record_throttle(self, *, service: str, operation: str, method: str, path: str, retry_after: float) -> None: ...

    def check_early_retry(self, *, service: str, operation: str, method: str, path: str) -> bool: ...

    def early_retries(self, service: str | None = None) -> int: ...


@dataclass
class ArmStats:
    """Counters of ARM traffic (``arm.*`` in ``GET /_emulator/stats``)."""

    requests: Counter[str] = field(default_factory=Counter)
    reads: int = 0
    writes: int = 0
    actions: int = 0
    lro_polls: int = 0
    throttled: int = 0
    #: Requests that arrived while at least one blob copy was pending (by operation).
    while_copies_pending: Counter[str] = field(default_factory=Counter)

    def count(self, operation: str, method: str, *, poll: bool, copies_pending: int = 0) -> None:
        """Count one request."""
        self.requests[operation] += 1
        if copies_pending:
            self.while_copies_pending[operation] += 1
        if poll:
            self.lro_polls += 1
        elif method == "GET":
            self.reads += 1
        elif method == "POST":
            self.actions += 1
        elif method in {"PUT", "PATCH", "DELETE"}:
            self.writes += 1

    def reset(self) -> None:
        """Zero every counter."""
        self.requests.clear()
        self.while_copies_pending.clear()
        self.reads = self.writes = self.actions = self.lro_polls = self.throttled = 0


class RateLimits:
    """ARM's per-subscription remaining-request counters (reset each hour like ARM's buckets)."""

    READS = 12000
    WRITES = 1200

    def __init__(self) -> None:
        self._window = int(time.time() // 3600)
        self._used: Counter[tuple[str, str]] = Counter()

    def headers(self, subscription: str, method: str) -> dict[str, str]:
        """Consume one request and return the ``x-ms-ratelimit-remaining-*`` header."""
        window = int(time.time() // 3600)
        if window != self._window:
            self._window = window
            self._used.clear()
        kind = "reads" if method == "GET" else "writes"
        self._used[(subscription, kind)] += 1
        limit = self.READS if kind == "reads" else self.WRITES
        remaining = max(0, limit - self._used[(subscription, kind)])
        return {f"x-ms-ratelimit-remaining-subscription-{kind}": str(remaining)}


@dataclass
class Call:
    """One authenticated ARM request as handlers see it."""

    request: Request
    principal: Principal
    params: dict[str, str]
    operation: str
    api_version: str

    @property
    def base_url(self) -> str:
        """Scheme and authority of the ARM endpoint as the client reached it."""
        return f"{self.request.url.scheme}://{self.request.url.netloc}"

    def query(self, name: str) -> str | None:
        """Return a query parameter, matched case-insensitively."""
        for key, value in self.request.query_params.multi_items():
            if key.lower() == name.lower():
                return value
        return None

    async def json_body(self) -> dict[str, Any]:
        """Parse the body as a JSON object; raise 400 InvalidRequestContent otherwise."""
        raw = await self.request.body()
        try:
            import json

            body = json.loads(raw or b"null")
        except ValueError as exc:
            raise ArmError(
                400, "InvalidRequestContent", "The request content was invalid and could not be deserialized."
            ) from exc
        if not isinstance(body, dict):
            raise ArmError(400, "InvalidRequestContent", "The request content must be a JSON object.")
        return body


Handler = Callable[[Call], Awaitable[Response]]


@dataclass(frozen=True)
class ArmRoute:
    """An ARM operation: method, path template, operation id, RBAC action and handler."""

    method: str
    template: str
    operation: str
    action: str
    handler: Handler
    api_versions: tuple[str, ...] = ()
    poll: bool = False

    def compile(self) -> re.Pattern[str]:
        """Compile the path template into a case-insensitive regex."""
        pattern = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", self.template)
        return re.compile(f"^{pattern}/?$", re.IGNORECASE)


@dataclass
class Services:
    """Everything ARM handlers share."""

    world: World
    storage: StorageApi
    faults: FaultsApi | None
    lro: LroManager
    authorizer: Authorizer
    stats: ArmStats = field(default_factory=ArmStats)

    def start_lro(
        self, call: Call, lab: LabSpec, *, namespace: str, resource_id: str, work: Work
    ) -> tuple[Operation, dict[str, str]]:
        """Start ``call``'s long-running ``work`` on a resource of ``lab``; return it and its polling headers."""
        delay = self.world.settings.lro_seconds
        op = self.lro.start(
            operation=call.operation,
            subscription_id=lab.subscription_id,
            namespace=namespace,
            location=lab.location,
            resource_id=resource_id,
            delay=delay,
            work=work,
        )
        return op, self.lro.poll_headers(op, call.base_url, call.api_version, delay)

    def accepted(self, call: Call, lab: LabSpec, *, namespace: str, resource_id: str, work: Work) -> Response:
        """Start a long-running ``work`` and answer ``202 Accepted`` with its polling headers."""
        _, headers = self.start_lro(call, lab, namespace=namespace, resource_id=resource_id, work=work)
        return Response(status_code=202, headers=headers)


# -- OData options and paging ----------------------------------------------------------------------

_CLAUSE = re.compile(r"^\s*([\w/.]+)\s+eq\s+'((?:[^']|'')*)'\s*$", re.IGNORECASE)


def _lookup(item: dict[str, Any], path: str) -> Any:
    value: Any = item
    for part in path.split("/"):
        if not isinstance(value, dict):
            return None
        match = next((k for k in value if k.lower() == part.lower()), None)
        if match is None:
            return None
        value = value[match]
    return value


def apply_filter(items: list[dict[str, Any]], expression: str | None) -> list[dict[str, Any]]:
    """Keep items matching an OData ``$filter`` of ``path eq 'value'`` clauses joined by ``and``."""
    if not expression:
        return items
    clauses = []
    for raw in re.split(r"\s+and\s+", expression.strip(), flags=re.IGNORECASE):
        match = _CLAUSE.match(raw)
        if match is None:
            raise invalid_parameter(f"The $filter clause '{raw}' is not supported.", target="$filter")
        clauses.append((match.group(1), match.group(2).replace("''", "'")))

    def keep(item: dict[str, Any]) -> bool:
        for path, expected in clauses:
            value = _lookup(item, path)
            if value is None or str(value).lower() != expected.lower():
                return False
        return True

    return [item for item in items if keep(item)]


def apply_orderby(items: list[dict[str, Any]], expression: str | None) -> list[dict[str, Any]]:
    """Sort items by an OData ``$orderby`` of one ``path [asc|desc]``."""
    if not expression:
        return items
    parts = expression.split()
    if len(parts) > 2 or (len(parts) == 2 and parts[1].lower() not in {"asc", "desc"}):
        raise invalid_parameter(f"The $orderby expression '{expression}' is not supported.", target="$orderby")
    path = parts[0]
    reverse = len(parts) == 2 and parts[1].lower() == "desc"
    return sorted(items, key=lambda item: str(_lookup(item, path) or "").lower(), reverse=reverse)


def paged(call: Call, items: list[dict[str, Any]], page_size: int) -> Response:
    """Answer a list operation: apply $filter/$orderby/$top, then one page with ``nextLink``."""
    items = apply_orderby(apply_filter(items, call.query("$filter")), call.query("$orderby"))
    top = call.query("$top")
    if top is not None:
        if not top.isdigit():
            raise invalid_parameter("$top must be a non-negative integer.", target="$top")
        items = items[: int(top)]
    token = call.query("$skipToken") or "0"
    if not token.isdigit():
        raise invalid_parameter("The $skipToken is invalid.", target="$skipToken")
    start = int(token)
    page = items[start : start + page_size]
    body: dict[str, Any] = {"value": page}
    if start + page_size < len(items):
        query = [(k, v) for k, v in call.request.query_params.multi_items() if k.lower() != "$skiptoken"]
        query.append(("$skipToken", str(start + page_size)))
        body["nextLink"] = f"{call.base_url}{call.request.url.path}?{urlencode(query)}"
    return JSONResponse(body)
