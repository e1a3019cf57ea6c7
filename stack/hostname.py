"""``[core] hostname_callable`` for the local Celery stack: each worker on this one host reports its own name."""

from __future__ import annotations

import os
import socket

#: Set per worker process by ``stack.celery.start_workers`` (``w1``, ``w2``); unset in the other processes.
WORKER_NAME_VAR = "IMAGE_FACTORY_WORKER_NAME"


def worker_hostname() -> str:
    """Return this worker's name from ``IMAGE_FACTORY_WORKER_NAME``, else the host's fully qualified name."""
    name = os.environ.get(WORKER_NAME_VAR, "").strip()
    return name or socket.getfqdn()
