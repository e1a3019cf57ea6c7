"""ASGI plumbing the blob proxy shares: message types, raw headers and reading (or dropping) a request body."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
RawHeaders = list[tuple[bytes, bytes]]

HOP_BY_HOP = frozenset(
    {b"connection", b"keep-alive", b"transfer-encoding", b"te", b"upgrade", b"proxy-connection", b"trailer"}
)


class ClientGone(Exception):
    """The client disconnected before its request body was read."""


def header_value(headers: RawHeaders, name: str) -> str | None:
    """Return the first value of a header (case-insensitive), or None."""
    wanted = name.lower().encode("latin-1")
    for key, value in headers:
        if key.lower() == wanted:
            return value.decode("latin-1")
    return None


def end_to_end(headers: RawHeaders) -> RawHeaders:
    """Drop the hop-by-hop headers a proxy must not pass on."""
    return [(k, v) for k, v in headers if k.lower() not in HOP_BY_HOP]


async def body(receive: Receive) -> AsyncIterator[bytes]:
    """Yield a request's body chunks; raise ClientGone when the client disconnects first."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk = message.get("body", b"")
        if chunk:
            yield chunk
        if not message.get("more_body", False):
            return


async def drain(receive: Receive) -> None:
    """Read and drop a request body we answer without forwarding."""
    with contextlib.suppress(ClientGone):
        async for _ in body(receive):
            pass


async def empty_body() -> dict[str, Any]:
    """Stand in for ``receive`` once a request's (empty) body has been read."""
    return {"type": "http.request", "body": b"", "more_body": False}


async def until_disconnected(receive: Receive) -> None:
    """Wait (briefly) until the server notices a connection we reset, so it sends nothing more."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(2.0):
            while (await receive())["type"] != "http.disconnect":
                pass


async def lifespan(receive: Receive, send: Send) -> None:
    """Answer the ASGI lifespan protocol (nothing to start or stop)."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
