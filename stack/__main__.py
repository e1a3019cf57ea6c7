"""``python -m stack demo|up``: the local Azure plus Airflow 3, as ``make demo`` and ``make up`` run them."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import shutil
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from stack.airflow import REPO, AirflowSettings, AirflowStack
from stack.localazure import LocalAzure, start_local_azure
from stack.mail import SMTP_CONN_ID, mail_server
from stack.rest import TERMINAL_RUN_STATES, AirflowClient
from stack.services import Services, services_for

DAG_ID = "image_factory"
DEFAULT_UI_PORT = 28080
EXECUTORS = ("local", "celery")
DATABASES = ("postgres", "sqlite")
#: The metadata DB of every stack unless asked otherwise: Airflow refuses backfills that reprocess runs on SQLite.
DEFAULT_DATABASE = "postgres"


@dataclass
class Stack:
    """A running local Azure + Airflow, with an API client."""

    azure: LocalAzure
    airflow: AirflowStack
    client: AirflowClient
    services: Services | None = None

    def stop(self) -> None:
        self.client.close()
        self.airflow.stop()
        self.azure.stop()
        if self.services is not None:
            self.services.stop()


def _raise_interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _stop_on_sigterm() -> None:
    """Make SIGTERM unwind like Ctrl-C, so the ``finally`` that stops every child process runs."""
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) in (
        signal.SIG_DFL,
        None,
    ):
        signal.signal(signal.SIGTERM, _raise_interrupt)


def factory_subscription(config_dir: Path) -> str:
    """Read the factory subscription from factory.json (the ARM connection's default subscription)."""
    data = json.loads((config_dir / "factory.json").read_text(encoding="utf-8-sig"))
    return str(data["Factory"]["SubscriptionId"])


def _with_services(
    settings: AirflowSettings, run_dir: Path, executor: str, database: str, *, fresh: bool, say: Any
) -> tuple[Services | None, AirflowSettings]:
    """Start what the executor and database need besides Airflow; return it and the settings that use it."""
    if executor == "celery":
        from stack import celery  # noqa: PLC0415 - only the Celery stack needs it

        services = celery.start_services(run_dir, fresh=fresh, say=say)
        return services, celery.celery_settings(settings, services)
    if database == "postgres":
        services = services_for(run_dir)
        say("starting PostgreSQL …")
        started = time.monotonic()
        services.postgres.start()
        say(f"PostgreSQL ready in {time.monotonic() - started:.1f}s")
        return services, dataclasses.replace(settings, sql_alchemy_conn=services.postgres.url())
    return None, settings


def _check_engine(executor: str, database: str) -> None:
    if executor not in EXECUTORS:
        raise ValueError(f"executor must be one of {EXECUTORS}, not {executor!r}")
    if database not in DATABASES:
        raise ValueError(f"database must be one of {DATABASES}, not {database!r}")


def _prepare_run_dir(run_dir: Path, *, fresh: bool, with_services: bool) -> None:
    """Create ``run_dir``; when ``fresh``, first remove it and what a crashed earlier run may have left running."""
    if fresh:
        if with_services:
            services_for(run_dir).remove()
        shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True, exist_ok=True)


def _start_airflow(airflow: AirflowStack, services: Services | None, *, celery_workers: bool, say: Any) -> None:
    """Migrate, import the pool, start the Airflow processes (and Celery workers) and wait until they are healthy."""
    say("migrating the Airflow metadata DB and importing the pool …")
    airflow.migrate()
    airflow.import_pools()
    say("starting api-server, scheduler, dag-processor, triggerer …")
    airflow.start()
    if celery_workers and services is not None:
        from stack import celery  # noqa: PLC0415 - only the Celery stack needs it

        say(f"starting Celery workers {', '.join(celery.WORKERS)} …")
        celery.start_workers(airflow)
        airflow.wait_healthy()
        celery.wait_workers(airflow, services.redis.url())
    else:
        airflow.wait_healthy()


