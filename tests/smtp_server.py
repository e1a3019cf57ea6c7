"""A real SMTP server for tests (aiosmtpd), on a free local port, keeping every message it receives."""

from __future__ import annotations

import contextlib
import email
import email.policy
import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session


@dataclass
class Inbox:
    """What the server received: parsed messages with their envelope recipients."""

    host: str
    port: int
    messages: list[tuple[list[str], EmailMessage]] = field(default_factory=list)
    arrived: threading.Condition = field(default_factory=threading.Condition)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        with self.arrived:
            self.messages.append(([str(r) for r in envelope.rcpt_tos], parsed))
            self.arrived.notify_all()
        return "250 OK"

    def wait_for(self, count: int = 1, timeout: float = 30) -> list[tuple[list[str], EmailMessage]]:
        """Wait until ``count`` messages arrived (the condition, bounded by ``timeout``); return them all."""
        with self.arrived:
            if not self.arrived.wait_for(lambda: len(self.messages) >= count, timeout=timeout):
                raise AssertionError(f"{len(self.messages)} message(s) arrived, {count} expected")
            return list(self.messages)

    def connection_json(self, from_email: str = "factory@example.com") -> str:
        """An Airflow ``smtp`` connection (for ``AIRFLOW_CONN_<ID>``) to this server: plain SMTP, no login."""
        return json.dumps(
            {
                "conn_type": "smtp",
                "host": self.host,
                "port": self.port,
                "extra": {"disable_tls": True, "disable_ssl": True, "from_email": from_email, "retry_limit": 0},
            }
        )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def smtp_server() -> Iterator[Inbox]:
    """Run an aiosmtpd server on 127.0.0.1 (its own thread) for the block; stop it on exit."""
    inbox = Inbox("127.0.0.1", _free_port())
    controller = Controller(inbox, hostname=inbox.host, port=inbox.port)
    controller.start()
    try:
        yield inbox
    finally:
        controller.stop()


def body_text(message: EmailMessage) -> str:
    """The message's text (its HTML part as sent: the factory's HTML is escaped preformatted text)."""
    part = message.get_body(preferencelist=("plain", "html"))
    assert part is not None, "the message has no body"
    return str(part.get_content())
