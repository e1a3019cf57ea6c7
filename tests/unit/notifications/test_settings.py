"""factory.json Notifications: defaults per notifier, and no secret accepted in it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from image_factory.configuration.factory import load_factory_settings
from image_factory.exceptions import ConfigurationError
from image_factory.notifications.settings import SMTP_NOTIFIER, NotificationSettings, notification_problems

FACTORY = {"Factory": {"SubscriptionId": "11111111-1111-4111-8111-111111111111", "ResourceGroup": "rg",
                       "LabName": "F"}}  # fmt: skip
SLACK = "airflow.providers.slack.notifications.slack_webhook.SlackWebhookNotifier"


def test_absent_or_disabled_tells_nobody() -> None:
    assert NotificationSettings.from_document(None) is None
    assert NotificationSettings.from_document({"Enabled": False, "Arguments": {"to": "a@example.com"}}) is None


def test_smtp_by_default_and_text_for_other_notifiers() -> None:
    smtp = NotificationSettings.from_document({"Arguments": {"to": "a@example.com"}})
    assert smtp == NotificationSettings(SMTP_NOTIFIER, {"to": "a@example.com"}, "subject", "html_content", "html")
    slack = NotificationSettings.from_document({"Notifier": SLACK, "Arguments": {"slack_webhook_conn_id": "s"}})
    assert slack is not None
    assert (slack.subject_argument, slack.body_argument, slack.body_format) == (None, "text", "text")
    only = NotificationSettings.from_document({"Arguments": {}, "On": ["stale"]})
    assert only is not None and only.wants("stale") and not only.wants("run_failed")


@pytest.mark.parametrize(
    ("arguments", "said"),
    [
        ({"password": "hunter2"}, "looks like a credential"),
        ({"slack_webhook_token": "xoxb-1"}, "looks like a credential"),
        ({"webhook": "https://hooks.slack.com/services/T0/B0/XYZ"}, "Slack webhook URL"),
        ({"url": "https://user:pw@mail.example.com"}, "URL with a password"),
        ({"files": ["https://acct.blob.core.windows.net/c/b?sv=1&sig=abc"]}, "SAS signature"),
    ],
)
def test_a_secret_in_the_arguments_is_refused(arguments: dict[str, object], said: str) -> None:
    [(path, message)] = notification_problems({"Arguments": arguments})
    assert path[:2] == ("Notifications", "Arguments")
    assert said in message and "Airflow connection" in message


def test_connection_ids_and_addresses_are_fine() -> None:
    args = {"to": ["ops@example.com"], "from_email": "f@example.com", "smtp_conn_id": "smtp_default"}
    assert notification_problems({"Arguments": args}) == []
    assert notification_problems({"Notifier": SLACK, "Arguments": {"slack_webhook_conn_id": "slack"}}) == []


def test_factory_json_refuses_a_secret_naming_where_it_is(tmp_path: Path) -> None:
    doc = {**FACTORY, "Notifications": {"Arguments": {"to": "a@example.com", "password": "x"}}}
    (tmp_path / "factory.json").write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(ConfigurationError) as raised:
        load_factory_settings(tmp_path)
    assert "Notifications.Arguments.password" in str(raised.value.findings)


def test_factory_json_refuses_a_bad_class_path_and_a_clash(tmp_path: Path) -> None:
    doc = {**FACTORY, "Notifications": {"Notifier": "not a path", "Arguments": {"html_content": "x"}}}
    (tmp_path / "factory.json").write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(ConfigurationError) as raised:
        load_factory_settings(tmp_path)
    problems = " ".join(raised.value.findings)
    assert "is not a class path" in problems
    doc["Notifications"] = {"Arguments": {"html_content": "x"}}
    (tmp_path / "factory.json").write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(ConfigurationError, match="invalid") as raised:
        load_factory_settings(tmp_path)
    assert "the factory writes the message there" in " ".join(raised.value.findings)
