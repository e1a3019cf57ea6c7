"""Connection resets with uvicorn: which transport serves which client, so a fault can reset one with a RST."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from typing import ClassVar

from uvicorn.protocols.http.h11_impl import H11Protocol


class ConnectionRegistry:
    """Transports of a uvicorn server's open connections, by client address, so an app can reset one."""

    def __init__(self) -> None:
        """Create an empty registry."""
        self._transports: dict[tuple[str, int], asyncio.BaseTransport] = {}

    def add(self, client: tuple[str, int], transport: asyncio.BaseTransport) -> None:
        """Remember the transport of a new connection."""
        self._transports[client] = transport

    def discard(self, client: tuple[str, int]) -> None:
        """Forget a closed connection."""
        self._transports.pop(client, None)

    def reset_all(self) -> None:
        """Reset every open connection (at shutdown, so TLS close handshakes do not hold it up)."""
        for client in list(self._transports):
            self.reset(client)

    def reset(self, client: tuple[str, int] | None) -> bool:
        """Close a client's TCP connection at once with a RST, sending nothing more; tell if it was found."""
        transport = self._transports.get(client) if client is not None else None
        if transport is None:
            return False
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        abort = getattr(transport, "abort", None)
        if callable(abort):
            abort()
        else:
            transport.close()
        return True


class _TrackingH11Protocol(H11Protocol):
    registry: ClassVar[ConnectionRegistry]

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if self.client is not None:
            self.registry.add(self.client, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.client is not None:
            self.registry.discard(self.client)
        super().connection_lost(exc)


def tracking_protocol(registry: ConnectionRegistry) -> type[H11Protocol]:
    """Return a uvicorn HTTP protocol class (``Config(http=...)``) that records connections in ``registry``."""
    return type("TrackingH11Protocol", (_TrackingH11Protocol,), {"registry": registry})
