"""Assemble the local Azure (storage + Entra ID + ARM), print its JSON line, serve until a signal."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import secrets
import shutil
import signal
import socket
import tempfile
import time
from collections.abc import Generator
from pathlib import Path
from typing import Any, TextIO

import uvicorn
from starlette.applications import Starlette

from emulator.arm.app import build_app
from emulator.certs import CertPaths, make_certificates
from emulator.entra import Entra
from emulator.faults import FaultRules
from emulator.storage import StorageEmulator
from emulator.vhd import make_disk
from emulator.world import DISK_ACCOUNT, DISK_CONTAINER, World, disk_blob_name, disk_seed, load_world

log = logging.getLogger(__name__)

MIB = 1024 * 1024


class _ArmServer(uvicorn.Server):
    """A uvicorn server that leaves signal handling to ``serve``."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def account_keys(world: World) -> dict[str, str]:
    """Generate a fresh base64 key for every storage account of the world."""
    return {name: base64.b64encode(secrets.token_bytes(64)).decode("ascii") for name in world.storage_accounts()}


async def write_disks(world: World, storage: StorageEmulator) -> int:
    """Write every factory VM's OS disk as a page blob in ``diskstore/disks``; return how many."""
    await storage.ensure_container(DISK_ACCOUNT, DISK_CONTAINER)
    count = 0
    for lab in world.labs:
        for vm in lab.vms:
            data = make_disk(vm.disk_size_mib * MIB, disk_seed(lab, vm))
            await storage.put_page_blob(DISK_ACCOUNT, DISK_CONTAINER, disk_blob_name(lab, vm), data)
            count += 1
    return count


def ready_line(
    world: World, entra: Entra, storage: StorageEmulator, *, keys: dict[str, str], arm_url: str, ca: Path
) -> dict[str, Any]:
    """Build the JSON document printed when the local Azure is ready."""
    default = world.principals[world.default_principal]
    return {
        "arm_endpoint": arm_url,
        "authority_host": arm_url,
        "tenant_id": world.tenant_id,
        "client_id": default.client_id,
        "client_secret": entra.secrets[default.name],
        "ca_bundle": str(ca),
        "control_endpoint": f"{arm_url}/_emulator",
        "blob_endpoint": storage.blob_endpoint,
        "storage": {
            name: {"blob_endpoint": storage.account_url(name), "account_key": key} for name, key in keys.items()
        },
        "principals": {
            name: {"client_id": p.client_id, "client_secret": entra.secrets[name]}
            for name, p in world.principals.items()
        },
    }


async def start_arm(app: Starlette, certs: CertPaths, port: int) -> tuple[_ArmServer, asyncio.Task[None], int]:
    """Serve ``app`` over HTTPS on 127.0.0.1:``port`` (0 = free port); return the server, its task, the port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
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
    )
    server = _ArmServer(config)
    task = asyncio.get_running_loop().create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("the ARM server stopped during start-up")
        await asyncio.sleep(0.02)
    return server, task, bound


async def serve(
    world_path: Path,
    *,
    state_dir: Path | None = None,
    arm_port: int = 0,
    blob_port: int = 0,
    out: TextIO,
    stop: asyncio.Event | None = None,
) -> int:
    """Run the local Azure until SIGTERM/SIGINT (or ``stop``); print the ready line to ``out``."""
    started = time.monotonic()
    world = load_world(world_path)
    own_dir = state_dir is None
    state = Path(tempfile.mkdtemp(prefix="local-azure-")) if state_dir is None else state_dir
    state.mkdir(parents=True, exist_ok=True)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    certs = make_certificates(state / "certs")
    keys = account_keys(world)
    faults = FaultRules()
    storage = StorageEmulator(
        state_dir=state,
        accounts=keys,
        certs=certs,
        faults=faults,
        blob_port=blob_port,
        copy_seconds=world.settings.copy_seconds,
    )
    server: _ArmServer | None = None
    task: asyncio.Task[None] | None = None
    front = None
    try:
        await storage.start()
        disks = await write_disks(world, storage)
        entra = Entra(world)
        app, front = build_app(world, entra, storage, faults)
        server, task, port = await start_arm(app, certs, arm_port)
        arm_url = f"https://127.0.0.1:{port}"
        log.info(
            "local Azure ready in %.1f s: ARM %s, blob %s, %d disks",
            time.monotonic() - started,
            arm_url,
            storage.blob_endpoint,
            disks,
        )
        out.write(json.dumps(ready_line(world, entra, storage, keys=keys, arm_url=arm_url, ca=certs.ca_pem)) + "\n")
        out.flush()
        stop_wait = loop.create_task(stop.wait())
        await asyncio.wait({stop_wait, task}, return_when=asyncio.FIRST_COMPLETED)
        stop_wait.cancel()
        if task.done():
            task.result()
            raise RuntimeError("the ARM server stopped unexpectedly")
        log.info("stopping the local Azure")
        return 0
    finally:
        if server is not None:
            server.should_exit = True
        if task is not None:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(task, 10)
        if front is not None:
            await front.services.lro.stop()
        await storage.stop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        if own_dir:
            shutil.rmtree(state, ignore_errors=True)
