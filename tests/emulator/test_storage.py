"""The storage emulator through real azure-storage-blob clients (sync and aio) over HTTPS."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import os
import socket
import threading
import time
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import psutil
import pytest
from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError
from azure.storage.blob import BlobClient, BlobServiceClient
from azure.storage.blob.aio import BlobServiceClient as AsyncBlobServiceClient

from emulator.blob.operations import classify
from emulator.certs import CertPaths, make_certificates
from emulator.faults import FaultRules
from emulator.storage import PendingCopyError, StorageEmulator
from emulator.vhd import footer_problem, make_disk

T = TypeVar("T")
ACCOUNTS = ("alpha", "beta", "gamma")
DISK = 256 * 1024


class Harness:
    """A StorageEmulator running in its own event loop thread, so sync SDK clients can call it."""

    def __init__(self, tmp: Path) -> None:
        self.keys = {name: base64.b64encode(os.urandom(64)).decode() for name in ACCOUNTS}
        self.certs = make_certificates(tmp / "certs")
        self.faults = FaultRules(seed=1)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.emulator = StorageEmulator(
            state_dir=tmp / "state", accounts=self.keys, certs=self.certs, faults=self.faults, copy_seconds=1.0
        )

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=60)

    def close(self) -> None:
        self.run(self.emulator.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()

    @property
    def verify(self) -> str:
        return str(self.certs.ca_pem)

    def service(self, account: str, **kwargs: Any) -> BlobServiceClient:
        return BlobServiceClient(
            self.emulator.account_url(account),
            credential=self.keys[account],
            connection_verify=self.verify,
            retry_total=0,
            **kwargs,
        )

    def aservice(self, account: str) -> AsyncBlobServiceClient:
        return AsyncBlobServiceClient(
            self.emulator.account_url(account),
            credential=self.keys[account],
            connection_verify=self.verify,
            retry_total=0,
        )

    def read_sas(self, account: str, container: str, blob: str) -> str:
        expiry = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
        return self.emulator.blob_sas_url(account, container, blob, permission="r", expiry=expiry, purpose="test")

    def copy_destination(self, account: str, container: str, blob: str) -> tuple[BlobServiceClient, BlobClient]:
        """Create ``container`` in ``account``; return the account's client and the client of ``blob`` in it."""
        service = self.service(account)
        service.create_container(container)
        return service, service.get_blob_client(container, blob)

    def source_disk(self, container: str, blob: str, seed: int, account: str = "alpha") -> bytes:
        disk = make_disk(DISK, seed=seed)
        self.run(self.emulator.ensure_container(account, container))
        self.run(self.emulator.put_page_blob(account, container, blob, disk))
        return disk


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    h = Harness(tmp_path_factory.mktemp("storage"))
    try:
        h.run(h.emulator.start())
        yield h
    finally:
        h.close()


@pytest.fixture(autouse=True)
def _clean_faults(harness: Harness) -> Iterator[None]:
    harness.faults.clear()
    harness.emulator.configure(copy_seconds=1.0, copy_bandwidth=0)
    yield
    harness.faults.clear()


def _code(error: HttpResponseError) -> str | None:
    return getattr(error, "error_code", None)


def _header(error: HttpResponseError, name: str) -> str:
    return str(getattr(error.response, "headers", {}).get(name))


def _progress(value: str | None) -> tuple[int, int]:
    copied, total = str(value).split("/")
    return int(copied), int(total)


