"""Checks every drill ends with, read from the emulator's ``GET /_emulator/state`` (and verify's report).

Each check returns a list of violations (sentences naming lab, image, blob); an empty list means it holds, so a
failing drill says exactly what broke. ``violations`` runs them all; ``assert_invariants`` fails with the list.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from image_factory import imagepaths
from image_factory.models import IMAGE_PATH_TAG, VERSION_TAG
from stack.__main__ import DAG_ID

if TYPE_CHECKING:
    from stack.__main__ import Stack

FACTORY_LAB = "ImageFactory"
FACTORY_ACCOUNT = "factorystore"
CATALOGUE_CONTAINER = "imagefactoryvhds"
UPLOADS_CONTAINER = "uploads"
#: How long DevTest Labs' generateUploadUri SAS lives (Azure's example: about a day).
UPLOAD_SAS_LIFETIME = timedelta(hours=24)
SUCCEEDED = "Succeeded"


def lab_images(state: Mapping[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Return lab name -> its custom images (the factory lab left out)."""
    return {
        str(lab["name"]): list(lab.get("images", []))
        for lab in state.get("labs", [])
        if str(lab["name"]) != FACTORY_LAB
    }


def image_identity(image: Mapping[str, Any]) -> tuple[str, str]:
    """Return (ImagePath key, version) of a custom image from its tags ("?" when a tag is missing)."""
    tags = image.get("tags") or {}
    path = tags.get(IMAGE_PATH_TAG)
    return (imagepaths.key(path) if path else "?", str(tags.get(VERSION_TAG) or "?"))


def image_problems(state: Mapping[str, Any]) -> list[str]:
    """One Succeeded image per (lab, ImagePath, version): no duplicate, nothing Failed/Creating/untagged."""
    problems: list[str] = []
    for lab, images in lab_images(state).items():
        for image in images:
            if image.get("provisioning_state") != SUCCEEDED:
                problems.append(f"{lab}: image {image['name']} is {image.get('provisioning_state')}")
            if "?" in image_identity(image):
                problems.append(f"{lab}: image {image['name']} lacks the ImagePath or version tag")
        counts = Counter(image_identity(i) for i in images if i.get("provisioning_state") == SUCCEEDED)
        problems.extend(
            f"{lab}: {count} Succeeded images of {path} {version} (duplicates)"
            for (path, version), count in sorted(counts.items())
            if count > 1
        )
    return problems


def uploads_left(state: Mapping[str, Any]) -> list[str]:
    """Every blob left in any account's ``uploads`` container."""
    return [
        f"{account}/{UPLOADS_CONTAINER}/{blob['name']} left behind"
        for account, containers in sorted(state.get("blobs", {}).items())
        for blob in containers.get(UPLOADS_CONTAINER, [])
    ]


def disk_access_left(state: Mapping[str, Any]) -> list[str]:
    """Every managed disk whose read access is still granted."""
    access = state.get("disk_access", {})
    grants = [f"disk access still granted on {g['disk_id']}" for g in access.get("grants", [])]
    if not grants and access.get("granted_now"):
        grants.append(f"{access['granted_now']} disk access grant(s) left")
    return grants


def catalogue_problems(state: Mapping[str, Any]) -> list[str]:
    """The factory catalogue: every ``.vhd`` has its ``.json`` sidecar and vice versa, no copy left pending."""
    blobs = state.get("blobs", {}).get(FACTORY_ACCOUNT, {}).get(CATALOGUE_CONTAINER, [])
    names = {str(b["name"]) for b in blobs}
    vhds = {n[: -len(".vhd")] for n in names if n.endswith(".vhd")}
    sidecars = {n[: -len(".json")] for n in names if n.endswith(".json")}
    problems = [f"catalogue: {stem}.vhd has no {stem}.json" for stem in sorted(vhds - sidecars)]
    problems += [f"catalogue: {stem}.json has no {stem}.vhd" for stem in sorted(sidecars - vhds)]
    problems += [f"catalogue: unexpected blob {n}" for n in sorted(names) if not n.endswith((".vhd", ".json"))]
    problems += [
        f"catalogue: {b['name']} copy is {b.get('copy_status')}"
        for b in blobs
        if str(b.get("copy_status") or "success").lower() != "success"
    ]
    return problems


def _succeeded_versions(images: Iterable[Mapping[str, Any]], path_key: str) -> set[str]:
    return {
        image_identity(i)[1]
        for i in images
        if i.get("provisioning_state") == SUCCEEDED and image_identity(i)[0] == path_key
    }


