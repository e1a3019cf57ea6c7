"""``python -m emulator serve``: the JSON line, a generated world, VM deletion, clean shutdown on SIGTERM."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import psutil
import pytest
from azure.core.exceptions import ResourceNotFoundError

from tests.emulator.conftest import REPO, SUB1, SUB2, EmulatorProcess, dtl_client

pytestmark = pytest.mark.emulator

LINE_KEYS = {
    "arm_endpoint",
    "authority_host",
    "tenant_id",
    "client_id",
    "client_secret",
    "ca_bundle",
    "control_endpoint",
    "blob_endpoint",
    "storage",
    "principals",
}


def _generated_world(tmp_path: Path) -> Path:
    result = subprocess.run(
        [sys.executable, "-m", "emulator.worlds.generate", "--labs", "3", "--images", "2", "--regions", "2"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    world = tmp_path / "world.json"
    world.write_text(result.stdout)
    return world


def test_serve_generated_world_and_shut_down_cleanly(tmp_path: Path) -> None:
    emulator = EmulatorProcess(_generated_world(tmp_path), tmp_path)
    info: dict[str, Any] = emulator.info
    try:
        assert set(info) == LINE_KEYS
        assert info["arm_endpoint"] == info["authority_host"]
        assert info["control_endpoint"] == info["arm_endpoint"] + "/_emulator"
        assert set(info["storage"]) == {"factorystore", "lab000store", "lab001store", "lab002store", "diskstore"}
        for account, entry in info["storage"].items():
            assert entry["blob_endpoint"] == f"{info['blob_endpoint']}/{account}"
            assert entry["account_key"]
        assert set(info["principals"]) == {"image-factory", "reader", "outsider"}
        assert info["principals"]["image-factory"]["client_id"] == info["client_id"]
        assert Path(info["ca_bundle"]).is_file()

        labs1 = sorted(lab.name for lab in dtl_client(info, SUB1).labs.list_by_subscription())
        labs2 = sorted(lab.name for lab in dtl_client(info, SUB2).labs.list_by_subscription())
        assert labs1 == ["ImageFactory", "Lab000", "Lab002"] and labs2 == ["Lab001"]
        client = dtl_client(info)
        vms = {vm.name: vm for vm in client.virtual_machines.list("rg-imagefactory", "ImageFactory")}
        assert {vm.tags["ImagePath"] for vm in vms.values() if vm.tags} == {"Gen/Image000.json", "Gen/Image001.json"}
        client.virtual_machines.begin_delete("rg-imagefactory", "ImageFactory", "vm-image001").result()
        with pytest.raises(ResourceNotFoundError):
            client.virtual_machines.get("rg-imagefactory", "ImageFactory", "vm-image001")
        assert [vm.name for vm in client.virtual_machines.list("rg-imagefactory", "ImageFactory")] == ["vm-image000"]

        children = psutil.Process(emulator.proc.pid).children(recursive=True)
        assert children, "Azurite runs as a child process"
    except BaseException:
        emulator.proc.kill()
        raise
    assert emulator.stop() == 0
    _, alive = psutil.wait_procs(children, timeout=10)
    assert not alive, f"processes left behind: {[p.pid for p in alive]}"
