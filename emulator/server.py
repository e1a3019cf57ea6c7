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
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from starlette.applications import Starlette

from emulator.arm.app import ArmFrontDoor, build_app
from emulator.certs import CertPaths, make_certificates
from emulator.entra import Entra
from emulator.faults import FaultRules
from emulator.https import QuietServer, start_https, wait_started
from emulator.storage import StorageEmulator
from emulator.vhd import make_disk
from emulator.world import DISK_ACCOUNT, DISK_CONTAINER, World, disk_blob_name, disk_seed, load_world

log = logging.getLogger(__name__)

MIB = 1024 * 1024


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


async def start_arm(app: Starlette, certs: CertPaths, port: int) -> tuple[QuietServer, asyncio.Task[None], int]:
    """Serve ``app`` over HTTPS on 127.0.0.1:``port`` (0 = free port); return the server, its task, the port."""
    server, task, bound = start_https(app, certs, port)
    await wait_started(server, task, what="the ARM server")
    return server, task, bound


@contextlib.contextmanager
def _state_folder(state_dir: Path | None) -> Iterator[Path]:
    """Yield ``state_dir`` (created if missing), or a temporary folder removed afterwards when it is None."""
    if state_dir is not None:
        state_dir.mkdir(parents=True, exist_ok=True)
        yield state_dir
        return
    state = Path(tempfile.mkdtemp(prefix="local-azure-"))
    try:
        yield state
    finally:
        shutil.rmtree(state, ignore_errors=True)


@contextlib.contextmanager
def _stop_on_signals(stop: asyncio.Event) -> Iterator[None]:
    """Set ``stop`` on SIGTERM/SIGINT while the block runs."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        yield
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


async def _until_stopped(stop: asyncio.Event, arm_task: asyncio.Task[None]) -> None:
    """Wait for ``stop``; raise if the ARM server ends first."""
    stop_wait = asyncio.get_running_loop().create_task(stop.wait())
    await asyncio.wait({stop_wait, arm_task}, return_when=asyncio.FIRST_COMPLETED)
    stop_wait.cancel()
    if arm_task.done():
        arm_task.result()
        raise RuntimeError("the ARM server stopped unexpectedly")


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
    stop = stop or asyncio.Event()
    with _state_folder(state_dir) as state, _stop_on_signals(stop):
        certs = make_certificates(state / "certs")
        keys = account_keys(world)
        storage = StorageEmulator(
            state_dir=state,
            accounts=keys,
            certs=certs,
            faults=FaultRules(),
            blob_port=blob_port,
            copy_seconds=world.settings.copy_seconds,
        )
        server: QuietServer | None = None
        task: asyncio.Task[None] | None = None
        front: ArmFrontDoor | None = None
        try:
            await storage.start()
            disks = await write_disks(world, storage)
            entra = Entra(world)
            app, front = build_app(world, entra, storage, storage.faults)
            server, task, port = await start_arm(app, certs, arm_port)
            arm_url = f"https://127.0.0.1:{port}"
            log.info(
                "local Azure ready in %.1f s: ARM %s, blob %s, %d disks",
                time.monotonic() - started,
                arm_url,
                storage.blob_endpoint,
                disks,
            )
            line = ready_line(world, entra, storage, keys=keys, arm_url=arm_url, ca=certs.ca_pem)
            out.write(json.dumps(line) + "\n")
            out.flush()
            await _until_stopped(stop, task)
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
                await front.deployments.stop()
            await storage.stop()
