"""What a CeleryExecutor stack adds to the local one: PostgreSQL + Redis, the Celery settings, two named workers.

Every Airflow process of the stack gets the same metadata DB (PostgreSQL), broker (Redis), result backend and JWT
secret (``AirflowStack`` already shares one per AIRFLOW_HOME). Each worker gets its own log-server port and its own
name, which ``stack.hostname.worker_hostname`` reports as the task instances' ``hostname``.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from emulator.ports import free_port
from stack.airflow import AirflowSettings, AirflowStack
from stack.hostname import WORKER_NAME_VAR
from stack.processes import Child, wait_until
from stack.services import Services, services_for

log = logging.getLogger(__name__)

EXECUTOR = "CeleryExecutor"
WORKERS = ("w1", "w2")
WORKER_CONCURRENCY = 4
PARALLELISM = 16
HOSTNAME_CALLABLE = "stack.hostname.worker_hostname"


def worker_process(name: str) -> str:
    """Return the stack's process name of worker ``name`` (the key in ``AirflowStack.children``, the log name)."""
    return f"celery-worker-{name}"


def celery_env(services: Services, *, concurrency: int = WORKER_CONCURRENCY) -> dict[str, str]:
    """Return the ``AIRFLOW__*`` variables of a CeleryExecutor stack over ``services``."""
    return {
        "AIRFLOW__CELERY__BROKER_URL": services.redis.url(),
        "AIRFLOW__CELERY__RESULT_BACKEND": services.postgres.url("db+postgresql"),
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(concurrency),
        "AIRFLOW__CORE__HOSTNAME_CALLABLE": HOSTNAME_CALLABLE,
    }


def celery_settings(
    settings: AirflowSettings,
    services: Services,
    *,
    concurrency: int = WORKER_CONCURRENCY,
    parallelism: int = PARALLELISM,
) -> AirflowSettings:
    """Return ``settings`` turned into a CeleryExecutor stack on PostgreSQL; ``settings.extra_env`` still wins."""
    return dataclasses.replace(
        settings,
        executor=EXECUTOR,
        parallelism=parallelism,
        sql_alchemy_conn=services.postgres.url(),
        extra_env={**celery_env(services, concurrency=concurrency), **settings.extra_env},
    )


def start_workers(
    stack: AirflowStack, names: Iterable[str] = WORKERS, *, concurrency: int = WORKER_CONCURRENCY
) -> list[Child]:
    """Start one ``airflow celery worker -H <name>@%h -c N`` per name, each with its own log-server port."""
    children = []
    for name in names:
        extra = {
            WORKER_NAME_VAR: name,
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
        }
        argv = ["celery", "worker", "-H", f"{name}@%h", "-c", str(concurrency)]
        children.append(stack.start_process(worker_process(name), argv, extra))
    return children


def ping_workers(broker_url: str, timeout: float = 2.0) -> list[str]:
    """Return the Celery node names (``w1@host``) that answer a broadcast ping on ``broker_url``."""
    from celery import Celery  # noqa: PLC0415 - only the Celery stack needs it

    app = Celery("image-factory-stack", broker=broker_url)
    try:
        replies: list[dict[str, Any]] = app.control.ping(timeout=timeout) or []
    finally:
        app.close()
    return sorted(node for reply in replies for node in reply)


def wait_workers(
    stack: AirflowStack, broker_url: str, names: Iterable[str] = WORKERS, *, timeout: float = 180
) -> list[str]:
    """Wait until every named worker answers a ping; fail early if one exits; return the node names."""
    wanted = set(names)
    nodes: list[str] = []

    def all_answer() -> bool:
        nonlocal nodes
        for name in wanted:
            child = stack.children.get(worker_process(name))
            if child is not None and not child.alive():
                raise RuntimeError(f"celery worker {name} exited early:\n{child.tail()}")
        nodes = ping_workers(broker_url)
        return wanted <= {node.split("@", 1)[0] for node in nodes}

    wait_until(all_answer, timeout=timeout, interval=1.0, what=f"celery workers {sorted(wanted)} to answer a ping")
    return nodes


def start_services(run_dir: Path, *, fresh: bool = True, say: Callable[..., Any] = print) -> Services:
    """Start PostgreSQL + Redis for ``run_dir``; with ``fresh``, first stop and wipe what an earlier run left."""
    services = services_for(run_dir)
    if fresh:
        services.remove()
        shutil.rmtree(run_dir / "services", ignore_errors=True)
    say("starting PostgreSQL and Redis …")
    try:
        services.start()
    except BaseException:
        services.remove()
        raise
    return services
