"""The build VMs' admin password: an Airflow connection's password, or a strong one generated for each VM.

It exists only in the worker's memory while the deployment PUT is made (``BuildVmOperator.execute``): it is
registered with Airflow's secrets masker, never logged, never pushed to XCom, never put in a trigger's kwargs
(those are stored in the metadata database) and never written to a file. A generated password is thrown away
after that request: a generalized VM is captured, nobody logs into it.
"""

from __future__ import annotations

import secrets
import string
from collections.abc import Callable
from typing import Any

from image_factory.exceptions import ConfigurationError
from image_factory.redact import mask

#: Azure's limits for a VM admin password: 12 to 123 characters, three of lower, upper, digit, special.
LENGTH = 24
_SPECIAL = "!#%*+-=?@^_"
_CLASSES = (string.ascii_lowercase, string.ascii_uppercase, string.digits, _SPECIAL)


def generate(length: int = LENGTH) -> str:
    """Return a random password of ``length`` characters with at least one of each character class."""
    if length < len(_CLASSES) or length > 123:
        raise ValueError("a VM password has 12 to 123 characters")
    alphabet = "".join(_CLASSES)
    chosen = [secrets.choice(c) for c in _CLASSES] + [secrets.choice(alphabet) for _ in range(length - len(_CLASSES))]
    secrets.SystemRandom().shuffle(chosen)
    return "".join(chosen)


def _connection(conn_id: str) -> Any:
    from airflow.sdk import BaseHook  # noqa: PLC0415 - only inside a running task

    return BaseHook.get_connection(conn_id)


def admin_password(conn_id: str | None, read: Callable[[str], Any] = _connection) -> str:
    """Return the admin password for one build VM (masked in logs from now on)."""
    if conn_id:
        password = getattr(read(conn_id), "password", None)
        if not password:
            raise ConfigurationError(
                f"factory.json Build.PasswordConnection names connection {conn_id!r}, which has no password: "
                "set its password, or remove the key to have one generated for each VM"
            )
    else:
        password = generate()
    mask(password)
    return str(password)
