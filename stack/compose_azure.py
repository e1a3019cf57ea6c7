"""The local Azure as a compose service: start it, publish Airflow connections to a shared volume, keep serving.

Airflow's containers read the connections with ``LocalFilesystemBackend`` (the file never leaves the volume).
"""

from __future__ import annotations

import argparse
import json
import signal
import threading
from pathlib import Path

from stack.__main__ import factory_subscription
from stack.localazure import start_local_azure


def connections_file(env: dict[str, str]) -> dict[str, object]:
    """Turn ``AIRFLOW_CONN_*`` JSON values into a LocalFilesystemBackend connections document."""
    return {key.removeprefix("AIRFLOW_CONN_").lower(): json.loads(value) for key, value in env.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stack.compose_azure")
    parser.add_argument("--world", type=Path, required=True)
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--shared", type=Path, required=True)
    parser.add_argument("--arm-port", type=int, default=8443)
    parser.add_argument("--blob-port", type=int, default=10443)
    args = parser.parse_args(argv)
    azure = start_local_azure(
        world=args.world,
        state_dir=args.state_dir,
        log_dir=args.state_dir / "logs",
        arm_port=args.arm_port,
        blob_port=args.blob_port,
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        env = azure.connections_env(subscription_id=factory_subscription(args.config))
        target = args.shared / "connections.json"
        tmp = target.with_suffix(".tmp")
        tmp.write_text(json.dumps(connections_file(env), indent=2))
        tmp.chmod(0o640)
        tmp.replace(target)
        while not stop.wait(1):
            if not azure.child.alive():
                return 1
    finally:
        azure.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