@contextlib.contextmanager
def running_stack(
    *,
    run_dir: Path,
    world: Path,
    config_dir: Path,
    port: int = 0,
    fresh: bool = True,
    emulator_config: dict[str, Any] | None = None,
    extra_env: dict[str, str] | None = None,
    say: Any = print,
    executor: str = "local",
    database: str = DEFAULT_DATABASE,
) -> Iterator[Stack]:
    """Start the local Azure and Airflow under ``run_dir``; stop everything (by pid) on exit, also on errors.

    The metadata DB is a private PostgreSQL cluster (``stack.services``) unless ``database="sqlite"`` (LocalExecutor
    only: a quick look, no reprocessing backfill); ``executor="celery"`` adds Redis and two Celery workers
    (``stack.celery``).
    """
    _check_engine(executor, database)
    _stop_on_sigterm()
    _prepare_run_dir(run_dir, fresh=fresh, with_services=executor == "celery" or database == "postgres")
    started = time.monotonic()
    say(f"starting the local Azure ({world.name}) …")
    azure = start_local_azure(world=world, state_dir=run_dir / "azure", log_dir=run_dir / "logs")
    airflow: AirflowStack | None = None
    client: AirflowClient | None = None
    services: Services | None = None
    try:
        if emulator_config:
            azure.post("/config", emulator_config)
        settings = AirflowSettings(
            home=run_dir / "airflow", port=port, config_dir=config_dir, extra_env=extra_env or {}
        )
        services, settings = _with_services(settings, run_dir, executor, database, fresh=fresh, say=say)
        airflow = AirflowStack(settings, azure.connections_env(subscription_id=factory_subscription(config_dir)))
        _start_airflow(airflow, services, celery_workers=executor == "celery", say=say)
        client = AirflowClient(airflow.base_url, airflow.settings.user, airflow.password)
        client.wait_for_dag(DAG_ID)
        say(f"stack ready in {time.monotonic() - started:.0f}s")
        yield Stack(azure=azure, airflow=airflow, client=client, services=services)
    finally:
        if client is not None:
            client.close()
        if airflow is not None:
            airflow.stop()
        azure.stop()
        if services is not None:
            services.remove()


def stack_for(args: argparse.Namespace, run_name: str, **options: Any) -> contextlib.AbstractContextManager[Stack]:
    """Start the stack a command's arguments ask for (world, configuration, engine) under ``.run/<run_name>``."""
    return running_stack(
        run_dir=REPO / ".run" / run_name,
        world=args.world,
        config_dir=args.config,
        executor=args.executor,
        database=getattr(args, "database", DEFAULT_DATABASE),  # demo-retention has no --database
        **options,
    )


def follow_run(stack: Stack, run_id: str, *, timeout: float = 1800, interval: float = 2.0) -> dict[str, Any]:
    """Print a progress line until the run ends; return the final DAG run."""
    deadline = time.monotonic() + timeout
    last = ""
    tty = sys.stdout.isatty()
    while True:
        run = stack.client.dag_run(DAG_ID, run_id)
        tis = stack.client.task_instances(DAG_ID, run_id)
        states = Counter(str(ti.get("state")) for ti in tis)
        done = sum(states[s] for s in ("success", "skipped", "failed", "upstream_failed"))
        try:
            in_flight = stack.azure.stats().get("copies", {}).get("pending_now", 0)
        except Exception:
            in_flight = "?"
        deferred = states.get("deferred", 0)
        line = (
            f"[{run['state']:>7}] tasks {done}/{len(tis)} done, {states.get('running', 0)} running, "
            f"{deferred} deferred, {states.get('failed', 0)} failed — copies in flight: {in_flight}"
        )
        if line != last:
            print(("\r" if tty else "") + line, end="" if tty else "\n", flush=True)
            last = line
        if run["state"] in TERMINAL_RUN_STATES:
            if tty:
                print()
            return run
        if time.monotonic() > deadline:
            raise TimeoutError(f"run {run_id} did not finish within {timeout:.0f}s")
        time.sleep(interval)


