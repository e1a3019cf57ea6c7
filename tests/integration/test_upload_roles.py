"""Upload clean-up with and without the data-plane role, with dag.test() on a local Azure with region fan-out.

The upload SAS grants no delete: the factory deletes uploads with its Entra token, which needs *Storage Blob Data
Contributor* on each lab's storage account. The demo world grants it on both subscriptions; this module removes it
on the second one (QALab and NorthLab), so their uploads stay — the run still succeeds, and verify reports them
once per lab with their bytes and the role. The first subscription's labs, which keep the role, are cleaned.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.emulator.conftest import dtl_client
from tests.integration.conftest import LocalAzure, run_dag
from tests.integration.test_fanout import north_azure, north_config  # noqa: F401 - module fixtures

pytestmark = [pytest.mark.emulator, pytest.mark.airflow, pytest.mark.weeks]  # two nights: make weeks

ROLE = "Storage Blob Data Contributor"
SECOND_SUBSCRIPTION = "/subscriptions/22222222-2222-4222-8222-222222222222"


def _uploads(state: dict[str, Any]) -> dict[str, list[str]]:
    return {
        account: sorted(blob["name"] for blob in containers.get("uploads", []))
        for account, containers in state["blobs"].items()
        if containers.get("uploads")
    }


def _report(env: dict[str, str], day: str) -> dict[str, Any]:
    """Return verify's report of the night ``day`` (not retire's ``.retire.json``)."""
    folder = Path(env["IMAGE_FACTORY_REPORT_DIR"])
    (path,) = [p for p in folder.glob(f"{day}__*.json") if not p.name.endswith(".retire.json")]
    return dict(json.loads(path.read_text()))


def _delete_image(azure: LocalAzure, lab: str, image_path: str) -> None:
    """Delete a lab's custom image of ``image_path`` through ARM, as a lab user would."""
    entry = next(item for item in azure.state()["labs"] if item["name"] == lab)
    name = next(i["name"] for i in entry["images"] if i["tags"].get("ImagePath") == image_path)
    with dtl_client(azure.info, entry["subscription_id"]) as client:
        client.custom_images.begin_delete(entry["resource_group"], lab, name).result()


def test_without_the_data_role_uploads_stay_and_are_reported_then_the_role_cleans_the_next_night(
    north_azure: LocalAzure,  # noqa: F811
    north_config: Path,  # noqa: F811
    airflow_home: dict[str, str],
) -> None:
    grant = {"principal": "image-factory", "scope": SECOND_SUBSCRIPTION, "role": ROLE}
    removed = north_azure.control.request("DELETE", "/role-assignments", json=grant)
    assert removed.status_code == 200, removed.text
    env = {**airflow_home, **north_azure.connection_env(), "IMAGE_FACTORY_CONFIG_DIR": str(north_config)}
    env["IMAGE_FACTORY_REPORT_DIR"] = str(Path(airflow_home["AIRFLOW_HOME"]) / "reports-upload-roles")
    result = run_dag(env, {"copy_poll_seconds": 1, "retire": False}, "2025-05-01T02:00:00")
    assert result["state"] == "success", result["log"]
    assert set(result["tasks"]["distribute"]) == {"success"}
    assert result["tasks"]["cleanup_uploads"] == ["success"]

    state = north_azure.state()
    left = _uploads(state)
    assert set(left) == {"qalabstore", "northlabstore"}, "labs that keep the role are cleaned"
    assert len(left["qalabstore"]) == 2 and len(left["northlabstore"]) == 1  # QALab's seed kept for NorthLab too
    refused = north_azure.stats()["blob"]["bearer"]["refused"]
    assert refused.get("AuthorizationPermissionMismatch", 0) >= 3

    report = _report(env, "2025-05-01")
    assert report["problems"] == []
    reported = {lab["lab"]: lab for lab in report["uploads_left"]}
    assert sorted(reported) == ["NorthLab", "QALab"]
    qalab = reported["QALab"]
    assert qalab["blobs"] == left["qalabstore"] and qalab["role"] == ROLE and "qalabstore" in qalab["fix"]
    sizes = {b["name"]: b["size"] for b in state["blobs"]["qalabstore"]["uploads"]}
    assert qalab["bytes"] == sum(sizes.values()) > 0
    lines = [line for line in result["output"].splitlines() if "upload(s) left in" in line]
    assert [sum(f"Lab {lab}:" in line for line in lines) for lab in ("QALab", "NorthLab")] == [1, 1], lines

    # The role granted again, a lab user deletes QALab's SQLExpress image: the next night re-creates it from the
    # upload night one left (the same version's blob), and this time deletes that upload.
    assert north_azure.control.post("/role-assignments", json=grant).status_code == 201
    _delete_image(north_azure, "QALab", "Win2016/SQLExpress.json")
    again = run_dag(env, {"copy_poll_seconds": 1, "retire": False}, "2025-05-02T02:00:00")
    assert again["state"] == "success", again["log"]
    assert again["tasks"]["distribute"] == ["success"]
    after = _uploads(north_azure.state())
    ubuntu_seed = [b for b in left["qalabstore"] if b.startswith("Ubuntu")]
    assert after == {"qalabstore": ubuntu_seed, "northlabstore": left["northlabstore"]}, (
        "night two deletes its own upload; night one's other leftovers stay"
    )
    assert _report(env, "2025-05-02")["uploads_left"] == []
