"""Azurite as the proxy reaches it over plain HTTP: forwarded client requests and the emulator's own calls."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import quote

import httpx

from emulator.blob.asgi import Receive, Send, body, end_to_end
from emulator.blob.copies import CopyRecord, show_copy_state
from emulator.blob.operations import BlobRequest
from emulator.blob.responses import SERVICE_VERSION, Buffered

#: ``account -> query string`` (without ``?``) authorizing the emulator's own calls to Azurite.
CredentialQuery = Callable[[str], str]


class Upstream:
    """The HTTP client to Azurite at ``base_url`` (``http://127.0.0.1:P``)."""

    def __init__(self, base_url: str, credential_query: CredentialQuery) -> None:
        """Reach Azurite at ``base_url``; ``credential_query`` authorizes the emulator's own calls."""
        self.base_url = base_url.rstrip("/")
        self.credential_query = credential_query
        self._client: httpx.AsyncClient | None = None

    @property
    def client(self) -> httpx.AsyncClient:
        """Return the HTTP client to Azurite (no retries, short keep-alive below Azurite's 5 s)."""
        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=httpx.Timeout(None, connect=10.0),
                limits=httpx.Limits(max_connections=200, max_keepalive_connections=50, keepalive_expiry=2.0),
                follow_redirects=False,
            )
        return self._client

    async def aclose(self) -> None:
        """Close the HTTP client."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def internal(
        self,
        method: str,
        key: tuple[str, ...],
        *,
        query: str = "",
        headers: dict[str, str] | None = None,
        content: bytes | None = None,
    ) -> httpx.Response:
        """Call Azurite directly as the emulator (account SAS), bypassing the proxy logic."""
        path = "/".join(quote(part, safe="/") for part in key)
        credential = self.credential_query(key[0])
        url = f"{self.base_url}/{path}?{query + '&' if query else ''}{credential}"
        all_headers = {"x-ms-version": SERVICE_VERSION.decode(), **(headers or {})}
        return await self.client.request(method, url, headers=all_headers, content=content)

    async def buffered(self, request: BlobRequest, receive: Receive) -> Buffered:
        """Forward a client request and read Azurite's whole answer."""
        response = await self.client.send(self._request(request, receive), stream=True)
        try:
            content = b"".join([chunk async for chunk in response.aiter_raw()])
        finally:
            await response.aclose()
        return Buffered(status=response.status_code, headers=end_to_end(response.headers.raw), body=content)

    async def streaming(
        self, request: BlobRequest, receive: Receive, send: Send, *, record: CopyRecord | None = None
    ) -> None:
        """Forward a client request and stream Azurite's answer back (with ``record``'s copy state if given)."""
        response = await self.client.send(self._request(request, receive), stream=True)
        try:
            headers = end_to_end(response.headers.raw)
            if record is not None and 200 <= response.status_code < 300:
                patched = Buffered(response.status_code, headers, b"")
                show_copy_state(patched, record)
                headers = patched.headers
            await send({"type": "http.response.start", "status": response.status_code, "headers": headers})
            if request.method != "HEAD":
                async for chunk in response.aiter_raw():
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            await response.aclose()

    def _request(self, request: BlobRequest, receive: Receive) -> httpx.Request:
        has_body = any(k.lower() in (b"content-length", b"transfer-encoding") for k, _ in request.headers)
        url = httpx.URL(self.base_url).copy_with(
            raw_path=request.raw_path + (b"?" + request.query_string if request.query_string else b"")
        )
        content = body(receive) if has_body else None
        return httpx.Request(request.method, url, headers=end_to_end(request.headers), content=content)