def verify_report(stack: Stack, run_id: str) -> dict[str, Any] | None:
    """Return the report verify wrote for ``run_id`` (also when verify failed), or None if it wrote none."""
    return stack.airflow.report("*.json", "run_id", run_id)


def wait_for_scheduled_run(stack: Stack, timeout: float = 60) -> str | None:
    """Return the run Airflow schedules when the DAG is unpaused (the latest nightly slot), if one comes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for run in stack.client.dag_runs(DAG_ID):
            if run.get("run_type") == "scheduled":
                return str(run["dag_run_id"])
        time.sleep(1)
    return None


def summarize(stack: Stack, run: dict[str, Any], elapsed: float, *, show_matrix: bool) -> tuple[bool, str]:
    """Print a run's verify matrix and one summary line; return (ok, line)."""
    report = verify_report(stack, run["dag_run_id"])
    stats = stack.azure.stats()
    if show_matrix and report and report.get("matrix_text"):
        print()
        print(report["matrix_text"])
    problems = (report or {}).get("problems", ["verify produced no report"])
    copies, arm = stats.get("copies", {}), stats.get("arm", {})
    ok = run["state"] == "success" and not problems
    line = (
        f"{'OK' if ok else 'FAILED'}: {run['run_type']} run {run['state']} in {elapsed:.0f}s — "
        f"{copies.get('started', 0)} copies (max {copies.get('max_pending', 0)} at once, pool {pool_slots(stack)}), "
        f"{arm.get('writes', 0)} ARM writes, {len(problems)} problem(s)"
    )
    print(line)
    for problem in problems:
        print(f"  - {problem}")
    return ok, line


def cmd_demo(args: argparse.Namespace) -> int:
    with stack_for(args, "demo", emulator_config=json.loads(args.emulator_config)) as stack:
        stack.azure.post("/reset-stats", {})
        stack.client.unpause(DAG_ID)
        ok = True
        # Unpausing a scheduled DAG makes Airflow run its latest nightly slot at once: that is the first run.
        nightly = wait_for_scheduled_run(stack)
        if nightly:
            print(f"{DAG_ID} unpaused: Airflow scheduled the latest nightly run {nightly}")
            started = time.monotonic()
            run = follow_run(stack, nightly)
            ok, _ = summarize(stack, run, time.monotonic() - started, show_matrix=True)
            stack.azure.post("/reset-stats", {})
        # Then a run triggered through the REST API, as the UI's Trigger button does.
        run_id = stack.client.trigger(DAG_ID, conf={})
        same_day = nightly is not None and _version_of(stack, nightly) == _version_of(stack, run_id)
        print(
            f"\ntriggered {DAG_ID} run {run_id} through the REST API"
            + (" (same day as the nightly: expect no work)" if same_day else "")
            + (" (a new day since the nightly slot: a new version is captured)" if nightly and not same_day else "")
        )
        started = time.monotonic()
        run = follow_run(stack, run_id)
        manual_ok, _ = summarize(stack, run, time.monotonic() - started, show_matrix=not nightly)
        ok = ok and manual_ok
        if not ok:
            print(f"logs: {stack.airflow.log_dir} and {stack.airflow.settings.home / 'task-logs'}", file=sys.stderr)
        return 0 if ok else 1


def nightly_logical_date(stack: Stack) -> datetime | None:
    """Return the logical date of the latest scheduled (nightly) run, or None before there is one."""
    runs = [r for r in stack.client.dag_runs(DAG_ID) if r.get("run_type") == "scheduled" and r.get("logical_date")]
    if not runs:
        return None
    return max(datetime.fromisoformat(str(r["logical_date"]).replace("Z", "+00:00")) for r in runs)


