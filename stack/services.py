"""The stacks' services: a private PostgreSQL cluster (the metadata DB unless SQLite) and a Redis broker (Celery).

Both are idempotent: ``start()`` reuses a server that is already running for the same folder, ``stop()`` is a no-op
when nothing runs. PostgreSQL runs as the ``postgres`` user (``initdb``/``pg_ctl`` refuse root) in a folder that
user owns; when the run folder is not reachable by ``postgres`` (pytest's ``/tmp/pytest-of-root`` is 0700) the
cluster lives in ``/tmp/image-factory-pg-<hash>`` instead and ``remove()`` deletes it. Logs go to the run folder.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emulator.ports import free_port
from stack.processes import Child, spawn, wait_until

log = logging.getLogger(__name__)

PG_ROOT = Path("/usr/lib/postgresql")
PG_SUPERUSER = "postgres"
DB_NAME = "airflow"
DB_USER = "airflow"
MAX_CONNECTIONS = 200


def pg_bin() -> Path:
    """Return the folder of PostgreSQL's server binaries: ``IMAGE_FACTORY_PG_BIN``, else Debian's newest major."""
    if override := os.environ.get("IMAGE_FACTORY_PG_BIN"):
        return Path(override)
    found = sorted(PG_ROOT.glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0)
    if not found:
        raise RuntimeError("PostgreSQL's server binaries are missing: `make postgres` installs Debian's package")
    return found[-1].parent


def _is_root() -> bool:
    return os.geteuid() == 0


def _as_postgres(argv: list[str]) -> list[str]:
    """Run ``argv`` as the postgres user when we are root (initdb and pg_ctl refuse to run as root)."""
    return ["runuser", "-u", PG_SUPERUSER, "--", *argv] if _is_root() else argv


def _run(argv: list[str], *, what: str, timeout: float = 120, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False, **kwargs)
    if proc.returncode != 0:
        raise RuntimeError(f"{what} failed ({proc.returncode}): {(proc.stderr or proc.stdout)[-2000:]}")
    return proc


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError):
        return {}


def _write_private(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(0o600)


class PostgresCluster:
    """A private PostgreSQL cluster (127.0.0.1, a free port, its own unix socket folder) with user/db ``airflow``."""

    def __init__(self, root: Path, log_dir: Path) -> None:
        self.root = root
        self.log_path = log_dir / "postgres.log"
        self._state_path = root / "postgres.json"

    # -- where and how ---------------------------------------------------------------------------------------------
    @property
    def cluster_dir(self) -> Path:
        """The folder owned by postgres (data/ and sock/): under ``root`` if postgres can reach it, else in /tmp."""
        state = _read_json(self._state_path)
        if "cluster_dir" in state:
            return Path(state["cluster_dir"])
        return self._choose_cluster_dir()

    @property
    def data_dir(self) -> Path:
        return self.cluster_dir / "data"

    @property
    def socket_dir(self) -> Path:
        return self.cluster_dir / "sock"

    @property
    def port(self) -> int:
        return int(self._state()["port"])

    @property
    def password(self) -> str:
        return str(self._state()["password"])

    def url(self, driver: str = "postgresql+psycopg2") -> str:
        """Return the SQLAlchemy URL of the ``airflow`` database (contains the password: never log it)."""
        return f"{driver}://{DB_USER}:{self.password}@127.0.0.1:{self.port}/{DB_NAME}"

    def _choose_cluster_dir(self) -> Path:
        inside = self.root / "cluster"
        if not _is_root() or self._postgres_can_reach(self.root):
            return inside
        digest = hashlib.sha256(str(self.root.resolve()).encode()).hexdigest()[:12]
        return Path(tempfile.gettempdir()) / f"image-factory-pg-{digest}"

    @staticmethod
    def _postgres_can_reach(folder: Path) -> bool:
        probe = subprocess.run(_as_postgres(["test", "-x", str(folder)]), capture_output=True, check=False)
        return probe.returncode == 0

    def _state(self) -> dict[str, Any]:
        state = _read_json(self._state_path)
        if not state:
            self.root.mkdir(parents=True, exist_ok=True)
            state = {
                "port": free_port(),
                "password": secrets.token_urlsafe(18),
                "cluster_dir": str(self._choose_cluster_dir()),
            }
            _write_private(self._state_path, json.dumps(state))
        return state

    # -- lifecycle -------------------------------------------------------------------------------------------------
    def running(self) -> bool:
        """Tell whether the cluster's postmaster is running (``pg_ctl status``)."""
        if not (self.data_dir / "PG_VERSION").exists():
            return False
        status = subprocess.run(
            _as_postgres([str(pg_bin() / "pg_ctl"), "-D", str(self.data_dir), "status"]),
            capture_output=True,
            check=False,
        )
        return status.returncode == 0

    def start(self) -> None:
        """Initialise the cluster if needed, start it unless it runs, and make sure user/db ``airflow`` exist."""
        self._state()
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb()
        if not self.running():
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            with self.log_path.open("ab") as out:
                # No -l: the postmaster inherits this descriptor, so the log can live where postgres cannot reach.
                proc = subprocess.run(
                    _as_postgres([str(pg_bin() / "pg_ctl"), "-D", str(self.data_dir), "-w", "-t", "60", "start"]),
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=out,
                    timeout=90,
                    check=False,
                )
            if proc.returncode != 0:
                raise RuntimeError(f"PostgreSQL did not start (pg_ctl {proc.returncode}); see {self.log_path}")
            log.info("PostgreSQL started on 127.0.0.1:%s", self.port)
        self._create_database()

    def _initdb(self) -> None:
        cluster = self.cluster_dir
        if cluster.exists():
            shutil.rmtree(cluster)
        cluster.mkdir(parents=True, mode=0o700)
        self.socket_dir.mkdir(mode=0o700)
        if _is_root():
            shutil.chown(cluster, PG_SUPERUSER, PG_SUPERUSER)
            shutil.chown(self.socket_dir, PG_SUPERUSER, PG_SUPERUSER)
        argv = [
            str(pg_bin() / "initdb"),
            "-D",
            str(self.data_dir),
            "-U",
            PG_SUPERUSER,
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
        ]
        _run(_as_postgres(argv), what="initdb")
        with (self.data_dir / "postgresql.conf").open("a") as conf:
            conf.write(
                "\n# image factory local stack\n"
                "listen_addresses = '127.0.0.1'\n"
                f"port = {self.port}\n"
                f"unix_socket_directories = '{self.socket_dir}'\n"
                f"max_connections = {MAX_CONNECTIONS}\n"
                "fsync = off\n"
                "synchronous_commit = off\n"
                "full_page_writes = off\n"
            )

    def _create_database(self) -> None:
        import psycopg2  # noqa: PLC0415 - only a PostgreSQL stack needs it (apache-airflow[postgres] installs it)

        conn = psycopg2.connect(
            host=str(self.socket_dir), port=self.port, user=PG_SUPERUSER, dbname="postgres", connect_timeout=10
        )
        try:
            conn.autocommit = True  # CREATE DATABASE cannot run in a transaction
            with conn.cursor() as cur:
                cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (DB_USER,))
                if cur.fetchone() is None:
                    cur.execute("CREATE ROLE airflow LOGIN")
                cur.execute("ALTER ROLE airflow PASSWORD %s", (self.password,))
                cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DB_NAME,))
                if cur.fetchone() is None:
                    cur.execute("CREATE DATABASE airflow OWNER airflow")
        finally:
            conn.close()

    def stop(self) -> None:
        """Stop the cluster (fast shutdown) if it runs."""
        if not self.running():
            return
        _run(
            _as_postgres([str(pg_bin() / "pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "-w", "-t", "60", "stop"]),
            what="pg_ctl stop",
        )
        log.info("PostgreSQL stopped")

    def remove(self) -> None:
        """Stop the cluster and delete it when it lives outside ``root`` (in /tmp)."""
        self.stop()
        cluster = self.cluster_dir
        if not cluster.is_relative_to(self.root):
            shutil.rmtree(cluster, ignore_errors=True)


def ensure_redis_server() -> str:
    """Return the path of ``redis-server``; install Debian's package when it is missing (as root)."""
    found = shutil.which("redis-server") or shutil.which("redis-server", path="/usr/bin:/usr/sbin")
    if found:
        return found
    if not _is_root():
        raise RuntimeError("redis-server is missing: run `apt-get install -y redis-server` as root")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "redis-server"]
    log.info("installing redis-server (apt-get)")
    if subprocess.run(install, env=env, capture_output=True, check=False, timeout=600).returncode != 0:
        _run(["apt-get", "update", "-qq"], what="apt-get update", env=env, timeout=600)
        _run(install, what="apt-get install redis-server", env=env, timeout=600)
    found = shutil.which("redis-server") or shutil.which("redis-server", path="/usr/bin:/usr/sbin")
    if not found:
        raise RuntimeError("apt-get installed redis-server but it is not on PATH")
    return found


def redis_ping(port: int, timeout: float = 1.0) -> bool:
    """Return True when a Redis on 127.0.0.1:``port`` answers PING."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def _pid_is(pid: int, program: str) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    state = stat.rsplit(")", 1)[-1].split()[0]
    return program.encode() in cmdline and state != "Z"


class RedisServer:
    """A Redis on 127.0.0.1 and a free port, no persistence, started in the background and stopped by pid."""

    def __init__(self, root: Path, log_dir: Path) -> None:
        self.root = root
        self.log_dir = log_dir
        self._state_path = root / "redis.json"
        self._child: Child | None = None

    @property
    def port(self) -> int:
        return int(_read_json(self._state_path)["port"])

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    @property
    def pid(self) -> int | None:
        """Return the pid of the running server, or None."""
        state = _read_json(self._state_path)
        return int(state["pid"]) if state and _pid_is(int(state["pid"]), "redis-server") else None

    def running(self) -> bool:
        state = _read_json(self._state_path)
        return bool(state) and _pid_is(int(state["pid"]), "redis-server") and redis_ping(int(state["port"]))

    def start(self, timeout: float = 30) -> None:
        """Start Redis unless the one recorded for ``root`` still answers."""
        if self.running():
            return
        binary = ensure_redis_server()
        data = self.root / "redis"
        data.mkdir(parents=True, exist_ok=True)
        port = free_port()
        argv = [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--protected-mode",
            "yes",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(data),
            "--daemonize",
            "no",
        ]
        child = spawn("redis", argv, env=dict(os.environ), log_dir=self.log_dir)
        self._child = child
        _write_private(self._state_path, json.dumps({"pid": child.pid, "port": port}))

        def ready() -> bool:
            if not child.alive():
                raise RuntimeError(f"redis-server exited with {child.popen.returncode}:\n{child.tail()}")
            return redis_ping(port)

        wait_until(ready, timeout=timeout, interval=0.1, what="Redis to answer PING")
        log.info("Redis started on 127.0.0.1:%s", port)

    def stop(self, timeout: float = 10) -> None:
        """SIGTERM the recorded pid (SIGKILL after ``timeout``) and forget it."""
        if self._child is not None:
            self._child.stop(timeout)
            self._child = None
        state = _read_json(self._state_path)
        if state:
            pid = int(state["pid"])
            if _pid_is(pid, "redis-server"):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
                deadline = time.monotonic() + timeout
                while _pid_is(pid, "redis-server") and time.monotonic() < deadline:
                    time.sleep(0.1)
                if _pid_is(pid, "redis-server"):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
            self._state_path.unlink(missing_ok=True)


@dataclass
class Services:
    """PostgreSQL + Redis for one run folder."""

    postgres: PostgresCluster
    redis: RedisServer

    def start(self) -> None:
        self.postgres.start()
        self.redis.start()

    def stop(self) -> None:
        """Stop both (each is a no-op when it does not run)."""
        try:
            self.redis.stop()
        finally:
            self.postgres.stop()

    def remove(self) -> None:
        """Stop both and delete a cluster kept outside the run folder."""
        try:
            self.redis.stop()
        finally:
            self.postgres.remove()


def services_for(run_dir: Path) -> Services:
    """Return the services of ``run_dir`` (state in ``run_dir/services``, logs in ``run_dir/logs``)."""
    root = run_dir / "services"
    log_dir = run_dir / "logs"
    return Services(postgres=PostgresCluster(root, log_dir), redis=RedisServer(root, log_dir))
