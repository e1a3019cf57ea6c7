"""``python -m stack demo-retention``: the demo, then older versions seeded, then a run whose ``retire`` deletes them.

1. The nightly run Airflow schedules on unpause captures and distributes today's version (as ``make demo``).
2. Two older versions of every catalogued image are seeded as the factory would have left them: VHD + sidecar in
   the factory catalogue, and a custom image with the factory's tags in every lab that has today's version; plus a
   user's image in DevLab with the same ImagePath tag but without the factory's marker.
3. A run triggered through the REST API has nothing to capture or distribute; its ``retire`` group keeps the newest
   ``ImagesToSave`` (2 in the sample) and deletes the oldest seeded version everywhere. The retention table it
   logged is printed from its artifact, and the outcome is checked against the local Azure.
4. With ``--clean-factory``, one more run with ``clean_factory=true`` deletes the factory VMs captured in step 1
   and ``vm-broken`` (failed to provision): that run ends failed on purpose, naming ``vm-broken``.

It seeds through the Azure SDKs over HTTPS as any client of the local Azure would; it never imports the product.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from azure.identity import ClientSecretCredential
from azure.mgmt.devtestlabs import DevTestLabsClient
from azure.mgmt.devtestlabs.models import CustomImage, CustomImagePropertiesCustom
from azure.storage.blob import BlobClient, BlobServiceClient, ContainerClient

if TYPE_CHECKING:
    from collections.abc import Iterable

    from stack.__main__ import Stack

API_VERSION = "2018-09-15"
CONTAINER = "imagefactoryvhds"
MANAGED_BY = ("ImageFactory.ManagedBy", "airflow-image-factory")
USER_IMAGE = "my-own-ubuntu"
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def add_parser(sub: Any) -> None:
    """Register ``demo-retention`` on ``python -m stack``'s sub-commands."""
    demo = sub.add_parser(
        "demo-retention", help="run the demo, seed older versions, run again and show what retention deleted"
    )
    demo.add_argument("--executor", choices=("local", "celery"), default="local")
    demo.add_argument(
        "--clean-factory", action="store_true", help="also run factory clean-up (that run fails, naming vm-broken)"
    )
    demo.set_defaults(func=cmd_demo_retention)


