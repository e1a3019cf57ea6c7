"""Run Azurite's blob service (3.37, plain HTTP on loopback) as a child process, stopped by its pid."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import httpx

from emulator.ports import free_port

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[1]
#: Override with env ``AZURITE_BLOB_MAIN`` (path to ``dist/src/blob/main.js``).
DEFAULT_MAIN = REPO_ROOT / "node_modules" / "azurite" / "dist" / "src" / "blob" / "main.js"
READY_TIMEOUT = 30.0
STOP_TIMEOUT = 5.0
_PR_SET_PDEATHSIG = 1


class AzuriteError(RuntimeError):
    """Azurite could not be started."""


def _die_with_parent() -> None:
    """Ask Linux to SIGTERM the child when the thread that started it dies (no orphan Azurite)."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class AzuriteProcess:
    """One Azurite blob service on ``http://127.0.0.1:<port>`` with the given accounts."""

    def __init__(self, *, location: Path, accounts: dict[str, str], ca_pem: Path | None = None) -> None:
        """Prepare (without starting) an Azurite whose data lives in ``location``."""
        if not accounts:
            raise ValueError("Azurite needs at least one account")
        self.location = location
        self.accounts = dict(accounts)
        self.ca_pem = ca_pem
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        """Return the pid of the running node process, or None."""
        return self._process.pid if self._process is not None else None

    @property
    def endpoint(self) -> str:
        """Return the plain-HTTP base URL (no account)."""
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        """Start node on a free port and wait until it answers HTTP."""
        if self._process is not None:
            return
        node = shutil.which("node")
        if node is None:
            raise AzuriteError("node is not on PATH; Azurite needs Node.js")
        main = Path(os.environ.get("AZURITE_BLOB_MAIN", str(DEFAULT_MAIN)))
        if not main.is_file():
            raise AzuriteError(f"Azurite not found at {main}; run `npm ci` in the repository")
        self.location.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        env["AZURITE_ACCOUNTS"] = ";".join(f"{name}:{key}" for name, key in self.accounts.items())
        if self.ca_pem is not None:
            # Azurite checks a cross-account copy source by fetching it: through our HTTPS proxy.
            env["NODE_EXTRA_CA_CERTS"] = str(self.ca_pem)
        self.port = free_port()
        args = [
            node,
            str(main),
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            str(self.port),
            "--location",
            str(self.location),
            "--skipApiVersionCheck",
            "--disableTelemetry",
            "--disableProductStyleUrl",
            "--silent",
        ]
        with (self.location / "azurite.log").open("ab") as out:
            self._process = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                preexec_fn=_die_with_parent,  # noqa: PLW1509 - only prctl, no locks taken
            )
        log.info("Started Azurite pid %s on port %s", self._process.pid, self.port)
        try:
            await self._wait_ready()
        except BaseException:
            await self.stop()
            raise

    async def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        async with httpx.AsyncClient(timeout=2.0) as client:
            while True:
                process = self._process
                if process is None or process.poll() is not None:
                    raise AzuriteError(f"Azurite exited early (see {self.location / 'azurite.log'})")
                try:
                    await client.get(f"{self.endpoint}/")
                    return
                except httpx.TransportError:
                    if time.monotonic() > deadline:
                        raise AzuriteError(f"Azurite did not answer within {READY_TIMEOUT} s") from None
                    await asyncio.sleep(0.1)

    async def stop(self) -> None:
        """Terminate the node process by pid (SIGTERM, then SIGKILL) and reap it; idempotent."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            deadline = time.monotonic() + STOP_TIMEOUT
            while process.poll() is None and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            if process.poll() is None:
                log.warning("Azurite pid %s ignored SIGTERM; killing it", process.pid)
                process.kill()
                process.wait(timeout=STOP_TIMEOUT)
        log.info("Stopped Azurite pid %s", process.pid)
