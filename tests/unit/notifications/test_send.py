"""Notifications through Airflow's SmtpNotifier to a real local SMTP server (aiosmtpd), read back."""

from __future__ import annotations

import html
from collections.abc import Iterator
from typing import Any

import pytest

from image_factory.notifications.messages import FailedTask, LabAlert, fleet_message
from image_factory.notifications.send import FAILURES_XCOM_KEY, FailedRunNotifier, make_notifier, outcome_message, send
from image_factory.notifications.settings import NotificationSettings
from tests.smtp_server import Inbox, body_text, smtp_server

SETTINGS = NotificationSettings.from_document(
    {"Arguments": {"to": ["ops@example.com", "labs@example.com"], "smtp_conn_id": "factory_smtp"}}
)


@pytest.fixture
def inbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[Inbox]:
    with smtp_server() as server:
        monkeypatch.setenv("AIRFLOW_CONN_FACTORY_SMTP", server.connection_json())
        yield server


class FakeTi:
    """The callback's task instance: what ``outcome`` handed over."""

    def __init__(self, failures: list[dict[str, Any]] | None) -> None:
        self.failures = failures

    def xcom_pull(self, task_ids: str, key: str) -> Any:
        assert (task_ids, key) == ("outcome", FAILURES_XCOM_KEY)
        return self.failures


def test_a_failed_run_sends_one_mail_naming_the_labs_and_what_to_do(inbox: Inbox) -> None:
    assert SETTINGS is not None
    failures = [
        FailedTask("distribute", 2, "QALab / Win2016_Datacenter").to_dict(),
        FailedTask("distribute_regional", 0, "TestLab / Ubuntu_Ubuntu2204").to_dict(),
        FailedTask("verify").to_dict(),
    ]
    # dag.test() hands a serialized DAG, which cannot template: the message is sent all the same.
    context = {"run_id": "scheduled__2025-03-01", "reason": "task_failure", "ti": FakeTi(failures), "dag": object()}
    FailedRunNotifier(SETTINGS)(context)

    [(recipients, message)] = inbox.wait_for(1)
    assert recipients == ["ops@example.com", "labs@example.com"]
    assert message["From"] == "factory@example.com"
    assert message["Subject"] == "Image Factory: run scheduled__2025-03-01 failed: QALab, TestLab"
    body = html.unescape(body_text(message))
    assert "distribute [QALab / Win2016_Datacenter]" in body
    assert "distribute_regional [TestLab / Ubuntu_Ubuntu2204]" in body
    assert "  - verify" in body
    assert 'labs=["QALab", "TestLab"]' in body
    assert "What to do:" in body


def test_without_what_outcome_handed_over_the_mail_still_goes(inbox: Inbox) -> None:
    assert SETTINGS is not None
    FailedRunNotifier(SETTINGS)({"run_id": "manual__x", "reason": "timed_out", "ti": FakeTi(None)})
    [(_, message)] = inbox.wait_for(1)
    assert "Which tasks failed is not known here: see the run's Grid view." in html.unescape(body_text(message))


def test_nothing_is_sent_without_notifications(inbox: Inbox) -> None:
    FailedRunNotifier(None)({"run_id": "r", "ti": FakeTi([])})
    off = NotificationSettings.from_document({"Arguments": {"to": "x@example.com"}, "On": ["stale"]})
    FailedRunNotifier(off)({"run_id": "r", "ti": FakeTi([])})
    assert inbox.messages == []


def test_a_fleet_alert_is_one_mail_naming_every_lab(inbox: Inbox) -> None:
    assert SETTINGS is not None
    alerts = [
        LabAlert("QALab", "stale", "newest image 2025-01-02 is 58 days old (FreshnessDays 30)"),
        LabAlert("TestLab", "behind", "Ubuntu/Ubuntu2204.json: holds 2025-02-01, catalogue has 2025-03-01"),
    ]
    send(SETTINGS, fleet_message("image_factory", alerts, new=[alerts[0].key]), {})
    [(_, message)] = inbox.wait_for(1)
    assert message["Subject"] == "Image Factory: 2 lab(s) stale or behind: QALab, TestLab"
    body = html.unescape(body_text(message))
    assert "QALab (new): newest image 2025-01-02" in body
    assert "TestLab: Ubuntu/Ubuntu2204.json" in body
    assert 'labs=["QALab", "TestLab"]' in body