class Seeder:
    """Writes older versions into the local Azure through the Azure SDKs (storage key, DevTest Labs ARM)."""

    def __init__(self, stack: Stack) -> None:
        info = stack.azure.info
        self.ca = stack.azure.ca_bundle
        acct = info["storage"]["factorystore"]
        self.catalogue: ContainerClient = BlobServiceClient(
            acct["blob_endpoint"],
            credential={"account_name": "factorystore", "account_key": acct["account_key"]},
            connection_verify=self.ca,
        ).get_container_client(CONTAINER)
        self.credential = ClientSecretCredential(
            info["tenant_id"],
            info["client_id"],
            info["client_secret"],
            authority=info["authority_host"],
            connection_verify=self.ca,
            disable_instance_discovery=True,
        )
        self.arm_endpoint = info["arm_endpoint"]
        self._clients: dict[str, DevTestLabsClient] = {}

    def dtl(self, subscription: str) -> DevTestLabsClient:
        if subscription not in self._clients:
            self._clients[subscription] = DevTestLabsClient(
                self.credential,
                subscription,
                base_url=self.arm_endpoint,
                api_version=API_VERSION,
                connection_verify=self.ca,
            )
        return self._clients[subscription]

    def sidecars(self) -> list[dict[str, Any]]:
        """Return the catalogue's sidecars (JSON documents)."""
        found = []
        for blob in self.catalogue.list_blobs():
            if blob.name.endswith(".json"):
                found.append(json.loads(self.catalogue.download_blob(blob.name).readall().decode("utf-8-sig")))
        return found

    def seed_catalogue(self, sidecar: dict[str, Any], version: str) -> dict[str, Any]:
        """Copy today's VHD + sidecar of one image under an older version; return the older sidecar."""
        old = dict(sidecar)
        name = _DATE.sub(version, str(sidecar["imageName"]), count=1)
        old.update(
            imageName=name,
            vhdFileName=f"{name}.vhd",
            version=version,
            timestamp=f"{version}T02:00:00+00:00",
            sourceVm=None,
        )
        source = self.catalogue.get_blob_client(str(sidecar["vhdFileName"]))
        data = source.download_blob().readall()
        _page_blob(self.catalogue.get_blob_client(old["vhdFileName"]), data)
        self.catalogue.upload_blob(f"{name}.json", json.dumps(old, indent=2).encode(), overwrite=True)
        return old

    def seed_images(self, lab: dict[str, Any], images: Iterable[tuple[str, dict[str, str], str, bool]]) -> None:
        """Create custom images (name, tags, osType, sysPrep) in a lab from one uploaded seed VHD."""
        client = self.dtl(lab["subscription_id"])
        rg, name = lab["resource_group"], lab["name"]
        upload = client.labs.generate_upload_uri(rg, name, blob_name="retention-seed.vhd").upload_uri
        blob = BlobClient.from_blob_url(str(upload), connection_verify=self.ca)
        disk = self.catalogue.get_blob_client(self._any_vhd()).download_blob().readall()
        _page_blob(blob, disk)
        for image_name, tags, os_type, sysprep in images:
            body = CustomImage(
                vhd=CustomImagePropertiesCustom(image_name="retention-seed.vhd", os_type=os_type, sys_prep=sysprep),
                description=f"seeded by demo-retention ({tags.get('ImageFactory.Version', 'user')})",
                tags=tags,
            )
            client.custom_images.begin_create_or_update(rg, name, image_name, body, polling=False).result()
        self._wait_succeeded(client, rg, name)
        # The upload SAS grants no delete (as in Azure): delete with the principal's token and data role.
        BlobClient.from_blob_url(
            str(upload).split("?", 1)[0], credential=self.credential, connection_verify=self.ca
        ).delete_blob()

    def _any_vhd(self) -> str:
        return next(b.name for b in self.catalogue.list_blobs() if b.name.endswith(".vhd"))

    @staticmethod
    def _wait_succeeded(client: DevTestLabsClient, rg: str, lab: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while any(i.provisioning_state != "Succeeded" for i in client.custom_images.list(rg, lab)):
            if time.monotonic() > deadline:
                raise TimeoutError(f"seeded images in {lab} did not succeed within {timeout:.0f}s")
            time.sleep(0.5)


def _page_blob(blob: BlobClient, data: bytes) -> None:
    blob.create_page_blob(size=len(data))
    step = 4 * 1024 * 1024
    for offset in range(0, len(data), step):
        chunk = data[offset : offset + step]
        blob.upload_page(chunk, offset=offset, length=len(chunk))


def seed_older_versions(stack: Stack, versions: list[str]) -> dict[str, Any]:
    """Seed ``versions`` of every catalogued image in the catalogue and in every lab that has it today."""
    seeder = Seeder(stack)
    state = stack.azure.state()
    today = seeder.sidecars()
    seeded: dict[str, Any] = {"catalogue": [], "labs": {}}
    by_name = {str(s["imageName"]).lower(): s for s in today}
    per_lab: dict[str, list[tuple[str, dict[str, str], str, bool]]] = {}
    for version in versions:
        for sidecar in today:
            seeded["catalogue"].append(seeder.seed_catalogue(sidecar, version)["imageName"])
    for lab in state["labs"]:
        for image in lab["images"]:
            if str(image["name"]).lower() not in by_name or dict(image["tags"]).get(MANAGED_BY[0]) != MANAGED_BY[1]:
                continue
            for version in versions:
                tags = {**image["tags"], "ImageFactory.Version": version}
                name = _DATE.sub(version, str(image["name"]), count=1)
                per_lab.setdefault(lab["name"], []).append(
                    (name, tags, image["vhd"]["osType"], bool(image["vhd"].get("sysPrep", True)))
                )
    dev = next(lab for lab in state["labs"] if lab["name"] == "DevLab")
    ubuntu = {"ImagePath": "Ubuntu/Ubuntu2204.json", "ImageFactory.Version": versions[-1]}
    per_lab.setdefault("DevLab", []).append((USER_IMAGE, ubuntu, "Linux", True))
    for lab in state["labs"]:
        if lab["name"] in per_lab:
            seeder.seed_images(lab, per_lab[lab["name"]])
            seeded["labs"][lab["name"]] = len(per_lab[lab["name"]])
    seeded["user_image"] = f"{dev['name']}/{USER_IMAGE}"
    return seeded


def retire_artifact(stack: Stack, run_id: str) -> dict[str, Any] | None:
    """Return the retire artifact of ``run_id`` (``*.retire.json`` next to verify's report), if written."""
    return stack.airflow.report("*.retire.json", "dag_run_id", run_id)


def _run(stack: Stack, conf: dict[str, Any], what: str) -> tuple[dict[str, Any], dict[str, Any] | None]:
    from stack.__main__ import DAG_ID, follow_run  # noqa: PLC0415 - stack.__main__ imports this module

    run_id = stack.client.trigger(DAG_ID, conf=conf)
    print(f"\ntriggered {DAG_ID} run {run_id} through the REST API: {what}")
    run = follow_run(stack, run_id)
    artifact = retire_artifact(stack, run_id)
    print()
    print(artifact["table"] if artifact else "(retire wrote no artifact: see the run's retire.decide log)")
    return run, artifact


def check_retired(stack: Stack, oldest: str, kept: str) -> list[str]:
    """Return what is wrong after retention: the oldest seeded version left anywhere, the kept one or the user's
    image missing."""
    state = stack.azure.state()
    problems = []
    blobs = [b["name"] for b in state["blobs"]["factorystore"].get(CONTAINER, [])]
    problems += [f"catalogue still holds {b}" for b in blobs if oldest in b]
    if not any(kept in b for b in blobs):
        problems.append(f"catalogue lost version {kept}")
    names = set()
    for lab in state["labs"]:
        for image in lab["images"]:
            names.add(f"{lab['name']}/{image['name']}")
            if dict(image["tags"]).get("ImageFactory.Version") == oldest and image["name"] != USER_IMAGE:
                problems.append(f"{lab['name']} still has {image['name']}")
    if f"DevLab/{USER_IMAGE}" not in names:
        problems.append(f"the user's image DevLab/{USER_IMAGE} was deleted")
    return problems


def _nightly(stack: Stack) -> bool:
    """Step 1: the nightly run Airflow schedules on unpause; tell whether it succeeded."""
    from stack.__main__ import DAG_ID, follow_run, summarize, wait_for_scheduled_run  # noqa: PLC0415 - it imports this module

    stack.client.unpause(DAG_ID)
    nightly = wait_for_scheduled_run(stack)
    if not nightly:
        print("Airflow scheduled no run on unpause", file=sys.stderr)
        return False
    print(f"1. {DAG_ID} unpaused: Airflow scheduled the latest nightly run {nightly}")
    started = time.monotonic()
    ok, _ = summarize(stack, follow_run(stack, nightly), time.monotonic() - started, show_matrix=True)
    return ok


def _seed(stack: Stack) -> tuple[str, str, dict[str, Any]]:
    """Step 2: seed the versions of 14 and 7 days before the newest; return (oldest, kept, what was seeded)."""
    sidecars = Seeder(stack).sidecars()
    newest = max(str(s["version"]) for s in sidecars)
    day = date.fromisoformat(newest)
    kept, oldest = (day - timedelta(days=7)).isoformat(), (day - timedelta(days=14)).isoformat()
    seeded = seed_older_versions(stack, [oldest, kept])
    print(
        f"\n2. seeded versions {oldest} and {kept}: {len(seeded['catalogue'])} catalogue versions, custom images "
        + ", ".join(f"{lab} {n}" for lab, n in sorted(seeded["labs"].items()))
        + f" (incl. the user's image {seeded['user_image']}, without the factory's marker)"
    )
    return oldest, kept, seeded


def _retire(stack: Stack, oldest: str, kept: str, seeded: dict[str, Any]) -> bool:
    """Step 3: a run with nothing new whose ``retire`` deletes the oldest version; tell whether all went right."""
    stack.azure.post("/reset-stats", {})
    run, artifact = _run(stack, {}, f"3. nothing new to distribute; retire keeps the newest 2 and deletes {oldest}")
    problems = check_retired(stack, oldest, kept)
    deletions = len((artifact or {}).get("deletions", []))
    arm = stack.azure.stats().get("arm", {})
    ok = run["state"] == "success" and not problems and deletions > 0
    print(
        f"\n{'OK' if ok else 'FAILED'}: run {run['state']}, {deletions} deletion(s), "
        f"{arm.get('writes', 0)} ARM writes, the user's image {seeded['user_image']} "
        + ("survived" if f"DevLab/{USER_IMAGE}" not in " ".join(problems) else "was deleted")
    )
    for problem in problems:
        print(f"  - {problem}")
    return ok


def _clean_factory(stack: Stack) -> bool:
    """Step 4: the factory clean-up run; it must fail, naming ``vm-broken``."""
    run, artifact = _run(stack, {"retire": False, "clean_factory": True}, "4. factory clean-up")
    failed_as_expected = run["state"] == "failed" and any(
        d.get("name") == "vm-broken" for d in (artifact or {}).get("deletions", [])
    )
    print(
        f"\n{'OK' if failed_as_expected else 'FAILED'}: clean-up run {run['state']} "
        "(expected: failed, naming vm-broken, after deleting the captured VMs)"
    )
    return failed_as_expected


def cmd_demo_retention(args: argparse.Namespace) -> int:
    from stack.__main__ import stack_for  # noqa: PLC0415 - stack.__main__ imports this module

    with stack_for(args, "demo-retention", emulator_config={"copy_seconds": 2, "lro_seconds": 1}) as stack:
        if not _nightly(stack):
            return 1
        oldest, kept, seeded = _seed(stack)
        ok = _retire(stack, oldest, kept, seeded)
        if ok and args.clean_factory:
            ok = _clean_factory(stack)
        if not ok:
            print(f"logs: {stack.airflow.log_dir} and {stack.airflow.settings.home / 'task-logs'}", file=sys.stderr)
        return 0 if ok else 1