def report_problems(report: Mapping[str, Any] | None, state: Mapping[str, Any]) -> list[str]:
    """Verify's matrix agrees with the state: an ``ok`` cell has its image, a missing/failed version has none."""
    if report is None:
        return ["verify wrote no report for the run"]
    matrix = report.get("matrix") or {}
    images = lab_images(state)
    problems: list[str] = []
    for lab, row in (matrix.get("cells") or {}).items():
        for path, cell in row.items():
            have = _succeeded_versions(images.get(lab, []), imagepaths.key(path))
            if cell["state"] == "ok" and cell.get("version") not in have:
                problems.append(f"report says {lab} × {path} is ok {cell.get('version')}, the lab has {sorted(have)}")
            for issue in cell.get("issues", []):
                if issue["version"] in have:
                    problems.append(
                        f"report says {lab} × {path} {issue['version']} is {issue['state']}, the lab has it Succeeded"
                    )
    return problems


def violations(
    state: Mapping[str, Any], report: Mapping[str, Any] | None = None, *, with_report: bool = True
) -> list[str]:
    """Run every invariant on ``state`` (and ``report`` when ``with_report``); return every violation."""
    found = image_problems(state) + uploads_left(state) + disk_access_left(state) + catalogue_problems(state)
    if with_report:
        found += report_problems(report, state)
    return found


def assert_invariants(
    state: Mapping[str, Any], report: Mapping[str, Any] | None = None, *, with_report: bool = True
) -> None:
    """Fail listing every violated invariant."""
    found = violations(state, report, with_report=with_report)
    assert not found, "invariants violated:\n  - " + "\n  - ".join(found)


def succeeded_pairs(state: Mapping[str, Any]) -> Counter[tuple[str, str, str]]:
    """Count Succeeded images per (lab, ImagePath key, version)."""
    return Counter(
        (lab, *image_identity(image))
        for lab, images in lab_images(state).items()
        for image in images
        if image.get("provisioning_state") == SUCCEEDED
    )


# --------------------------------------------------------------------------------------------------------
# secrets and SAS

#: A SAS signature in a URL or text (also URL-encoded); its value must always be redacted.
SAS_SIG = re.compile(r"(?i)\bsig(?:=|%3D)([^&\s\"'<>\\,;)]*)")
#: What the product and the emulator write instead of a signature.
REDACTED_SIGS = ("***", "REDACTED", "%2A%2A%2A")
#: Files of a stack's AIRFLOW_HOME that hold the stack's own credentials or binary data (not the product's output).
NOT_SCANNED = ("airflow.db", "passwords.json", "jwt_secret", "airflow.cfg")


def secret_values(info: Mapping[str, Any]) -> dict[str, str]:
    """Return name -> value of every secret the local Azure handed out (keys, client secrets)."""
    secrets = {f"account key of {name}": str(acct["account_key"]) for name, acct in info.get("storage", {}).items()}
    secrets["client secret"] = str(info["client_secret"])
    for name, principal in info.get("principals", {}).items():
        secrets[f"client secret of {name}"] = str(principal["client_secret"])
    return {name: value for name, value in secrets.items() if value}


def secret_hits(text: str, secrets: Mapping[str, str], where: str) -> list[str]:
    """Return one line per secret or unredacted SAS signature found in ``text``."""
    hits = [f"{where}: {name}" for name, value in secrets.items() if value in text]
    for match in SAS_SIG.finditer(text):
        value = match.group(1)
        if value and not value.startswith(REDACTED_SIGS) and not value.startswith("*"):
            hits.append(f"{where}: unredacted SAS signature ({value[:4]}…)")
    return hits


def scanned_files(roots: Iterable[Path]) -> list[Path]:
    """Every regular file under ``roots`` except the stack's own credential files and databases."""
    files: list[Path] = []
    for root in roots:
        if root.is_file():
            files.append(root)
            continue
        files.extend(p for p in sorted(root.rglob("*")) if p.is_file() and not p.name.startswith(NOT_SCANNED))
    return files


def file_hits(roots: Iterable[Path], secrets: Mapping[str, str]) -> tuple[int, list[str]]:
    """Scan every file under ``roots``; return (files scanned, hits)."""
    files = scanned_files(roots)
    hits: list[str] = []
    for path in files:
        hits.extend(secret_hits(path.read_text(errors="replace"), secrets, str(path)))
    return len(files), hits


