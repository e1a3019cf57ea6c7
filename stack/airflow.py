"""Airflow 3 as a user runs it: ``db migrate``, api-server, scheduler, dag-processor, triggerer (LocalExecutor).

Settings follow the measured notes for 2-core machines: SQLite with a 60 s busy timeout and parallelism 8, the
DAG folder re-scanned every few seconds, the execution API reached at the api-server's own base URL.
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from emulator.ports import free_port
from stack.processes import Child, spawn, wait_until

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
PROCESSES = ("api-server", "scheduler", "dag-processor", "triggerer")


@dataclass
class AirflowSettings:
    """What differs between one stack and another (home folder, port, executor, extra environment)."""

    home: Path
    port: int = 0
    executor: str = "LocalExecutor"
    parallelism: int = 8
    config_dir: Path = REPO / "Configuration"
    user: str = "admin"
    sql_alchemy_conn: str | None = None
    extra_env: dict[str, str] = field(default_factory=dict)


class AirflowStack:
    """The four Airflow 3 processes over one AIRFLOW_HOME, started and stopped by pid."""

    def __init__(self, settings: AirflowSettings, connections_env: dict[str, str]) -> None:
        self.settings = settings
        self.port = settings.port or free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.children: dict[str, Child] = {}
        self._launch: dict[str, tuple[list[str], dict[str, str]]] = {}
        self.log_ports = (free_port(), free_port())
        self._connections_env = connections_env
        home = settings.home
        home.mkdir(parents=True, exist_ok=True)
        self.log_dir = home / "logs"
        self.report_dir = home / "reports"
        self.password = self._password()
        self._jwt_secret = self._secret_file("jwt_secret")

    # -- configuration -------------------------------------------------------------------------------------------
    def _secret_file(self, name: str) -> str:
        path = self.settings.home / name
        if not path.exists():
            path.write_text(secrets.token_urlsafe(64))
            path.chmod(0o600)
        return path.read_text().strip()

    def _password(self) -> str:
        path = self.settings.home / "passwords.json"
        if not path.exists():
            path.write_text(json.dumps({self.settings.user: secrets.token_urlsafe(12)}))
            path.chmod(0o600)
        return str(json.loads(path.read_text())[self.settings.user])

    def env(self) -> dict[str, str]:
        """Return the environment every Airflow process and CLI call of this stack runs with."""
        s = self.settings
        home = s.home
        log_port, trigger_log_port = self.log_ports
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
        env.update(
            {
                "AIRFLOW_HOME": str(home),
                "PATH": f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",
                "PYTHONPATH": os.pathsep.join([str(REPO / "plugins"), str(REPO)]),
                "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
                "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__EXECUTOR": s.executor,
                "AIRFLOW__CORE__PARALLELISM": str(s.parallelism),
                "AIRFLOW__CORE__MAX_MAP_LENGTH": "20000",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{s.user}:admin",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__API__PORT": str(self.port),
                "AIRFLOW__API__BASE_URL": self.base_url,
                "AIRFLOW__API__WORKERS": "1",
                "AIRFLOW__API_AUTH__JWT_SECRET": self._jwt_secret,
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
                "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "10",
                "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
                "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(log_port),
                "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(trigger_log_port),
                "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "task-logs"),
                "IMAGE_FACTORY_CONFIG_DIR": str(s.config_dir),
                "IMAGE_FACTORY_REPORT_DIR": str(self.report_dir),
            }
        )
        if s.sql_alchemy_conn:
            env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = s.sql_alchemy_conn
        else:
            env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{home / 'airflow.db'}"
            env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS"] = "stack.sqlite_args.CONNECT_ARGS"
            env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS_ASYNC"] = "stack.sqlite_args.CONNECT_ARGS_ASYNC"
        env.update(self._connections_env)
        env.update(s.extra_env)
        return env

    def write_env_file(self, path: Path) -> Path:
        """Write the stack's environment as shell assignments, so ``airflow …`` in another shell uses this stack.

        ``set -a; . <path>; set +a`` then ``airflow backfill create …``. The file holds the metadata DB's password
        and the connections: it is readable by its owner only.
        """
        wanted = {k: v for k, v in self.env().items() if k.startswith(("AIRFLOW", "IMAGE_FACTORY_"))}
        wanted.update({k: self.env()[k] for k in ("PATH", "PYTHONPATH")})
        path.write_text("".join(f"{k}={shlex.quote(v)}\n" for k, v in sorted(wanted.items())))
        path.chmod(0o600)
        return path

    # -- commands ------------------------------------------------------------------------------------------------
    def cli(self, *args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """Run one ``airflow`` CLI command with this stack's environment."""
        proc = subprocess.run(
            [str(VENV_BIN / "airflow"), *args],
            env=self.env(),
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and proc.returncode != 0:
            raise RuntimeError(f"airflow {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
        return proc

    def migrate(self) -> None:
        self.cli("db", "migrate")

    def import_pools(self) -> None:
        """Write the pool file from factory.json (include_deferred) and import it."""
        pool_file = self.settings.home / "pools.json"
        out = subprocess.run(
            [sys.executable, "-m", "image_factory.pools", str(self.settings.config_dir)],
            env=self.env(),
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        )
        pool_file.write_text(out.stdout)
        self.cli("pools", "import", str(pool_file))

    def start(self, processes: tuple[str, ...] = PROCESSES) -> None:
        for name in processes:
            self.start_process(name, name.split())

    def start_process(self, name: str, airflow_args: list[str], extra_env: dict[str, str] | None = None) -> Child:
        """Start ``airflow <airflow_args>`` as the stack's process ``name`` (e.g. a second Celery worker)."""
        env = self.env()
        env.update(extra_env or {})
        argv = [str(VENV_BIN / "airflow"), *airflow_args]
        child = spawn(name.replace(" ", "-"), argv, env=env, log_dir=self.log_dir, cwd=REPO)
        self.children[name] = child
        self._launch[name] = (list(airflow_args), dict(extra_env or {}))
        return child

    def wait_healthy(self, timeout: float = 120) -> None:
        def healthy() -> bool:
            for child in self.children.values():
                if not child.alive():
                    raise RuntimeError(f"airflow {child.name} exited early:\n{child.tail()}")
            r = httpx.get(f"{self.base_url}/api/v2/monitor/health", timeout=5)
            return r.status_code == 200

        wait_until(healthy, timeout=timeout, what="the Airflow api-server to be healthy")

    def restart(self, name: str) -> None:
        """Stop one process (SIGTERM to its group) and start it again with the same arguments."""
        self.children.pop(name).stop()
        args, extra_env = self._launch[name]
        self.start_process(name, args, extra_env)

    def stop(self) -> None:
        for name in reversed(list(self.children)):
            self.children[name].stop()
        self.children.clear()

    def report(self, pattern: str, run_key: str, run_id: str) -> dict[str, Any] | None:
        """Return the JSON report below ``report_dir`` matching ``pattern`` whose ``run_key`` is ``run_id``, if any."""
        for path in self.report_dir.rglob(pattern):
            data = json.loads(path.read_text())
            if data.get(run_key) == run_id:
                return dict(data)
        return None

    def wipe(self) -> None:
        self.stop()
        shutil.rmtree(self.settings.home, ignore_errors=True)
