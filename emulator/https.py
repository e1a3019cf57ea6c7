"""Serve an ASGI app over HTTPS on loopback with uvicorn, inside the caller's event loop (ARM and the blob proxy)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Generator
from typing import Any

import uvicorn

from emulator.certs import CertPaths
from emulator.ports import loopback_socket


class QuietServer(uvicorn.Server):
    """A uvicorn server that leaves signal handling to its host process."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def start_https(app: Any, certs: CertPaths, port: int, **options: Any) -> tuple[QuietServer, asyncio.Task[None], int]:
    """Start serving ``app`` on https://127.0.0.1:``port`` (0 = a free port); return the server, its task, the port.

    ``options`` are more ``uvicorn.Config`` settings. Wait for ``wait_started`` before announcing the endpoint.
    """
    sock = loopback_socket(port)
    bound = int(sock.getsockname()[1])
    config = uvicorn.Config(
        app,
        lifespan="off",
        ssl_certfile=str(certs.cert_pem),
        ssl_keyfile=str(certs.key_pem),
        log_level="warning",
        access_log=False,
        server_header=False,
        timeout_keep_alive=120,
        timeout_graceful_shutdown=2,
        **options,
    )
    server = QuietServer(config)
    task = asyncio.get_running_loop().create_task(server.serve(sockets=[sock]))
    return server, task, bound


async def wait_started(
    server: QuietServer,
    task: asyncio.Task[None],
    *,
    what: str,
    error: type[Exception] = RuntimeError,
    timeout: float | None = None,
) -> None:
    """Wait until ``server`` listens; raise ``error`` naming ``what`` if it stops first or takes over ``timeout`` s."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while not server.started:
        if task.done():
            task.result()
            raise error(f"{what} stopped during start-up")
        if deadline is not None and time.monotonic() > deadline:
            raise error(f"{what} did not start within {timeout:g} s")
        await asyncio.sleep(0.02)
