"""Complete responses of the blob proxy: buffered upstream answers and Azure Storage errors."""

from __future__ import annotations

import datetime as dt
import email.utils
import html
import time
import uuid
from dataclasses import dataclass

from emulator.blob.asgi import HOP_BY_HOP, RawHeaders, Send, header_value

#: The ``x-ms-version`` the proxy answers with when it answers itself.
SERVICE_VERSION = b"2025-11-05"


def http_date(epoch: float) -> str:
    """Format a POSIX time as an RFC 1123 date, as Azure sends them."""
    return email.utils.formatdate(epoch, usegmt=True)


@dataclass
class Buffered:
    """A complete upstream (or synthesized) response."""

    status: int
    headers: RawHeaders
    body: bytes

    def header(self, name: str) -> str | None:
        """Return the first value of a response header, or None."""
        return header_value(self.headers, name)

    def set_headers(self, values: dict[str, str], drop: tuple[str, ...] = ()) -> None:
        """Replace (or add) headers, and remove the ``drop`` ones."""
        names = {name.lower().encode("latin-1") for name in (*values, *drop)}
        self.headers = [(k, v) for k, v in self.headers if k.lower() not in names]
        self.headers.extend((k.encode("latin-1"), v.encode("latin-1")) for k, v in values.items())


def service_headers(request_id: str) -> RawHeaders:
    """Return the headers every answer of the Blob service carries (request id, version, date)."""
    return [
        (b"x-ms-request-id", request_id.encode()),
        (b"x-ms-version", SERVICE_VERSION),
        (b"date", http_date(time.time()).encode()),
    ]


def no_content() -> Buffered:
    """Build a ``204 No Content`` answer of the Blob service."""
    return Buffered(status=204, headers=service_headers(str(uuid.uuid4())), body=b"")


def storage_error(
    status: int,
    code: str,
    message: str,
    *,
    retry_after: float | None = None,
    detail: str | None = None,
    extra_headers: dict[str, str] | None = None,
) -> Buffered:
    """Build an Azure Storage error response (XML body and ``x-ms-error-code``).

    ``detail`` becomes the ``AuthenticationErrorDetail`` element Azure adds to authentication failures.
    """
    request_id = str(uuid.uuid4())
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f0Z")
    detail_xml = f"<AuthenticationErrorDetail>{html.escape(detail)}</AuthenticationErrorDetail>" if detail else ""
    body = (
        '<?xml version="1.0" encoding="utf-8"?>'
        f"<Error><Code>{html.escape(code)}</Code><Message>{html.escape(message)}\n"
        f"RequestId:{request_id}\nTime:{now}</Message>{detail_xml}</Error>"
    ).encode()
    headers: RawHeaders = [
        (b"content-type", b"application/xml"),
        (b"content-length", str(len(body)).encode()),
        (b"x-ms-error-code", code.encode("latin-1")),
        *service_headers(request_id),
    ]
    if retry_after is not None:
        seconds = int(retry_after) if float(retry_after).is_integer() else retry_after
        headers.append((b"retry-after", str(seconds).encode()))
    for name, value in (extra_headers or {}).items():
        headers.append((name.lower().encode("latin-1"), value.encode("latin-1")))
    return Buffered(status=status, headers=headers, body=body)


def pending_copy_error() -> Buffered:
    """Build the ``409 PendingCopyOperation`` a blob with a pending copy answers reads and writes of its data."""
    return storage_error(409, "PendingCopyOperation", "There is currently a pending copy operation.")


async def send_buffered(send: Send, response: Buffered, *, head: bool) -> None:
    """Send a complete response (no body for HEAD)."""
    headers = [(k, v) for k, v in response.headers if k.lower() not in HOP_BY_HOP and k.lower() != b"content-length"]
    headers.append((b"content-length", str(len(response.body)).encode()))
    if head:
        original = response.header("content-length")
        if original is not None:
            headers[-1] = (b"content-length", original.encode("latin-1"))
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head else response.body, "more_body": False})
