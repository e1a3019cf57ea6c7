"""A local mail server for ``make up``: the factory's notifications land as files a person can open.

aiosmtpd (a development requirement, installed by ``make bootstrap``) on a free loopback port; every message is
written to ``<folder>/<n>.eml``. The Airflow connection ``image_factory_smtp`` reaches it, so a factory.json with
``"Notifications": {"Arguments": {"to": [...], "smtp_conn_id": "image_factory_smtp"}}`` sends its mail there.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from emulator.ports import free_port

#: The Airflow connection id the local mail server is reached by.
SMTP_CONN_ID = "image_factory_smtp"


@dataclass
class MailFolder:
    """An aiosmtpd handler that writes each message it receives into ``folder`` as ``<n>.eml``."""

    folder: Path
    received: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        with self.lock:
            self.received += 1
            path = self.folder / f"{self.received:04d}.eml"
        path.write_bytes(envelope.original_content or b"")
        return "250 OK"


def connection_env(host: str, port: int, from_email: str = "image-factory@localhost") -> dict[str, str]:
    """``AIRFLOW_CONN_IMAGE_FACTORY_SMTP``: plain SMTP to ``host:port``, no login, no TLS (a loopback server)."""
    conn = {
        "conn_type": "smtp",
        "host": host,
        "port": port,
        "extra": {"disable_tls": True, "disable_ssl": True, "from_email": from_email, "retry_limit": 0},
    }
    return {f"AIRFLOW_CONN_{SMTP_CONN_ID.upper()}": json.dumps(conn)}


@contextlib.contextmanager
def mail_server(folder: Path) -> Iterator[tuple[MailFolder, dict[str, str]]]:
    """Run the mail server for the block; yield its handler and the connection's environment."""
    folder.mkdir(parents=True, exist_ok=True)
    handler = MailFolder(folder)
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield handler, connection_env("127.0.0.1", port)
    finally:
        controller.stop()
