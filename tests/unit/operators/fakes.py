"""Fakes shared by the operator tests: settings, a task instance, the factory storage hook."""

from __future__ import annotations

from typing import Any

from image_factory.configuration import FactorySettings
from image_factory.hooks.storage import CopyState

SETTINGS = FactorySettings(subscription_id="sub", resource_group="rg", lab_name="ImageFactory")
JOB = {
    "vm_name": "vm-ubuntu",
    "image_path": "Ubuntu/Ubuntu2204.json",
    "image_name": "Ubuntu_Ubuntu2204-2025-03-01-1234abcd",
    "version": "2025-03-01",
    "os_type": "Linux",
    "sysprep": True,
    "os_disk_id": "/subscriptions/sub/resourceGroups/rg/providers/Microsoft.Compute/disks/d1",
}
PAIR = {
    "lab_name": "QALab",
    "subscription_id": "sub2",
    "resource_group": "rg-qa",
    "location": "northeurope",
    "image_name": "Ubuntu_Ubuntu2204-2025-03-01-1234abcd",
    "image_path": "Ubuntu/Ubuntu2204.json",
    "version": "2025-03-01",
    "vhd_blob": "Ubuntu_Ubuntu2204-2025-03-01-1234abcd.vhd",
    "os_type": "Linux",
    "sysprep": True,
    "cross_region": True,
}


class FakeTi:
    def __init__(self, try_number: int = 1) -> None:
        self.pushed: dict[str, Any] = {}
        self.try_number = try_number

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value


class FakeFactoryStorage:
    def __init__(self, *, sidecar: bool = False, state: CopyState | None = None, footer: bytes = b"") -> None:
        self.sidecar = sidecar
        self.state = state or CopyState(exists=False)
        self.footer = footer
        self.copies: list[tuple[str, str]] = []
        self.written: dict[str, bytes] = {}

    def check_for_blob(self, container: str, blob: str) -> bool:
        return self.sidecar

    def copy_state(self, container: str, blob: str) -> CopyState:
        return self.state

    def start_copy(self, container: str, blob: str, source: str) -> str:
        self.copies.append((blob, source))
        return "copy-1"

    def read_footer(self, container: str, blob: str) -> tuple[bytes, int]:
        return self.footer, 4096 + len(self.footer)

    def write_json(self, container: str, blob: str, data: bytes) -> None:
        self.written[blob] = data

    def read_sas_url(self, container: str, blob: str, hours: int) -> str:
        return f"https://store/{container}/{blob}?sig=READ"


class FakeCompute:
    def __init__(self) -> None:
        self.granted: list[str] = []
        self.revoked: list[str] = []

    def grant_disk_read(self, disk_id: str, seconds: int) -> str:
        self.granted.append(disk_id)
        return "https://disk?sig=DISK"

    def revoke_disk(self, disk_id: str) -> None:
        self.revoked.append(disk_id)