def test_jinja_in_a_message_is_sent_as_written(inbox: Inbox) -> None:
    assert SETTINGS is not None
    alerts = [LabAlert("DevLab", "behind", "Azure said {{ not a template }} {% endraw %}")]
    send(SETTINGS, fleet_message("image_factory", alerts), {})
    [(_, message)] = inbox.wait_for(1)
    assert "Azure said {{ not a template }}" in html.unescape(body_text(message))


def test_any_notifier_by_class_path_receives_subject_and_text() -> None:
    settings = NotificationSettings.from_document(
        {"Notifier": "tests.unit.notifications.recording.RecordingNotifier", "Arguments": {"channel": "#labs"}}
    )
    assert settings is not None and settings.body_argument == "text" and settings.subject_argument is None
    notifier = make_notifier(settings, fleet_message("image_factory", [LabAlert("DevLab", "stale")]))
    notifier({})
    from tests.unit.notifications.recording import SENT

    [(channel, text)] = SENT
    assert channel == "#labs"
    assert text.startswith("Image Factory: 1 lab(s) stale or behind: DevLab\n\n1 lab(s) need attention")


def test_a_class_that_is_not_a_notifier_is_refused() -> None:
    settings = NotificationSettings.from_document({"Notifier": "collections.OrderedDict", "Arguments": {}})
    assert settings is not None
    with pytest.raises(TypeError, match="not an Airflow notifier"):
        make_notifier(settings, fleet_message("image_factory", []))


class OutcomeTi:
    """``outcome``'s task instance: the run's task states and what the upstream steps handed over."""

    def __init__(self) -> None:
        self.pushed: dict[str, Any] = {}
        self.handed: dict[tuple[str, str | None], Any] = {
            ("plan", None): [{"lab_name": "DevLab", "image_name": "A"}, {"lab_name": "QALab", "image_name": "B"}],
            ("plan", "regional"): [{"lab_name": "TestLab", "image_name": "C"}],
            ("capture.list_factory_vms", None): [{"vm_name": "vm-ubuntu"}],
            ("retire.decide", None): [
                {"kind": "catalogue_version", "where": "(factory storage)", "name": "x.vhd"},
                {"kind": "custom_image", "where": "QALab", "name": "old"},
            ],
        }

    def get_task_states(self, dag_id: str, run_ids: list[str]) -> dict[str, dict[str, str]]:
        assert (dag_id, run_ids) == ("image_factory", ["r1"])
        states = {"distribute_1": "failed", "distribute_regional_0": "success", "capture.capture_vm_0": "failed"}
        return {"r1": {**states, "retire.delete_0": "failed", "retire.delete_1": "failed", "outcome": "running"}}

    def xcom_pull(self, task_ids: str, key: str | None = None) -> Any:
        return self.handed.get((task_ids, key))

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value


def test_outcome_names_the_failed_tasks_for_the_callback() -> None:
    from image_factory.notifications.send import collect_failures

    ti = OutcomeTi()
    dag_run = type("DagRun", (), {"dag_id": "image_factory", "run_id": "r1"})()
    found = collect_failures({"ti": ti, "dag_run": dag_run})
    assert [(t.task_id, t.map_index, t.label) for t in found] == [
        ("capture.capture_vm", 0, "vm-ubuntu"),
        ("distribute", 1, "QALab / B"),
        ("retire.delete", 0, "(factory storage): x.vhd"),
        ("retire.delete", 1, "QALab / old"),
    ]
    assert ti.pushed[FAILURES_XCOM_KEY] == [t.to_dict() for t in found]


def test_the_outcome_failure_names_each_failed_task_and_what_it_worked_on() -> None:
    failed = [FailedTask("distribute", 3, "QALab / Win2016-Datacenter"), FailedTask("verify")]
    assert outcome_message(failed) == (
        "a task of this run failed (distribute [QALab / Win2016-Datacenter], verify): see its log and verify's report"
    )
    assert "(see the Grid view)" in outcome_message([])
