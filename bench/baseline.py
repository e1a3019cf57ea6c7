"""The PowerShell factory's ``DistributeImages.ps1`` ported to Python call for call: the benchmark's baseline.

Source: ``Azure/azure-devtestlab``, ``samples/DevTestLabs/Scripts/ImageFactory/Scripts/DistributeImages.ps1`` and
``DistributionHelpers.psm1``. Every remote call of the original is made here in the same order and number, with
these substitutions (the local Azure has no Resource Manager deployments and no storage ``listKeys``):

==============================================  ==========================================================
original                                        port
==============================================  ==========================================================
``Find-AzureRmResource`` (labs)                  ``Labs_ListBySubscription``, filtered by name (``-eq``:
                                                 case-insensitive); the lab's ``ResourceGroup`` is ignored
``Get-AzureRmResource`` (lab)                    ``Labs_Get``
``Get-AzureRMStorageAccountKey``                 ``Labs_GenerateUploadUri`` (counted as the substitute); the
                                                 key itself comes from the emulator's JSON line when known
``Get-AzureRmResource`` (customImages)           ``CustomImages_List``
``Get-AzureStorageBlob`` + content (sidecars)     List Blobs + Get Blob per ``*json`` in ``imagefactoryvhds``
``New-AzureStorageContainer`` (target)           none: ``generateUploadUri`` created ``uploads`` already
``Start-AzureStorageBlobCopy``                   Copy Blob into ``uploads/<vhdFileName>`` (the upload SAS)
                                                 from a read SAS on the factory blob
``Get-AzureStorageBlobCopyState``                Get Blob Properties
``New-AzureRmResourceGroupDeployment``           ``CustomImages_CreateOrUpdate`` + its LRO polls
                                                 (``sysPrep`` true, ``osType`` from the sidecar, tag ImagePath)
``Remove-AzureRmResourceGroupDeployment``        none (no deployment exists)
``Remove-AzureStorageBlob`` (copied VHD)         Delete Blob with the account key (the upload SAS cannot)
``Get-/Remove-AzureStorageContainer`` (end)      Get Container Properties of ``uploads``; not deleted (it
                                                 is DevTest Labs' own container, not a temporary one)
==============================================  ==========================================================

Behaviour kept on purpose, weaknesses included: the ImagePath match is a raw, case-sensitive string prefix
(separators unified: the original's sidecars had ``\\``, ours ``/``); every (lab, image) pair re-lists the
subscription's labs, re-reads the lab and re-fetches its "keys"; a lab in another region is refused with an
error; background jobs (threads here, ``Start-Job`` there) are throttled by a loop that sleeps
``throttle_seconds`` (30) while ``max_concurrent_jobs`` (20) run; each job polls its copy every
``copy_poll_seconds`` (45), sleeping once more after it saw the copy end. No retries, no timeouts.
One deviation: a lab that cannot be found is reported and skipped (the original carried on with empty values
and failed on the next call). This module stands alone: it never imports the product (``image_factory``).
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from azure.core.exceptions import ResourceNotFoundError
from azure.core.pipeline import PipelineRequest
from azure.identity import ClientSecretCredential
from azure.mgmt.devtestlabs import DevTestLabsClient
from azure.mgmt.devtestlabs.models import CustomImage, CustomImagePropertiesCustom, Lab
from azure.storage.blob import BlobClient, BlobSasPermissions, ContainerClient, generate_blob_sas

log = logging.getLogger(__name__)

DEFAULT_MAX_CONCURRENT_JOBS = 20
DEFAULT_THROTTLE_SECONDS = 30.0
DEFAULT_COPY_POLL_SECONDS = 45.0
ROOT_CONTAINER = "imagefactoryvhds"
UPLOAD_CONTAINER = "uploads"
LISTKEYS_SUBSTITUTE = "Get-AzureRMStorageAccountKey -> Labs_GenerateUploadUri"
_SIG = re.compile(r"(sig=)[^&\s'\"]+", re.IGNORECASE)
_RG = re.compile(r"/resourcegroups/([^/]+)/", re.IGNORECASE)


def redact(text: str) -> str:
    """Hide SAS signatures in ``text``."""
    return _SIG.sub(r"\1REDACTED", text)


@dataclass(frozen=True)
class Endpoints:
    """Where Azure is and who the script logs in as (the original's saved profile + storage keys)."""

    arm_endpoint: str
    authority_host: str
    tenant_id: str
    client_id: str
    client_secret: str = field(repr=False)
    ca_bundle: str | None
    factory_account: str
    account_urls: Mapping[str, str]
    account_keys: Mapping[str, str] = field(repr=False)

    @classmethod
    def from_emulator(cls, info: Mapping[str, Any], factory_account: str = "factorystore") -> Endpoints:
        """Build the endpoints from the local Azure's JSON line."""
        storage: Mapping[str, Mapping[str, str]] = info["storage"]
        return cls(
            arm_endpoint=str(info["arm_endpoint"]),
            authority_host=str(info["authority_host"]),
            tenant_id=str(info["tenant_id"]),
            client_id=str(info["client_id"]),
            client_secret=str(info["client_secret"]),
            ca_bundle=str(info["ca_bundle"]) if info.get("ca_bundle") else None,
            factory_account=factory_account,
            account_urls={name: str(acct["blob_endpoint"]) for name, acct in storage.items()},
            account_keys={name: str(acct["account_key"]) for name, acct in storage.items()},
        )

    def account_url(self, account: str) -> str:
        """Return the blob endpoint of ``account``."""
        return self.account_urls.get(account, f"https://{account}.blob.core.windows.net")

    @property
    def verify(self) -> str | bool:
        """Return what the SDKs take as ``connection_verify``."""
        return self.ca_bundle or True


@dataclass(frozen=True)
class BaselineSettings:
    """The script's parameters, its configuration folder's ``Labs.json`` and its hard-coded timings."""

    factory_subscription_id: str
    factory_lab_name: str
    labs: Sequence[Mapping[str, Any]]
    max_concurrent_jobs: int = DEFAULT_MAX_CONCURRENT_JOBS
    throttle_seconds: float = DEFAULT_THROTTLE_SECONDS
    copy_poll_seconds: float = DEFAULT_COPY_POLL_SECONDS
    golden_images: Path | None = None
    read_sas_hours: int = 4

    @classmethod
    def from_config_dir(cls, config_dir: Path, factory_subscription_id: str, factory_lab_name: str) -> BaselineSettings:
        """Read ``Labs.json`` (or ``labs.json``) and ``GoldenImages`` from a configuration folder."""
        labs_file = config_dir / "Labs.json"
        if not labs_file.exists():
            labs_file = config_dir / "labs.json"
        labs = json.loads(labs_file.read_text(encoding="utf-8-sig"))["Labs"]
        golden = config_dir / "GoldenImages"
        return cls(factory_subscription_id, factory_lab_name, labs, golden_images=golden if golden.is_dir() else None)


@dataclass(frozen=True)
class CopyObject:
    """One entry of ``$thingsToCopy``: an image to copy into a lab (keys and SAS never printed)."""

    image_name: str
    image_description: str
    image_path: str
    os_type: str
    vhd_file_name: str
    target_lab_name: str
    target_account: str
    target_resource_group: str
    target_subscription_id: str
    target_upload_uri: str = field(repr=False)
    is_vhd_sysprepped: bool = True


@dataclass
class JobOutcome:
    """What one background job did and when (``time.time()`` stamps)."""

    image_name: str
    lab_name: str
    account: str = ""
    blob: str = ""
    status: str = "running"
    message: str = ""
    started: float = 0.0
    copy_started: float | None = None
    copy_seen_done: float | None = None
    image_done: float | None = None
    finished: float | None = None
    copy_polls: int = 0


@dataclass(frozen=True)
class RecordedCall:
    """One HTTP request the script sent (no query string: SAS stay out)."""

    at: float
    service: str
    method: str
    path: str


@dataclass
class BaselineResult:
    """Everything a benchmark needs from one run of the baseline."""

    started: float
    finished: float = 0.0
    source_images: int = 0
    pairs_matched: int = 0
    skipped_existing: int = 0
    refused_region: int = 0
    lab_not_found: int = 0
    jobs: list[JobOutcome] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    cmdlets: Counter[str] = field(default_factory=Counter)
    calls: list[RecordedCall] = field(default_factory=list)
    throttle_waits: int = 0

    @property
    def seconds(self) -> float:
        """Return the wall time of the run."""
        return self.finished - self.started

    @property
    def created(self) -> list[tuple[str, str]]:
        """Return (lab, image) of every job that created its image."""
        return [(j.lab_name, j.image_name) for j in self.jobs if j.status == "created"]

    def summary(self) -> dict[str, Any]:
        """Return a JSON-able summary (no secrets)."""
        return {
            "seconds": round(self.seconds, 3),
            "source_images": self.source_images,
            "pairs_matched": self.pairs_matched,
            "skipped_existing": self.skipped_existing,
            "refused_region": self.refused_region,
            "lab_not_found": self.lab_not_found,
            "jobs": len(self.jobs),
            "created": len(self.created),
            "failed": sum(1 for j in self.jobs if j.status != "created"),
            "throttle_waits": self.throttle_waits,
            "errors": list(self.errors),
            "warnings": list(self.warnings),
            "cmdlets": dict(self.cmdlets),
            "arm_calls": sum(1 for c in self.calls if c.service == "arm"),
            "blob_calls": sum(1 for c in self.calls if c.service == "blob"),
        }


def should_copy_image_to_lab(lab: Mapping[str, Any], image_path: str) -> bool:
    """Tell whether ``image_path`` starts with one of the lab's ImagePaths (raw, case-sensitive prefix)."""
    value = image_path.replace("\\", "/")
    return any(value.startswith(str(prefix).replace("\\", "/")) for prefix in lab.get("ImagePaths", []))


def resource_group_of(resource_id: str) -> str:
    """Return the resource group named in a resource id."""
    match = _RG.search(resource_id)
    if not match:
        raise ValueError(f"no resource group in {resource_id!r}")
    return match.group(1)


class DistributeImages:
    """One run of ``DistributeImages.ps1``: plan serially, copy in throttled background jobs, clean up."""

    def __init__(
        self,
        endpoints: Endpoints,
        settings: BaselineSettings,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.endpoints = endpoints
        self.settings = settings
        self.sleep = sleep
        self.result = BaselineResult(started=time.time())
        self._lock = threading.Lock()
        self._credential = ClientSecretCredential(
            endpoints.tenant_id,
            endpoints.client_id,
            endpoints.client_secret,
            authority=endpoints.authority_host,
            disable_instance_discovery=True,
            connection_verify=endpoints.verify,
        )
        self._clients: dict[tuple[int, str], DevTestLabsClient] = {}

    # -- plumbing ------------------------------------------------------------------------------------------------
    def _hook(self, service: str) -> Callable[[PipelineRequest[Any]], None]:
        def record(request: PipelineRequest[Any]) -> None:
            http = request.http_request
            call = RecordedCall(time.time(), service, http.method, urlsplit(http.url).path)
            with self._lock:
                self.result.calls.append(call)

        return record

    def _cmdlet(self, name: str) -> None:
        with self._lock:
            self.result.cmdlets[name] += 1

    def _arm(self, subscription_id: str) -> DevTestLabsClient:
        """Return this thread's client for a subscription (``SelectSubscription``; jobs ``LoadProfile``)."""
        key = (threading.get_ident(), subscription_id.lower())
        with self._lock:
            client = self._clients.get(key)
        if client is None:
            client = DevTestLabsClient(
                self._credential,
                subscription_id,
                base_url=self.endpoints.arm_endpoint,
                connection_verify=self.endpoints.verify,
                raw_request_hook=self._hook("arm"),
                retry_total=0,
            )
            with self._lock:
                self._clients[key] = client
        return client

    def _blob(self, account: str, container: str, blob: str) -> BlobClient:
        """Return a key-authorized blob client (the original's ``New-AzureStorageContext`` with a key)."""
        return BlobClient(
            self.endpoints.account_url(account),
            container,
            blob,
            credential={"account_name": account, "account_key": self.endpoints.account_keys[account]},
            connection_verify=self.endpoints.verify,
            raw_request_hook=self._hook("blob"),
            retry_total=0,
        )

    def _container(self, account: str, container: str) -> ContainerClient:
        """Return a key-authorized container client (the original's ``New-AzureStorageContext`` with a key)."""
        return ContainerClient(
            self.endpoints.account_url(account),
            container,
            credential={"account_name": account, "account_key": self.endpoints.account_keys[account]},
            connection_verify=self.endpoints.verify,
            raw_request_hook=self._hook("blob"),
            retry_total=0,
        )

    def _error(self, message: str) -> None:
        log.error("%s", message)
        with self._lock:
            self.result.errors.append(message)

    def _warning(self, message: str) -> None:
        log.warning("%s", message)
        with self._lock:
            self.result.warnings.append(message)

    # -- DistributionHelpers.psm1 ---------------------------------------------------------------------------------
    def find_labs(self, subscription_id: str, lab_name: str) -> list[Lab]:
        """``Find-AzureRmResource -ResourceType labs | Where-Object Name -eq``: every lab of that name."""
        self._cmdlet("Find-AzureRmResource")
        wanted = lab_name.casefold()
        return [
            lab
            for lab in self._arm(subscription_id).labs.list_by_subscription()
            if (lab.name or "").casefold() == wanted
        ]

    def get_lab(self, subscription_id: str, resource_group: str, lab_name: str) -> Lab:
        """``Get-AzureRmResource -ResourceType labs``."""
        self._cmdlet("Get-AzureRmResource (lab)")
        return self._arm(subscription_id).labs.get(resource_group, lab_name)

    def get_lab_storage_info(self, subscription_id: str, lab: Lab, blob_name: str | None = None) -> dict[str, str]:
        """``GetLabStorageInfo``: re-read the lab, name its artifacts account, fetch its "key" (upload URI)."""
        resource_group = resource_group_of(lab.id or "")
        source = self.get_lab(subscription_id, resource_group, lab.name or "")
        account_id = source.artifacts_storage_account or ""
        account = account_id[account_id.rfind("/") + 1 :]
        self._cmdlet(LISTKEYS_SUBSTITUTE)
        response = self._arm(subscription_id).labs.generate_upload_uri(
            resource_group, lab.name or "", blob_name=blob_name
        )
        return {"resourceGroupName": resource_group, "storageAcctName": account, "uploadUri": response.upload_uri or ""}

    def get_image_infos_for_lab(self, lab_name: str) -> list[dict[str, Any]]:
        """``GetImageInfosForLab``: find the factory lab again and download every ``*json`` sidecar."""
        subscription_id = self.settings.factory_subscription_id
        labs = self.find_labs(subscription_id, lab_name)
        if not labs:
            raise LookupError(f"factory lab {lab_name} not found in subscription {subscription_id}")
        info = self.get_lab_storage_info(subscription_id, labs[0])
        account = info["storageAcctName"]
        self._cmdlet("Get-AzureStorageBlob")
        container = self._container(account, ROOT_CONTAINER)
        images: list[dict[str, Any]] = []
        with container:
            names = [b.name for b in container.list_blobs() if b.name.endswith("json")]
            for name in names:
                self._cmdlet("Get-AzureStorageBlobContent")
                data = container.download_blob(name).readall()
                images.append(json.loads(data.decode("utf-8-sig")))
        return images

    # -- DistributeImages.ps1 ---------------------------------------------------------------------------------
    def log_unused(self) -> None:
        """``logMessageForUnusedImagePaths`` + ``logErrorForUnusedImages`` (local files only)."""
        golden = self.settings.golden_images
        if golden is None:
            return
        files = sorted(p.relative_to(golden).as_posix() for p in golden.rglob("*.json"))
        for lab in self.settings.labs:
            for path in lab.get("ImagePaths", []):
                prefix = str(path).replace("\\", "/").casefold()
                if not any(f.casefold().startswith(prefix) for f in files):
                    self._error(
                        f"The Lab named {lab.get('LabName')} contains an ImagePath entry {path} which does not "
                        "point to any existing files in the GoldenImages folder."
                    )
        for f in files:
            if not any(f.startswith(str(p)) for lab in self.settings.labs for p in lab.get("ImagePaths", [])):
                self._warning(f"Labs.json does not include any labs that reference {f}")

    def plan(self) -> list[CopyObject]:
        """Build ``$thingsToCopy``, pair by pair, with the original's calls for each pair."""
        s = self.settings
        source_labs = self.find_labs(s.factory_subscription_id, s.factory_lab_name)
        if not source_labs:
            raise LookupError(f"factory lab {s.factory_lab_name} not found in {s.factory_subscription_id}")
        source_lab = source_labs[0]
        self.get_lab_storage_info(s.factory_subscription_id, source_lab)
        images = self.get_image_infos_for_lab(s.factory_lab_name)
        self.result.source_images = len(images)
        self.log_unused()
        log.info("Found %d target labs", len(s.labs))
        things: list[CopyObject] = []
        for target in sorted(s.labs, key=lambda lab: str(lab["SubscriptionId"])):
            for image in images:
                if not should_copy_image_to_lab(target, str(image.get("imagePath", ""))):
                    continue
                self.result.pairs_matched += 1
                copy = self._plan_pair(target, image, source_lab)
                if copy is not None:
                    things.append(copy)
        return things

    def _plan_pair(self, target: Mapping[str, Any], image: Mapping[str, Any], source_lab: Lab) -> CopyObject | None:
        subscription_id, lab_name = str(target["SubscriptionId"]), str(target["LabName"])
        found = self.find_labs(subscription_id, lab_name)
        if not found:
            self.result.lab_not_found += 1
            self._error(f"Unable to find a lab named {lab_name} in subscription with id {subscription_id}")
            return None
        resource_group = resource_group_of(found[0].id or "")
        lab = self.get_lab(subscription_id, resource_group, lab_name)
        storage = self.get_lab_storage_info(subscription_id, lab, blob_name=str(image["vhdFileName"]))
        self._cmdlet("Get-AzureRmResource (customImages)")
        wanted = str(image["imageName"]).casefold()
        existing = [
            i
            for i in self._arm(subscription_id).custom_images.list(resource_group, lab_name)
            if (i.name or "").casefold() == wanted
        ]
        if existing:
            self.result.skipped_existing += 1
            log.info("%s already exists in %s and will not be overwritten", image["imageName"], lab_name)
            return None
        if (lab.location or "").casefold() != (source_lab.location or "").casefold():
            self.result.refused_region += 1
            self._error(
                f"Lab location does not match. Source lab {source_lab.name} is in {source_lab.location} and "
                f"target lab {lab_name} is in {lab.location}"
            )
            return None
        log.info("Gathering data to copy %s to %s", image["imagePath"], lab_name)
        return CopyObject(
            image_name=str(image["imageName"]),
            image_description=str(image.get("description") or ""),
            image_path=str(image["imagePath"]),
            os_type=str(image.get("osType") or "Windows"),
            vhd_file_name=str(image["vhdFileName"]),
            target_lab_name=lab_name,
            target_account=storage["storageAcctName"],
            target_resource_group=storage["resourceGroupName"],
            target_subscription_id=subscription_id,
            target_upload_uri=storage["uploadUri"],
        )

    def _source_sas_url(self, blob: str) -> str:
        account = self.endpoints.factory_account
        now = datetime.now(UTC)
        token = generate_blob_sas(
            account_name=account,
            container_name=ROOT_CONTAINER,
            blob_name=blob,
            account_key=self.endpoints.account_keys[account],
            permission=BlobSasPermissions(read=True),
            start=now - timedelta(minutes=5),
            expiry=now + timedelta(hours=self.settings.read_sas_hours),
        )
        return f"{self.endpoints.account_url(account)}/{ROOT_CONTAINER}/{blob}?{token}"

    def copy_vhd_block(self, copy: CopyObject, outcome: JobOutcome) -> None:
        """``$copyVHDBlock``: copy, poll every ``copy_poll_seconds``, create the image, delete the copied VHD."""
        dest = BlobClient.from_blob_url(
            copy.target_upload_uri,
            connection_verify=self.endpoints.verify,
            raw_request_hook=self._hook("blob"),
            retry_total=0,
        )
        with dest:
            self._cmdlet("Start-AzureStorageBlobCopy")
            dest.start_copy_from_url(self._source_sas_url(copy.vhd_file_name))
            outcome.copy_started = time.time()
            log.info("Started copying %s to %s", copy.vhd_file_name, copy.target_account)
            self._cmdlet("Get-AzureStorageBlobCopyState")
            status = self._copy_status(dest)
            while status == "pending":
                self._cmdlet("Get-AzureStorageBlobCopyState")
                status = self._copy_status(dest)
                outcome.copy_polls += 1
                if status != "pending" and outcome.copy_seen_done is None:
                    outcome.copy_seen_done = time.time()
                self.sleep(self.settings.copy_poll_seconds)
            if outcome.copy_seen_done is None:
                outcome.copy_seen_done = time.time()
        if status != "success":
            outcome.status = "copy_failed"
            outcome.message = f"Copy Status should be Success but is reported as {status}"
            self._error(f"{copy.target_lab_name}/{copy.image_name}: {outcome.message}")
            return
        log.info(
            "%s successfully copied to Lab %s. Deploying image %s",
            copy.vhd_file_name,
            copy.target_lab_name,
            copy.image_name,
        )
        self._cmdlet("New-AzureRmResourceGroupDeployment")
        image = CustomImage(
            vhd=CustomImagePropertiesCustom(
                image_name=copy.vhd_file_name, sys_prep=copy.is_vhd_sysprepped, os_type=copy.os_type
            ),
            description=copy.image_description,
            tags={"ImagePath": copy.image_path},
        )
        poller = self._arm(copy.target_subscription_id).custom_images.begin_create_or_update(
            copy.target_resource_group, copy.target_lab_name, copy.image_name, image
        )
        created = poller.result()
        outcome.image_done = time.time()
        if (created.provisioning_state or "") != "Succeeded":
            outcome.status = "deploy_failed"
            outcome.message = f"Image deploy failed ({created.provisioning_state}). We should stop now"
            self._error(f"{copy.target_lab_name}/{copy.image_name}: {outcome.message}")
            return
        log.info("Successfully deployed image. Deleting copied VHD")
        self._cmdlet("Remove-AzureStorageBlob")
        self._delete_copied_vhd(copy)
        outcome.status = "created"

    @staticmethod
    def _copy_status(blob: BlobClient) -> str:
        props = blob.get_blob_properties()
        return str(props.copy.status or "").split(".")[-1].lower() if props.copy else ""

    def _delete_copied_vhd(self, copy: CopyObject) -> None:
        if copy.target_account in self.endpoints.account_keys:
            with self._blob(copy.target_account, UPLOAD_CONTAINER, copy.vhd_file_name) as blob:
                blob.delete_blob()
            return
        with BlobClient.from_blob_url(
            copy.target_upload_uri, connection_verify=self.endpoints.verify, raw_request_hook=self._hook("blob")
        ) as blob:
            try:
                blob.delete_blob()
            except Exception as exc:  # the upload SAS has no delete permission on Azure either
                self._warning(f"copied VHD uploads/{copy.vhd_file_name} not deleted: {redact(str(exc))[:200]}")

    def _job(self, copy: CopyObject, outcome: JobOutcome) -> None:
        outcome.started = time.time()
        try:
            self.copy_vhd_block(copy, outcome)
        except Exception as exc:
            outcome.status = "error"
            outcome.message = redact(f"{type(exc).__name__}: {exc}")[:500]
            self._error(f"{copy.target_lab_name}/{copy.image_name}: {outcome.message}")
        finally:
            outcome.finished = time.time()

    def run_jobs(self, things: Sequence[CopyObject]) -> None:
        """Start one background job per copy, at most ``max_concurrent_jobs`` running; wait for all."""
        threads: list[threading.Thread] = []
        for index, copy in enumerate(things):
            while sum(1 for t in threads if t.is_alive()) >= self.settings.max_concurrent_jobs:
                log.info("Throttling background tasks after starting %d of %d tasks", index, len(things))
                self.result.throttle_waits += 1
                self.sleep(self.settings.throttle_seconds)
            log.info("Creating background task to distribute image %d of %d", index + 1, len(things))
            outcome = JobOutcome(
                image_name=copy.image_name,
                lab_name=copy.target_lab_name,
                account=copy.target_account,
                blob=copy.vhd_file_name,
            )
            self.result.jobs.append(outcome)
            thread = threading.Thread(target=self._job, args=(copy, outcome), name=f"job-{index + 1}", daemon=True)
            thread.start()
            threads.append(thread)
        if not threads:
            log.info("No images to distribute")
        for thread in threads:
            thread.join()

    def clean_up(self, things: Sequence[CopyObject]) -> None:
        """The closing loop: per copy, find the lab again, fetch its "keys", look at the temporary container."""
        for copy in things:
            labs = self.find_labs(copy.target_subscription_id, copy.target_lab_name)
            if not labs:
                continue
            info = self.get_lab_storage_info(copy.target_subscription_id, labs[0])
            account = info["storageAcctName"]
            if account not in self.endpoints.account_keys:
                continue
            self._cmdlet("Get-AzureStorageContainer")
            container = self._container(account, UPLOAD_CONTAINER)
            with container:
                try:
                    container.get_container_properties()
                except ResourceNotFoundError:
                    continue

    def run(self) -> BaselineResult:
        """Run the whole script; return what happened."""
        self.result = BaselineResult(started=time.time())
        try:
            things = self.plan()
            self.run_jobs(things)
            self.clean_up(things)
            log.info("Distribution of %d images is complete", len(things))
        finally:
            self.result.finished = time.time()
            for client in self._clients.values():
                client.close()
            self._clients.clear()
        return self.result