def same_night(stack: Stack) -> str | None:
    """Return a fresh logical date on the nightly run's day, so a manual run works on the nightly's version.

    Between midnight and the nightly slot (02:00 UTC) the latest nightly is yesterday's: a manual run without a
    logical date then captures and distributes today's version. Tests and drills that mean "the same night again"
    pass this instead (one minute later per run already there, as logical dates are unique per DAG).
    """
    nightly = nightly_logical_date(stack)
    if nightly is None:
        return None
    return (nightly + timedelta(minutes=len(stack.client.dag_runs(DAG_ID)))).isoformat()


def _version_of(stack: Stack, run_id: str) -> str:
    """Return the UTC day of a run's logical date (the catalogue version it works on)."""
    return str(stack.client.dag_run(DAG_ID, run_id).get("logical_date") or "")[:10]


def pool_slots(stack: Stack) -> int | str:
    for pool in stack.client.pools():
        if pool.get("name") == "image_distribution":
            return int(pool.get("slots", 0))
    return "?"


def cmd_up(args: argparse.Namespace) -> int:
    stop = {"now": False}

    def on_signal(signum: int, _frame: object) -> None:
        stop["now"] = True

    mail_dir = REPO / ".run" / "up-mail"
    shutil.rmtree(mail_dir, ignore_errors=True)
    with mail_server(mail_dir) as (_mail, mail_env), stack_for(args, "up", port=args.port, extra_env=mail_env) as stack:
        stack.client.unpause(DAG_ID)
        env_file = stack.airflow.write_env_file(stack.airflow.settings.home.parent / "airflow.env")
        print(
            f"\nAirflow UI: {stack.airflow.base_url}/  user: {stack.airflow.settings.user}  "
            f"password: {stack.airflow.password}\nlocal Azure control API: {stack.azure.info['control_endpoint']}"
            f"\nairflow CLI in another shell: set -a; . {os.path.relpath(env_file)}; set +a; airflow …"
            f"\nmail: connection {SMTP_CONN_ID} is a local SMTP server; what it receives lands in "
            f"{os.path.relpath(mail_dir)}/ (factory.json Notifications with smtp_conn_id {SMTP_CONN_ID!r})"
            f"\nlogs: {stack.airflow.log_dir}\nCtrl-C stops everything.",
            flush=True,
        )
        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGTERM, on_signal)
        while not stop["now"]:
            for child in stack.airflow.children.values():
                if not child.alive():
                    print(f"airflow {child.name} exited:\n{child.tail()}", file=sys.stderr)
                    return 1
            time.sleep(1)
        print("stopping …")
    return 0


def _add_engine_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--executor", choices=EXECUTORS, default="local", help="LocalExecutor or CeleryExecutor")
    parser.add_argument(
        "--database",
        choices=DATABASES,
        default=DEFAULT_DATABASE,
        help="the metadata DB (celery: always postgres); sqlite cannot reprocess runs in a backfill",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stack")
    parser.add_argument("--world", type=Path, default=REPO / "emulator" / "worlds" / "demo.json")
    parser.add_argument("--config", type=Path, default=REPO / "Configuration")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="run image_factory once end to end and print the verify matrix")
    demo.add_argument(
        "--emulator-config", default="{}", help="JSON for the emulator's /config, e.g. '{\"copy_seconds\": 5}'"
    )
    _add_engine_arguments(demo)
    demo.set_defaults(func=cmd_demo)
    up = sub.add_parser("up", help="start the stack and keep it running until Ctrl-C")
    up.add_argument("--port", type=int, default=int(os.environ.get("PORT", DEFAULT_UI_PORT)))
    _add_engine_arguments(up)
    up.set_defaults(func=cmd_up)
    from stack.build_demo import add_parser as add_build_demo  # noqa: PLC0415 - it imports this module back
    from stack.retention_demo import add_parser  # noqa: PLC0415 - it imports this module back

    add_parser(sub)
    add_build_demo(sub)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
