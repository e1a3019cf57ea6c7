"""The local Azure as a child process: ``python -m emulator serve``, its JSON line, its control API."""

from __future__ import annotations

import json
import os
import select
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from stack.processes import Child, spawn

REPO = Path(__file__).resolve().parents[1]


@dataclass
class LocalAzure:
    """A running emulator and what its JSON line said."""

    child: Child
    info: dict[str, Any]

    @property
    def ca_bundle(self) -> str:
        return str(self.info["ca_bundle"])

    def control(self) -> httpx.Client:
        """Return an HTTPS client for the control API (no bearer needed, loopback only)."""
        return httpx.Client(base_url=self.info["control_endpoint"], verify=self.ca_bundle, timeout=30)

    def stats(self) -> dict[str, Any]:
        with self.control() as c:
            r = c.get("/stats")
            r.raise_for_status()
            return dict(r.json())

    def state(self) -> dict[str, Any]:
        with self.control() as c:
            r = c.get("/state")
            r.raise_for_status()
            return dict(r.json())

    def post(self, path: str, body: Any) -> Any:
        with self.control() as c:
            r = c.post(path, json=body)
            r.raise_for_status()
            return r.json() if r.content else None

    def delete(self, path: str) -> None:
        with self.control() as c:
            c.delete(path).raise_for_status()

    def connections_env(
        self, *, subscription_id: str, principal: str | None = None, factory_account: str = "factorystore"
    ) -> dict[str, str]:
        """``AIRFLOW_CONN_*`` variables that point the product at this local Azure (the only local difference)."""
        info = self.info
        client_id, secret = info["client_id"], info["client_secret"]
        if principal:
            p = info["principals"][principal]
            client_id, secret = p["client_id"], p["client_secret"]
        arm = {
            "conn_type": "azure",
            "login": client_id,
            "password": secret,
            "extra": {
                "tenantId": info["tenant_id"],
                "subscriptionId": subscription_id,
                "arm_endpoint": info["arm_endpoint"],
                "authority_host": info["authority_host"],
                "ca_bundle": self.ca_bundle,
            },
        }
        acct = info["storage"][factory_account]
        conn_str = (
            f"DefaultEndpointsProtocol=https;AccountName={factory_account};AccountKey={acct['account_key']};"
            f"BlobEndpoint={acct['blob_endpoint']};"
        )
        storage = {
            "conn_type": "wasb",
            "extra": {"connection_string": conn_str, "connection_verify": self.ca_bundle},
        }
        return {
            "AIRFLOW_CONN_IMAGE_FACTORY_ARM": json.dumps(arm),
            "AIRFLOW_CONN_IMAGE_FACTORY_STORAGE": json.dumps(storage),
        }

    def stop(self) -> int | None:
        return self.child.stop()


def start_local_azure(
    *,
    world: Path,
    state_dir: Path,
    log_dir: Path,
    arm_port: int = 0,
    blob_port: int = 0,
    timeout: float = 60.0,
) -> LocalAzure:
    """Start the emulator for ``world`` and wait for its JSON line."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO)
    argv = [sys.executable, "-m", "emulator", "serve", "--world", str(world), "--state-dir", str(state_dir)]
    if arm_port:
        argv += ["--arm-port", str(arm_port)]
    if blob_port:
        argv += ["--blob-port", str(blob_port)]
    child = spawn("local-azure", argv, env=env, log_dir=log_dir, cwd=REPO, stdout_pipe=True)
    assert child.popen.stdout is not None
    deadline = time.monotonic() + timeout
    buf = b""
    while time.monotonic() < deadline:
        if not child.alive():
            raise RuntimeError(f"the local Azure exited with {child.popen.returncode}:\n{child.tail()}")
        ready, _, _ = select.select([child.popen.stdout], [], [], 0.5)
        if not ready:
            continue
        chunk = os.read(child.popen.stdout.fileno(), 65536)
        buf += chunk
        if b"\n" in buf:
            line = buf.split(b"\n", 1)[0]
            info = json.loads(line)
            # Keep draining stdout so a chatty emulator can never block on a full pipe.
            threading.Thread(target=_drain, args=(child,), daemon=True).start()
            return LocalAzure(child=child, info=info)
    child.stop()
    raise TimeoutError(f"the local Azure printed no JSON line within {timeout:.0f}s:\n{child.tail()}")


def _drain(child: Child) -> None:
    stream = child.popen.stdout
    if stream is None:
        return
    with child.log_path.open("ab") as log:
        for chunk in iter(lambda: os.read(stream.fileno(), 65536), b""):
            log.write(chunk)
