"""Told and announced, on the real stack: a night where QALab cannot be written to, then its catch-up.

The SMTP server is aiosmtpd, started here; the ``smtp`` connection is created through the REST API, as an
operator would. The night mails twice (the failed run, from the dag-processor's ``on_failure_callback``; QALab
behind, from the fleet model on verify's snapshot), announces the new Ubuntu version on its asset, and the
example consumer DAG (paused on creation, unpaused here) runs from that event. The catch-up mails nothing more.
Works after the other e2e modules or alone (it runs the nightly first when there is none).
"""

from __future__ import annotations

import html
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stack.__main__ import DAG_ID, Stack, follow_run, same_night, wait_for_scheduled_run
from tests.e2e.conftest import run_to_end
from tests.smtp_server import Inbox, body_text, smtp_server

pytestmark = pytest.mark.e2e

CONSUMER = "image_factory_consumer_example"
UBUNTU = "Ubuntu/Ubuntu2204.json"
QALAB_UPLOADS_REFUSED = {
    "service": "arm", "kind": "status", "status": 403, "operation": "Labs_GenerateUploadUri",
    "path": "*/labs/qalab/*", "message": "Test: the factory may not upload into QALab.",
}  # fmt: skip


@pytest.fixture(scope="module")
def inbox(stack: Stack, config_dir: Path) -> Iterator[Inbox]:
    """A local SMTP server, its Airflow connection and factory.json's Notifications; all undone afterwards."""
    factory_file = config_dir / "factory.json"
    original = factory_file.read_text(encoding="utf-8-sig")
    with smtp_server() as server:
        stack.client.request(
            "POST",
            "/connections",
            json={"connection_id": "factory_smtp", "conn_type": "smtp", "host": server.host, "port": server.port,
                  "extra": json.dumps(json.loads(server.connection_json())["extra"])},
        )  # fmt: skip
        factory = json.loads(original)
        factory["Notifications"] = {"Arguments": {"to": ["labs@example.com"], "smtp_conn_id": "factory_smtp"}}
        factory_file.write_text(json.dumps(factory, indent=2), encoding="utf-8")
        try:
            yield server
        finally:
            factory_file.write_text(original, encoding="utf-8")
            stack.azure.delete("/faults")
            stack.client.request("PATCH", f"/dags/{CONSUMER}", json={"is_paused": True})
            stack.client.request("DELETE", "/connections/factory_smtp")


def _wait(what: str, probe: Any, timeout: float = 240) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(2)
    raise AssertionError(f"{what} did not happen within {timeout:.0f}s")


def _mail(inbox: Inbox, subject_part: str) -> str:
    found = [m for _, m in inbox.messages if subject_part in str(m["Subject"])]
    assert len(found) == 1, [str(m["Subject"]) for _, m in inbox.messages]
    return html.unescape(body_text(found[0]))


def _events(stack: Stack, run_id: str) -> dict[str, dict[str, Any]]:
    page = stack.client.request("GET", "/assets/events", params={"source_dag_id": DAG_ID, "source_run_id": run_id})
    return {str(e["name"]): e for e in page["asset_events"]}


def test_a_night_with_a_failing_lab_mails_twice_and_its_image_triggers_the_consumer(stack: Stack, inbox: Inbox) -> None:
    consumer = stack.client.wait_for_dag(CONSUMER)
    assert consumer["is_paused"] is True, "the example consumer is paused on creation"
    stack.client.unpause(CONSUMER)
    stack.client.unpause(DAG_ID)
    nightly = wait_for_scheduled_run(stack)
    assert nightly, "unpausing a nightly DAG schedules its latest slot"
    assert follow_run(stack, nightly, timeout=600)["state"] == "success"
    before = len(inbox.messages)

    stack.azure.post("/faults", [QALAB_UPLOADS_REFUSED])
    logical_date = same_night(stack)
    run_id = stack.client.trigger(DAG_ID, conf={"recapture": [UBUNTU]}, logical_date=logical_date)
    assert follow_run(stack, run_id, timeout=600)["state"] == "failed"

    inbox.wait_for(before + 2, timeout=240)
    failed = _mail(inbox, f"run {run_id} failed: QALab")
    assert "QALab / Ubuntu" in failed and 'labs=["QALab"]' in failed
    behind = _mail(inbox, "stale or behind: QALab")
    assert "QALab (new): Ubuntu/Ubuntu2204.json" in behind

    event = _events(stack, run_id)[f"image_factory/{UBUNTU}"]
    extra = event["extra"]
    # DevLab (and any lab an earlier module added that wants Ubuntu) got it; QALab, refused, did not.
    assert "DevLab" in extra["labs_done"] and "QALab" not in extra["labs_done"] and extra["labs_failed"] == ["QALab"]
    assert extra["size_bytes"] > 0 and len(extra["footer_sha256"]) == 64 and extra["run_id"] == run_id

    # The consumer runs from that event: the event names the run it created, and the run ends well.
    created = _wait("a consumer run from the event", lambda: _events(stack, run_id)[event["name"]]["created_dagruns"])
    consumer_run = str(created[0]["run_id"])
    assert follow_consumer(stack, consumer_run) == "success"
    seen = stack.client.xcom(CONSUMER, consumer_run, "new_images")
    assert any(e["version"] == extra["version"] and e["run_id"] == run_id for e in seen), seen


def follow_consumer(stack: Stack, run_id: str) -> str:
    return str(
        _wait(
            "the consumer run to end",
            lambda: (s := stack.client.dag_run(CONSUMER, run_id)["state"]) in ("success", "failed") and s,
        )
    )


def test_the_catch_up_reaches_qalab_and_mails_nothing_more(stack: Stack, inbox: Inbox) -> None:
    told = len(inbox.messages)
    stack.azure.delete("/faults")
    run = run_to_end(stack, {"labs": ["QALab"]}, logical_date=same_night(stack))
    assert run["state"] == "success", run
    said = stack.client.xcom(DAG_ID, run["dag_run_id"], "notify_labs")
    assert said == {"new": [], "alerts": []}
    variable = stack.client.request("GET", "/variables/image_factory_lab_alerts")
    assert json.loads(variable["value"]) == {}, "QALab caught up: the next time it falls behind, it is told again"
    assert len(inbox.messages) == told
