"""Keep SAS tokens and keys out of logs: redact SAS query strings, register secrets with Airflow's masker."""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

from airflow.sdk.log import mask_secret

_SIG = re.compile(r"(?i)(sig=)[^&\s\"']+")
_ACCOUNT_KEY = re.compile(r"(?i)(AccountKey=)[^;\s\"']+")


def redact(text: str) -> str:
    """Return ``text`` with every SAS signature and connection-string account key replaced by ``***``."""
    return _ACCOUNT_KEY.sub(r"\1***", _SIG.sub(r"\1***", text))


def strip_query(url: str) -> str:
    """Return ``url`` without its query string (a SAS URL becomes the plain blob URL)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def mask(*secrets: str | None) -> None:
    """Register secrets (SAS URLs, their signatures, keys) with Airflow's secrets masker."""
    for secret in secrets:
        if not secret:
            continue
        mask_secret(secret)
        match = _SIG.search(secret)
        if match:
            mask_secret(match.group(0)[4:])