def _wait_copy(client: BlobClient, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        props = client.get_blob_properties()
        if props.copy.status != "pending" or time.monotonic() > deadline:
            return props
        time.sleep(0.1)


def test_classify_names_operations() -> None:
    blob = ("a", "c", "b")
    assert classify("HEAD", blob, {}, {}) == "GetBlobProperties"
    assert classify("GET", blob, {}, {}) == "GetBlob"
    assert classify("PUT", blob, {}, {"x-ms-blob-type": "PageBlob"}) == "PutBlob"
    assert classify("PUT", blob, {}, {"x-ms-copy-source": "u"}) == "CopyBlob"
    assert classify("PUT", blob, {}, {"x-ms-copy-source": "u", "x-ms-requires-sync": "true"}) == "CopyBlobFromUrl"
    assert classify("PUT", blob, {"comp": "copy"}, {"x-ms-copy-action": "abort"}) == "AbortCopyBlob"
    assert classify("PUT", blob, {"comp": "page"}, {"x-ms-page-write": "update"}) == "PutPage"
    assert classify("PUT", blob, {"comp": "page"}, {"x-ms-page-write": "clear"}) == "ClearPages"
    assert classify("PUT", blob, {"comp": "metadata"}, {}) == "SetBlobMetadata"
    assert classify("DELETE", blob, {}, {}) == "DeleteBlob"
    container = ("a", "c", None)
    assert classify("GET", container, {"restype": "container", "comp": "list"}, {}) == "ListBlobs"
    assert classify("PUT", container, {"restype": "container"}, {}) == "CreateContainer"
    assert classify("DELETE", container, {"restype": "container"}, {}) == "DeleteContainer"
    assert classify("HEAD", container, {"restype": "container"}, {}) == "GetContainerProperties"
    assert classify("GET", ("a", None, None), {"comp": "list"}, {}) == "ListContainers"


def test_put_and_get_through_the_https_proxy(harness: Harness) -> None:
    assert harness.emulator.blob_endpoint.startswith("https://127.0.0.1:")
    before = harness.emulator.stats()["blob"]["requests"]
    service = harness.service("beta")
    service.create_container("plain")
    payload = os.urandom(300_000)
    client = service.get_blob_client("plain", "data.bin")
    client.upload_blob(payload, metadata={"origin": "test"})
    assert client.download_blob().readall() == payload
    props = client.get_blob_properties()
    assert props.size == len(payload)
    assert props.metadata == {"origin": "test"}
    assert props.copy.status is None
    page = service.get_blob_client("plain", "disk.vhd")
    disk = make_disk(6 * 1024 * 1024, seed=3)  # more than one 4 MiB page write, streamed through
    page.upload_blob(disk, blob_type="PageBlob")
    assert page.download_blob(offset=len(disk) - 512, length=512).readall() == disk[-512:]
    assert page.download_blob().readall() == disk
    after = harness.emulator.stats()["blob"]["requests"]
    assert after["PutBlob"] - before.get("PutBlob", 0) >= 2
    assert after["CreateContainer"] - before.get("CreateContainer", 0) == 1
    assert after["GetBlobProperties"] > before.get("GetBlobProperties", 0)


def test_cross_account_copy_is_pending_then_succeeds(harness: Harness) -> None:
    harness.emulator.configure(copy_seconds=6)
    disk = harness.source_disk("src1", "img.vhd", seed=11)
    service, dest = harness.copy_destination("beta", "dst1", "img.vhd")
    started = dest.start_copy_from_url(harness.read_sas("alpha", "src1", "img.vhd"))
    assert started["copy_status"] == "pending"
    progress: list[int] = []
    refused_reads = 0
    props = dest.get_blob_properties()
    while props.copy.status == "pending":
        assert props.copy.completion_time is None
        copied, total = _progress(props.copy.progress)
        progress.append(copied)
        assert total == len(disk)
        try:
            dest.download_blob().readall()
        except HttpResponseError as pending_read:
            assert pending_read.status_code == 409
            assert _code(pending_read) == "PendingCopyOperation"
            refused_reads += 1
        else:
            # The copy ended between the two requests: a read succeeds only once it has.
            assert dest.get_blob_properties().copy.status == "success"
        time.sleep(0.25)
        props = dest.get_blob_properties()
    assert refused_reads >= 1, "a read while the copy is pending is refused"
    assert props.copy.status == "success"
    assert len(progress) >= 3
    assert progress == sorted(progress)
    assert progress[-1] > progress[0]
    assert props.copy.progress == f"{len(disk)}/{len(disk)}"
    assert props.copy.completion_time is not None
    assert props.copy.id == started["copy_id"]
    assert props.blob_type == "PageBlob"
    content = dest.download_blob().readall()
    assert content == disk
    assert footer_problem(content[-512:], len(content)) is None
    listed = list(service.get_container_client("dst1").list_blobs(include=["copy"]))
    assert [(b.name, b.copy.status) for b in listed] == [("img.vhd", "success")]
    stats = harness.emulator.stats()
    transfer = next(t for t in stats["copies"]["transfers"] if t["copy_id"] == started["copy_id"])
    assert (transfer["source_account"], transfer["destination_account"]) == ("alpha", "beta")
    assert transfer["bytes"] == len(disk)
    assert transfer["status"] == "success"
    assert "sig=REDACTED" in transfer["source"]
    issued = [s for s in stats["sas_issued"] if s["blob"] == "img.vhd" and s["container"] == "src1"]
    assert issued
    assert all("sig=REDACTED" in s["url"] and s["permission"] == "r" for s in issued)
    assert stats["blob"]["internal_requests"].get("GetBlobProperties", 0) >= 1


def test_listing_shows_pending_copy(harness: Harness) -> None:
    harness.emulator.configure(copy_seconds=3)
    harness.source_disk("src2", "a.vhd", seed=12)
    service, dest = harness.copy_destination("gamma", "dst2", "a.vhd")
    dest.start_copy_from_url(harness.read_sas("alpha", "src2", "a.vhd"))
    listed = list(service.get_container_client("dst2").list_blobs(include=["copy"]))
    assert listed[0].copy.status == "pending"
    assert _progress(listed[0].copy.progress)[1] == DISK + 512
    info = harness.run(harness.emulator.blob_info("gamma", "dst2", "a.vhd"))
    assert info is not None
    assert info.copy_status == "pending"
    with pytest.raises(PendingCopyError):
        harness.run(harness.emulator.read_range("gamma", "dst2", "a.vhd", 0, 512))
    inventory = harness.run(harness.emulator.list_blobs())
    assert inventory["gamma"]["dst2"][0]["copy_status"] == "pending"
    # Deleting the destination ends the bookkeeping.
    dest.delete_blob()
    assert harness.run(harness.emulator.blob_info("gamma", "dst2", "a.vhd")) is None
    assert harness.emulator.stats()["copies"]["pending_now"] == 0


def test_abort_copy(harness: Harness) -> None:
    harness.emulator.configure(copy_seconds=5)
    harness.source_disk("src3", "a.vhd", seed=13)
    _, dest = harness.copy_destination("beta", "dst3", "a.vhd")
    source = harness.read_sas("alpha", "src3", "a.vhd")
    copy_id = str(dest.start_copy_from_url(source)["copy_id"])
    with pytest.raises(HttpResponseError) as again:
        dest.start_copy_from_url(source)
    assert again.value.status_code == 409
    assert _code(again.value) == "PendingCopyOperation"
    with pytest.raises(HttpResponseError) as wrong:
        dest.abort_copy("00000000-0000-0000-0000-000000000000")
    assert _code(wrong.value) == "CopyIdMismatch"
    aborted_before = harness.emulator.stats()["copies"]["aborted"]
    dest.abort_copy(copy_id)
    props = dest.get_blob_properties()
    assert props.copy.status == "aborted"
    assert props.copy.id == copy_id
    assert props.size == 0
    assert props.blob_type == "PageBlob"
    assert harness.emulator.stats()["copies"]["aborted"] == aborted_before + 1
    with pytest.raises(HttpResponseError) as twice:
        dest.abort_copy(copy_id)
    assert _code(twice.value) == "NoPendingCopyOperation"
    # A new copy onto the aborted destination is allowed and replaces it.
    harness.emulator.configure(copy_seconds=0.2)
    dest.start_copy_from_url(source)
    assert _wait_copy(dest).copy.status == "success"
    assert dest.get_blob_properties().size == DISK + 512


async def test_copy_fail_and_copy_abort_faults(harness: Harness) -> None:
    harness.emulator.configure(copy_seconds=0.6)
    disk = harness.source_disk("src4", "a.vhd", seed=14)
    harness.faults.add(
        [
            {"service": "blob", "kind": "copy_fail", "path": "/gamma/dst4/failed.vhd", "count": 1},
            {"service": "blob", "kind": "copy_abort", "account": "gamma", "path": "*/halfway.vhd", "count": 1},
        ]
    )
    source = harness.read_sas("alpha", "src4", "a.vhd")
    async with harness.aservice("gamma") as service:
        await service.create_container("dst4")
        failed = service.get_blob_client("dst4", "failed.vhd")
        halfway = service.get_blob_client("dst4", "halfway.vhd")
        assert (await failed.start_copy_from_url(source))["copy_status"] == "pending"
        assert (await halfway.start_copy_from_url(source))["copy_status"] == "pending"
        assert (await failed.get_blob_properties()).copy.status == "pending"
        await asyncio.sleep(1.0)
        failed_props = await failed.get_blob_properties()
        assert failed_props.copy.status == "failed"
        assert failed_props.copy.status_description
        assert failed_props.size == 0
        aborted_props = await halfway.get_blob_properties()
        assert aborted_props.copy.status == "aborted"
        copied, total = _progress(aborted_props.copy.progress)
        assert total == len(disk)
        assert 0.4 * total <= copied <= 0.6 * total
        assert aborted_props.size == 0
        assert await (await failed.download_blob()).readall() == b""
    # The source is untouched by emptying the destinations.
    source_data = harness.run(harness.emulator.read_range("alpha", "src4", "a.vhd", 0, len(disk)))
    assert source_data == disk
    assert [rule["fired"] for rule in harness.faults.snapshot()] == [1, 1]
    inventory = harness.run(harness.emulator.list_blobs())["gamma"]["dst4"]
    assert {b["name"]: b["copy_status"] for b in inventory} == {"failed.vhd": "failed", "halfway.vhd": "aborted"}


@pytest.mark.parametrize(("status", "code"), [(503, "ServerBusy"), (429, "TooManyRequests")])
def test_throttling_with_retry_after(harness: Harness, status: int, code: str) -> None:
    service = harness.service("alpha")
    container = f"throttle{status}"
    service.create_container(container)
    client = service.get_blob_client(container, "x.bin")
    client.upload_blob(b"hello")
    harness.faults.add(
        [
            {
                "service": "blob",
                "kind": "status",
                "status": status,
                "operation": "GetBlob",
                "path": f"/alpha/{container}/*",
                "retry_after": 2,
                "count": 1,
            }
        ]
    )
    early_before = harness.emulator.stats()["blob"]["early_retries"]
    with pytest.raises(HttpResponseError) as refused:
        client.download_blob().readall()
    assert refused.value.status_code == status
    assert _code(refused.value) == code
    assert _header(refused.value, "Retry-After") == "2"
    assert _header(refused.value, "x-ms-error-code") == code
    assert client.download_blob().readall() == b"hello"  # retried at once: too early
    assert harness.emulator.stats()["blob"]["early_retries"] == early_before + 1


def test_reset_is_a_connection_error(harness: Harness) -> None:
    service = harness.service("alpha")
    service.create_container("resets")
    client = service.get_blob_client("resets", "x.bin")
    client.upload_blob(b"data")
    harness.faults.add([{"service": "blob", "kind": "reset", "operation": "GetBlob", "count": 1}])
    with pytest.raises((ServiceRequestError, ServiceResponseError)):
        client.download_blob().readall()
    assert client.download_blob().readall() == b"data"
    assert harness.emulator.stats()["blob"]["faults"]["reset"] >= 1


def test_delay_fault(harness: Harness) -> None:
    service = harness.service("alpha")
    service.create_container("delays")
    client = service.get_blob_client("delays", "x.bin")
    client.upload_blob(b"data")
    harness.faults.add([{"service": "blob", "kind": "delay", "delay": 0.6, "operation": "GetBlobProperties"}])
    started = time.monotonic()
    client.get_blob_properties()
    assert time.monotonic() - started >= 0.6


async def test_max_pending_counts_concurrent_copies(harness: Harness) -> None:
    harness.source_disk("src5", "a.vhd", seed=15)
    source = harness.read_sas("alpha", "src5", "a.vhd")
    harness.emulator.reset_stats()
    harness.emulator.configure(copy_seconds=0.2)
    async with harness.aservice("beta") as service:
        await service.create_container("dst5")
        for name in ("seq1", "seq2"):  # one after the other: never two at once
            blob = service.get_blob_client("dst5", name)
            await blob.start_copy_from_url(source)
            await asyncio.sleep(0.35)
        assert harness.emulator.stats()["copies"]["max_pending"] == 1
        harness.emulator.configure(copy_seconds=2.5)
        clients = [service.get_blob_client("dst5", f"par{i}") for i in range(4)]
        results = await asyncio.gather(*(c.start_copy_from_url(source) for c in clients))
        assert {r["copy_status"] for r in results} == {"pending"}
        copies = harness.emulator.stats()["copies"]
        assert copies["pending_now"] == 4
        assert copies["max_pending"] == 4
        await asyncio.sleep(2.7)
    copies = harness.emulator.stats()["copies"]
    assert copies["pending_now"] == 0
    assert copies["max_pending"] == 4
    assert copies["started"] == 6
    assert copies["completed"] == 6
    moved = sum(
        t["bytes"] for t in copies["transfers"] if (t["source_account"], t["destination_account"]) == ("alpha", "beta")
    )
    assert moved == 6 * (DISK + 512)


def test_sas_is_enforced_by_azurite(harness: Harness) -> None:
    harness.source_disk("src6", "a.vhd", seed=16)
    read_only = BlobClient.from_blob_url(
        harness.read_sas("alpha", "src6", "a.vhd"), connection_verify=harness.verify, retry_total=0
    )
    assert read_only.download_blob(offset=0, length=512).readall() == make_disk(DISK, seed=16)[:512]
    with pytest.raises(HttpResponseError) as denied:
        read_only.upload_blob(b"x" * 512, overwrite=True)
    assert denied.value.status_code == 403
    with pytest.raises(HttpResponseError) as not_deleted:
        read_only.delete_blob()
    assert not_deleted.value.status_code == 403
    expiry = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    writer = harness.emulator.container_sas_url("alpha", "src6", permission="rcw", expiry=expiry, purpose="upload")
    container_client = BlobServiceClient(writer.split("/alpha/")[0] + "/alpha?" + writer.split("?", 1)[1],
                                         connection_verify=harness.verify, retry_total=0)  # fmt: skip
    container_client.get_blob_client("src6", "new.bin").upload_blob(b"written")
    assert harness.run(harness.emulator.read_range("alpha", "src6", "new.bin", 0, 7)) == b"written"
    assert harness.emulator.stats()["sas_issued"][-1]["purpose"] == "upload"


def test_helpers_for_the_arm_half(harness: Harness) -> None:
    emulator = harness.emulator
    disk = harness.source_disk("helpers", "h.vhd", seed=17, account="gamma")
    info = harness.run(emulator.blob_info("gamma", "helpers", "h.vhd"))
    assert info is not None
    assert (info.blob_type, info.size, info.copy_status) == ("PageBlob", len(disk), None)
    assert harness.run(emulator.read_range("gamma", "helpers", "h.vhd", len(disk) - 512, 512)) == disk[-512:]
    assert harness.run(emulator.read_range("gamma", "helpers", "h.vhd", 1000, 24)) == disk[1000:1024]
    assert harness.run(emulator.blob_info("gamma", "helpers", "missing.vhd")) is None
    listing = harness.run(emulator.list_blobs())
    assert set(listing) == set(ACCOUNTS)
    assert {"name": "h.vhd", "size": len(disk), "blob_type": "PageBlob", "copy_status": None} in listing["gamma"][
        "helpers"
    ]
    assert harness.run(emulator.delete_blob("gamma", "helpers", "h.vhd")) is True
    assert harness.run(emulator.delete_blob("gamma", "helpers", "h.vhd")) is False
    assert harness.run(emulator.list_blobs())["gamma"]["helpers"] == []


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


async def test_stop_leaves_no_azurite_process(tmp_path: Path) -> None:
    certs: CertPaths = make_certificates(tmp_path / "certs")
    again = make_certificates(tmp_path / "certs")
    assert again.ca_pem.read_bytes() == certs.ca_pem.read_bytes()  # reused, not regenerated
    emulator = StorageEmulator(
        state_dir=tmp_path / "state",
        accounts={"solo": base64.b64encode(os.urandom(64)).decode()},
        certs=certs,
        faults=FaultRules(),
    )
    await emulator.start()
    pid = emulator.azurite.pid
    assert pid is not None
    assert psutil.Process(pid).is_running()
    proxy_port = int(emulator.blob_endpoint.rsplit(":", 1)[1])
    azurite_port = emulator.azurite.port
    assert _port_open(proxy_port)
    await emulator.stop()
    await emulator.stop()  # idempotent
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert not _port_open(proxy_port)
    assert not _port_open(azurite_port)


def test_a_copy_whose_client_gave_up_is_still_carried_out(harness: Harness) -> None:
    """Azure starts a Copy Blob it received even when the caller is gone before the answer (a killed task)."""
    disk = harness.source_disk("src10", "img.vhd", seed=21)
    harness.emulator.configure(copy_seconds=0.2)
    harness.service("beta").create_container("dst10")
    harness.faults.add([{"service": "blob", "kind": "delay", "delay": 1.5, "operation": "CopyBlob", "count": 1}])
    impatient = harness.service("beta", read_timeout=0.3).get_blob_client("dst10", "img.vhd")
    with pytest.raises((ServiceRequestError, ServiceResponseError)):
        impatient.start_copy_from_url(harness.read_sas("alpha", "src10", "img.vhd"))
    dest = harness.service("beta").get_blob_client("dst10", "img.vhd")
    deadline = time.monotonic() + 20
    while True:
        try:
            props = dest.get_blob_properties()
        except HttpResponseError as exc:
            assert exc.status_code == 404, exc
            assert time.monotonic() < deadline, "the copy the client gave up on was never started"
            time.sleep(0.2)
            continue
        if props.copy.status == "success":
            break
        assert props.copy.status == "pending" and time.monotonic() < deadline
        time.sleep(0.2)
    assert dest.download_blob().readall() == disk
