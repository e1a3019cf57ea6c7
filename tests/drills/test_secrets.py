"""Secrets drill: after a full run no key, client secret or SAS signature is anywhere the run wrote or shows.

Scanned: every file under AIRFLOW_HOME (task and trigger logs, the processes' logs, verify's reports), every
XCom value and task instance (with its rendered template fields) through the REST API. Every SAS the product
got from the local Azure and every copy source it used is checked for least privilege and lifetime.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from image_factory.configuration import load_factory_settings
from image_factory.redact import redact
from stack.__main__ import DAG_ID, Stack, verify_report
from tests.drills import invariants
from tests.drills.conftest import REPO, drill_stack

KEY = "bm90LWEtcmVhbC1rZXktYnV0LWxvbmctZW5vdWdoLXRvLWxvb2stbGlrZS1vbmU9PQ=="
SAS_URL = f"https://127.0.0.1:1/devlabstore/uploads/x.vhd?sv=2025-01-05&se=2030-01-01T00%3A00%3A00Z&sr=b&sp=rcwd&sig=AbC%2Bd{KEY[:10]}"


def test_the_scanner_finds_what_it_must_and_spares_redacted_text() -> None:
    """The scan can fail: a key, a client secret and a raw SAS are found; their redacted forms are not."""
    secrets = {"account key": KEY, "client secret": "s3cr3t-value-123"}
    leaked = f"conn=AccountKey={KEY}; url={SAS_URL}; token s3cr3t-value-123"
    hits = invariants.secret_hits(leaked, secrets, "log")
    assert sorted(hits) == sorted(
        ["log: account key", "log: client secret", "log: unredacted SAS signature (AbC%…)"]
    ), hits
    assert invariants.secret_hits(redact(f"AccountKey={KEY} {SAS_URL}"), secrets, "log") == []
    assert invariants.secret_hits(SAS_URL.replace("sig=AbC", "sig%3DAbC"), {}, "log"), "URL-encoded sig= too"
    assert invariants.secret_hits("sig=REDACTED&sp=r", {}, "emulator") == []


def test_sas_checks_refuse_over_privileged_or_long_lived_tokens() -> None:
    stats = {
        "sas_issued": [
            {
                "account": "diskstore",
                "container": "disks",
                "blob": "d.vhd",
                "permission": "rw",
                "purpose": "disk-access",
                "issued_at": "2030-01-01T00:00:00+00:00",
                "expiry": "2030-01-02T00:00:00+00:00",
            },
            {
                "account": "devlabstore",
                "container": "uploads",
                "blob": None,
                "permission": "rcwd",
                "purpose": "upload",
                "issued_at": "2030-01-01T00:00:00+00:00",
                "expiry": "2030-01-01T01:00:00+00:00",
            },
        ],
        "copies": {
            "transfers": [
                {
                    "source": "https://h/factorystore/imagefactoryvhds/a.vhd?sp=rw&sr=c&se=2099-01-01T00:00:00Z&sig=REDACTED",
                    "source_account": "factorystore",
                    "destination_account": "devlabstore",
                    "container": "vhds",
                    "blob": "a.vhd",
                }
            ]
        },
    }
    problems = invariants.sas_problems(stats, read_sas_hours=4, disk_access_seconds=3600)
    assert len(problems) == 8, problems  # the upload SAS: no single blob, and a delete Azure never grants


@pytest.fixture(scope="module")
def full_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, str]]:
    """A stack whose nightly run (capture + distribution of the whole demo) has finished."""
    with drill_stack(tmp_path_factory.mktemp("secrets")) as stack:
        runs = [r for r in stack.client.dag_runs(DAG_ID) if r.get("run_type") == "scheduled"]
        assert runs and runs[0]["state"] == "success", runs
        yield stack, str(runs[0]["dag_run_id"])


@pytest.mark.drill
@pytest.mark.timeout(1200)
def test_no_secret_in_logs_xcoms_rendered_fields_or_reports(full_run: tuple[Stack, str]) -> None:
    stack, run_id = full_run
    invariants.assert_invariants(stack.azure.state(), verify_report(stack, run_id))
    hits, scanned = invariants.scan_everything(stack, [run_id])
    assert scanned["files"] > 10 and scanned["xcoms"] >= 7 and scanned["task_instances"] >= 13, scanned
    reports = list(stack.airflow.report_dir.rglob("*.json"))
    assert reports, "verify wrote its report"
    assert hits == [], "\n".join(hits)
    print(f"secrets drill: scanned {scanned}, {len(hits)} hit(s)")


@pytest.mark.drill
def test_every_sas_is_least_privilege_and_short_lived(full_run: tuple[Stack, str]) -> None:
    stack, _ = full_run
    settings = load_factory_settings(REPO / "Configuration")
    stats = stack.azure.stats()
    purposes = sorted({s["purpose"] for s in stats["sas_issued"]})
    assert purposes == ["disk-access", "upload"], purposes
    lab_copies = [c for c in stats["copies"]["transfers"] if c["destination_account"] != invariants.FACTORY_ACCOUNT]
    assert len(lab_copies) >= 7, "the distribution sources are checked"
    problems = invariants.sas_problems(
        stats, read_sas_hours=settings.read_sas_hours, disk_access_seconds=settings.disk_access_seconds
    )
    assert problems == [], "\n".join(problems)
