"""factory.json ``Notifications``: which Airflow notifier tells people, with which arguments; no secret in it.

Pure (no Airflow import): the configuration checks call :func:`notification_problems` while validating
factory.json, and the DAG file reads :class:`NotificationSettings` at parse time. Absent ``Notifications`` means
nobody is told (the failures are still in the UI and the logs).

Any ``BaseNotifier`` subclass works without code changes: the smtp provider's ``SmtpNotifier`` by default, e.g.
Slack's ``SlackWebhookNotifier`` with ``{"slack_webhook_conn_id": "…"}`` as ``Arguments`` and ``"text"`` as
``BodyArgument``. Credentials live in the Airflow connection the arguments name, never in factory.json.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

#: The notifier used when ``Notifications.Notifier`` is not set (apache-airflow-providers-smtp).
SMTP_NOTIFIER = "airflow.providers.smtp.notifications.smtp.SmtpNotifier"
#: What a factory can be told about.
Event = Literal["run_failed", "stale", "behind"]
EVENTS: tuple[Event, ...] = ("run_failed", "stale", "behind")
BodyFormat = Literal["html", "text"]

_CLASSPATH = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$")
#: Argument names that hold a credential: those belong in a connection.
_SECRET_NAME = re.compile(r"password|passwd|secret|token|api_?key|private_?key|credential|signature", re.IGNORECASE)
#: Values that carry a credential whatever their argument's name.
_SECRET_VALUE = (
    (re.compile(r"hooks\.slack\.com/services/", re.IGNORECASE), "a Slack webhook URL (its path is the secret)"),
    (re.compile(r"://[^/\s@:]+:[^/\s@]+@"), "a URL with a password in it"),
    (re.compile(r"[?&]sig=", re.IGNORECASE), "a SAS signature"),
    (re.compile(r"webhook\.office\.com/|logic\.azure\.com/.*sig=", re.IGNORECASE), "a Teams webhook URL"),
)


@dataclass(frozen=True)
class NotificationSettings:
    """The ``Notifications`` object of factory.json, with its defaults."""

    notifier: str = SMTP_NOTIFIER
    arguments: Mapping[str, Any] = field(default_factory=dict)
    #: The notifier's argument that receives the subject (None: the notifier has none, it goes first in the body).
    subject_argument: str | None = "subject"
    #: The notifier's argument that receives the message.
    body_argument: str = "html_content"
    body_format: BodyFormat = "html"
    events: tuple[Event, ...] = EVENTS

    def wants(self, event: Event) -> bool:
        """Tell whether people are told about ``event``."""
        return event in self.events

    @classmethod
    def from_document(cls, doc: Mapping[str, Any] | None) -> NotificationSettings | None:
        """Read the (schema-valid) ``Notifications`` object; None when absent or switched off."""
        if not doc or doc.get("Enabled") is False:
            return None
        notifier = str(doc.get("Notifier") or SMTP_NOTIFIER)
        smtp = notifier == SMTP_NOTIFIER
        subject = doc.get("SubjectArgument", "subject" if smtp else None)
        return cls(
            notifier=notifier,
            arguments=dict(doc.get("Arguments") or {}),
            subject_argument=str(subject) if subject else None,
            body_argument=str(doc.get("BodyArgument") or ("html_content" if smtp else "text")),
            body_format="html" if doc.get("BodyFormat", "html" if smtp else "text") == "html" else "text",
            events=tuple(e for e in EVENTS if e in (doc.get("On") or EVENTS)),
        )


def _secret_in(name: str, value: Any) -> str | None:
    if _SECRET_NAME.search(name) and value not in (None, "", False):
        return f"argument {name!r} looks like a credential"
    texts = [value] if isinstance(value, str) else [v for v in _walk(value) if isinstance(v, str)]
    for text in texts:
        for pattern, what in _SECRET_VALUE:
            if pattern.search(text):
                return f"argument {name!r} holds {what}"
    return None


def _walk(value: Any) -> list[Any]:
    if isinstance(value, Mapping):
        return [x for v in value.values() for x in _walk(v)]
    if isinstance(value, list | tuple):
        return [x for v in value for x in _walk(v)]
    return [value]


def notification_problems(doc: Any) -> list[tuple[tuple[str, ...], str]]:
    """Return (JSON path, message) for each problem of a ``Notifications`` object the schema cannot see."""
    if not isinstance(doc, Mapping):
        return []
    problems: list[tuple[tuple[str, ...], str]] = []
    notifier = doc.get("Notifier")
    if isinstance(notifier, str) and not _CLASSPATH.match(notifier):
        problems.append((("Notifications", "Notifier"), f"{notifier!r} is not a class path such as {SMTP_NOTIFIER!r}"))
    arguments = doc.get("Arguments")
    for name, value in arguments.items() if isinstance(arguments, Mapping) else ():
        said = _secret_in(str(name), value)
        if said:
            problems.append(
                (
                    ("Notifications", "Arguments", str(name)),
                    f"{said}: factory.json is no place for secrets; put it in an Airflow connection and name "
                    "that connection instead (smtp_conn_id, slack_webhook_conn_id, ...)",
                )
            )
    resolved = NotificationSettings.from_document({**doc, "Enabled": True})
    if resolved is not None and isinstance(arguments, Mapping):
        for key, name in (("SubjectArgument", resolved.subject_argument), ("BodyArgument", resolved.body_argument)):
            if name in arguments:
                problems.append(
                    (("Notifications", key), f"{name!r} is also in Arguments: the factory writes the message there")
                )
    return problems
