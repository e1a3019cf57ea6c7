"""Fixtures of the local Azure tests: one emulator process per session, SDK clients built from its JSON line."""

from __future__ import annotations

import json
import selectors
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from azure.identity import ClientSecretCredential
from azure.identity.aio import ClientSecretCredential as AsyncClientSecretCredential
from azure.mgmt.compute import ComputeManagementClient
from azure.mgmt.devtestlabs import DevTestLabsClient
from azure.mgmt.devtestlabs.aio import DevTestLabsClient as AsyncDevTestLabsClient
from azure.storage.blob import BlobClient

REPO = Path(__file__).resolve().parents[2]
DEMO_WORLD = REPO / "emulator" / "worlds" / "demo.json"
SUB1 = "11111111-1111-4111-8111-111111111111"
SUB2 = "22222222-2222-4222-8222-222222222222"
START_TIMEOUT = 60


class EmulatorProcess:
    """A ``python -m emulator serve`` child process and its ready line."""

    def __init__(self, world: Path, state_dir: Path) -> None:
        self.log_path = state_dir / "emulator.log"
        self._log = self.log_path.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "emulator", "serve", "--world", str(world), "--state-dir", str(state_dir / "state")],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
        )
        self.info = self._read_line()

    def _read_line(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        selector = selectors.DefaultSelector()
        selector.register(self.proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if selector.select(timeout=0.5):
                line = self.proc.stdout.readline()
                if line:
                    return dict(json.loads(line))
            if self.proc.poll() is not None:
                break
        self.proc.kill()
        raise RuntimeError(f"the emulator did not start; see {self.log_path}:\n{self.log_path.read_text()[-3000:]}")

    def stop(self, timeout: float = 30) -> int:
        """Send SIGTERM and return the exit code."""
        self.proc.terminate()
        try:
            return self.proc.wait(timeout)
        finally:
            self._log.close()


@pytest.fixture(scope="session")
def local_azure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Start the local Azure with the demo world for the whole session; yield its JSON line."""
    emulator = EmulatorProcess(DEMO_WORLD, tmp_path_factory.mktemp("local-azure"))
    info = dict(emulator.info)
    info["pid"] = emulator.proc.pid
    control_post(info, "/config", {"lro_seconds": 1, "copy_seconds": 1})
    yield info
    code = emulator.stop()
    assert code == 0, f"the emulator exited {code}; see {emulator.log_path}"


def control_client(info: dict[str, Any]) -> httpx.Client:
    """Return an httpx client for the control API (and raw ARM calls)."""
    return httpx.Client(verify=info["ca_bundle"], timeout=30)


def control_get(info: dict[str, Any], path: str) -> Any:
    """GET a control API path and return its JSON."""
    with control_client(info) as client:
        response = client.get(info["control_endpoint"] + path)
        response.raise_for_status()
        return response.json()


def control_post(info: dict[str, Any], path: str, body: Any) -> httpx.Response:
    """POST JSON to a control API path."""
    with control_client(info) as client:
        return client.post(info["control_endpoint"] + path, json=body)


def control_delete(info: dict[str, Any], path: str) -> httpx.Response:
    """DELETE a control API path."""
    with control_client(info) as client:
        return client.delete(info["control_endpoint"] + path)


def _principal(info: dict[str, Any], principal: str | None) -> tuple[str, str]:
    if principal is None:
        return info["client_id"], info["client_secret"]
    entry = info["principals"][principal]
    return entry["client_id"], entry["client_secret"]


def _credential_options(info: dict[str, Any]) -> dict[str, Any]:
    """What an SDK credential for the local Azure needs besides the tenant and the principal's id and secret."""
    return {
        "authority": info["authority_host"],
        "connection_verify": info["ca_bundle"],
        "disable_instance_discovery": True,
    }


def _arm_options(info: dict[str, Any]) -> dict[str, Any]:
    """What an ARM SDK client needs to reach the local ARM endpoint."""
    return {"base_url": info["arm_endpoint"], "connection_verify": info["ca_bundle"]}


def credential(info: dict[str, Any], principal: str | None = None) -> ClientSecretCredential:
    """Build the unmodified SDK credential for a principal of the world (default: the factory's)."""
    return ClientSecretCredential(info["tenant_id"], *_principal(info, principal), **_credential_options(info))


def aio_credential(info: dict[str, Any], principal: str | None = None) -> AsyncClientSecretCredential:
    """Build the async SDK credential for a principal of the world."""
    return AsyncClientSecretCredential(info["tenant_id"], *_principal(info, principal), **_credential_options(info))


def dtl_client(
    info: dict[str, Any], subscription: str = SUB1, principal: str | None = None, **kwargs: Any
) -> DevTestLabsClient:
    """Build the DevTest Labs client against the local ARM endpoint."""
    return DevTestLabsClient(credential(info, principal), subscription, **_arm_options(info), **kwargs)


def aio_dtl_client(
    info: dict[str, Any], subscription: str = SUB1, principal: str | None = None
) -> AsyncDevTestLabsClient:
    """Build the async DevTest Labs client (close it, and its credential, after use)."""
    return AsyncDevTestLabsClient(aio_credential(info, principal), subscription, **_arm_options(info))


def compute_client(
    info: dict[str, Any], subscription: str = SUB1, principal: str | None = None
) -> ComputeManagementClient:
    """Build the Compute client against the local ARM endpoint."""
    return ComputeManagementClient(credential(info, principal), subscription, **_arm_options(info))


@pytest.fixture
def faults(local_azure: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Give a test the emulator with an empty fault list, and clear the faults it added afterwards."""
    control_delete(local_azure, "/faults")
    yield local_azure
    control_delete(local_azure, "/faults")


@pytest.fixture
def settings(local_azure: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Let a test change settings (POST /config) and restore the session's values afterwards."""
    yield local_azure
    control_post(local_azure, "/config", {"lro_seconds": 1, "copy_seconds": 1, "page_size": 50, "token_lifetime": 3600})


def token_blob(info: dict[str, Any], sas_url: str, principal: str | None = None) -> BlobClient:
    """Return a client of the blob behind ``sas_url`` authorized by a principal's Entra token, not the SAS."""
    return BlobClient.from_blob_url(
        sas_url.split("?", 1)[0], credential=credential(info, principal), connection_verify=info["ca_bundle"]
    )


def delete_upload(info: dict[str, Any], sas_url: str) -> None:
    """Delete an upload as the factory can (an upload SAS has no delete): with its token's data role."""
    token_blob(info, sas_url).delete_blob()