def sas_problems(
    stats: Mapping[str, Any], *, read_sas_hours: int, disk_access_seconds: int, now: datetime | None = None
) -> list[str]:
    """Check every SAS the product got from the emulator and every copy source it used (least privilege)."""
    problems: list[str] = []
    slack = timedelta(minutes=2)
    for sas in stats.get("sas_issued", []):
        issued = datetime.fromisoformat(sas["issued_at"])
        lifetime = datetime.fromisoformat(sas["expiry"]) - issued
        what = f"{sas['purpose']} SAS on {sas['account']}/{sas['container']}/{sas.get('blob')}"
        if sas["purpose"] == "upload":
            if sas["container"] != UPLOADS_CONTAINER or not sas.get("blob"):
                problems.append(f"{what}: an upload SAS must name one blob in '{UPLOADS_CONTAINER}'")
            if sas["account"] == FACTORY_ACCOUNT:
                problems.append(f"{what}: an upload SAS must never reach the factory account")
            if "d" in sas["permission"]:
                problems.append(f"{what}: an upload SAS grants no delete (Azure issues rcw)")
            if lifetime > UPLOAD_SAS_LIFETIME + slack:
                problems.append(f"{what}: lives {lifetime}, more than Azure's {UPLOAD_SAS_LIFETIME}")
        elif sas["purpose"] == "disk-access":
            if set(sas["permission"]) != {"r"}:
                problems.append(f"{what}: disk access must be read-only, not {sas['permission']!r}")
            if lifetime > timedelta(seconds=disk_access_seconds) + slack:
                problems.append(f"{what}: lives {lifetime}, more than DiskAccessSeconds {disk_access_seconds}")
        else:
            problems.append(f"{what}: unexpected purpose")
    moment = now or datetime.now(UTC)
    for copy in stats.get("copies", {}).get("transfers", []):
        query = parse_qs(urlsplit(str(copy["source"])).query)
        what = f"copy {copy['source_account']} -> {copy['destination_account']}/{copy['container']}/{copy['blob']}"
        if set(query.get("sp", ["?"])[0]) != {"r"}:
            problems.append(f"{what}: the source SAS must be read-only, not sp={query.get('sp')}")
        if query.get("sr", ["b"])[0] != "b":
            problems.append(f"{what}: the source SAS must name one blob, not sr={query.get('sr')}")
        if copy["destination_account"] != FACTORY_ACCOUNT:
            if copy["container"] != UPLOADS_CONTAINER:
                problems.append(f"{what}: a lab copy must land in '{UPLOADS_CONTAINER}'")
            expiry = query.get("se", [""])[0]
            if not expiry:
                problems.append(f"{what}: the factory read SAS has no expiry")
            elif (
                datetime.fromisoformat(expiry.replace("Z", "+00:00")) > moment + timedelta(hours=read_sas_hours) + slack
            ):
                problems.append(f"{what}: the factory read SAS expires {expiry}, beyond ReadSasHours {read_sas_hours}")
    return problems


def scan_everything(stack: Stack, run_ids: Iterable[str]) -> tuple[list[str], dict[str, int]]:
    """Scan a stack's logs and reports, and the XComs and task instances (rendered fields) of ``run_ids``.

    Return (hits, how many files / XComs / task instances were scanned).
    """
    secrets = secret_values(stack.azure.info)
    home = stack.airflow.settings.home
    files, hits = file_hits([home], secrets)
    xcoms = task_instances = 0
    for run_id in run_ids:
        for ti in stack.client.task_instances(DAG_ID, run_id):
            task_instances += 1
            where = f"run {run_id} task {ti['task_id']}[{ti.get('map_index', -1)}]"
            hits.extend(secret_hits(json.dumps(ti), secrets, f"{where} (task instance, rendered fields)"))
        entries = stack.client.request("GET", f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/~/xcomEntries")
        for entry in entries.get("xcom_entries", []):
            path = f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{entry['task_id']}/xcomEntries/{entry['key']}"
            value = stack.client.request("GET", path, params={"map_index": entry.get("map_index", -1)})
            xcoms += 1
            where = f"run {run_id} xcom {entry['task_id']}[{entry.get('map_index', -1)}].{entry['key']}"
            hits.extend(secret_hits(json.dumps(value), secrets, where))
    return hits, {"files": files, "xcoms": xcoms, "task_instances": task_instances}
