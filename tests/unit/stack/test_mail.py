"""``make up``'s local mail server: Airflow's SmtpNotifier, on the connection it provides, lands a file."""

from __future__ import annotations

import email
import email.policy
from pathlib import Path

import pytest
from airflow.providers.smtp.notifications.smtp import SmtpNotifier

from stack.mail import SMTP_CONN_ID, mail_server


def test_a_notifier_on_the_mail_connection_writes_the_message_to_the_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with mail_server(tmp_path / "mail") as (handler, env):
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        SmtpNotifier(
            to="lab-admins@example.com",
            smtp_conn_id=SMTP_CONN_ID,
            subject="Image Factory: QALab is behind",
            html_content="<pre>QALab misses Win2016/Datacenter.json 2026-12-01</pre>",
        ).notify({})
    files = sorted((tmp_path / "mail").glob("*.eml"))
    assert [f.name for f in files] == ["0001.eml"] and handler.received == 1
    message = email.message_from_bytes(files[0].read_bytes(), policy=email.policy.default)
    assert message["To"] == "lab-admins@example.com"
    assert message["Subject"] == "Image Factory: QALab is behind"
    body = message.get_body(preferencelist=("html", "plain"))
    assert body is not None and "QALab misses Win2016/Datacenter.json" in str(body.get_content())
