"""Record every ARM answer (operation id, status, headers, body) as JSON lines, for checks against Azure's spec.

Off unless ``python -m emulator serve --record-dir DIR`` (default: the ``LOCAL_AZURE_RECORD_DIR`` environment
variable) names a folder. Each process appends to its own file there, one line per answer, written as it is sent;
the body is copied as the raw JSON bytes (never parsed again), with SAS signatures masked.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from pathlib import Path
from typing import IO

from starlette.responses import Response

#: Environment variable that turns recording on when the serve option is not given.
RECORD_DIR_ENV = "LOCAL_AZURE_RECORD_DIR"
#: Masks a SAS signature (``sig=``) in a recorded body or header.
_SIGNATURE = re.compile(rb"(sig=)[^&\"\s]+", re.IGNORECASE)
_SKIPPED_HEADERS = {"content-length"}


def _masked(data: bytes) -> bytes:
    """Mask SAS signatures (the search only runs when there is one: most answers have none)."""
    return _SIGNATURE.sub(rb"\1***", data) if b"sig=" in data.lower() else data


class ResponseRecorder:
    """Append ARM answers to ``<folder>/arm-<pid>-<random>.jsonl``."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / f"arm-{os.getpid()}-{uuid.uuid4().hex[:8]}.jsonl"
        self._file: IO[bytes] | None = self.path.open("ab", buffering=0)
        self.count = 0

    @classmethod
    def from_option(cls, folder: Path | str | None) -> ResponseRecorder | None:
        """Return a recorder for ``folder`` (or the environment variable's), None when neither names one."""
        chosen = folder or os.environ.get(RECORD_DIR_ENV) or None
        return cls(Path(chosen)) if chosen else None

    def record(
        self,
        response: Response,
        *,
        operation: str,
        method: str,
        path: str,
        api_version: str | None,
        lro_of: str | None = None,
    ) -> None:
        """Append one answer; ``lro_of`` names the operation a status/result poll belongs to."""
        if self._file is None:
            return
        headers = {k: v for k, v in response.headers.items() if k.lower() not in _SKIPPED_HEADERS}
        meta = {
            "operation": operation,
            "lro_of": lro_of,
            "method": method,
            "path": path,
            "api_version": api_version,
            "status": response.status_code,
            "headers": headers,
        }
        head = _masked(json.dumps(meta, separators=(",", ":")).encode())
        raw = bytes(getattr(response, "body", b"") or b"").strip()
        body = _masked(raw) if raw.startswith((b"{", b"[")) else json.dumps(raw.decode()).encode()
        self._file.write(head[:-1] + b',"body":' + (body if raw else b"null") + b"}\n")
        self.count += 1

    def close(self) -> None:
        """Stop recording."""
        if self._file is not None:
            self._file.close()
            self._file = None
