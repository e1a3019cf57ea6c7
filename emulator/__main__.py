"""Command line of the local Azure: ``python -m emulator serve --world FILE``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from emulator.world import WorldError


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run the chosen command."""
    parser = argparse.ArgumentParser(prog="python -m emulator", description="The local Azure for the image factory.")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="start storage + ARM, print one JSON line, serve until SIGTERM")
    serve.add_argument("--world", required=True, type=Path, help="world file (JSON)")
    serve.add_argument("--state-dir", type=Path, default=None, help="state directory (default: a temporary one)")
    serve.add_argument("--arm-port", type=int, default=0, help="ARM + Entra ID HTTPS port (0 = free port)")
    serve.add_argument("--blob-port", type=int, default=0, help="blob HTTPS port (0 = free port)")
    serve.add_argument(
        "--record-dir",
        type=Path,
        default=None,
        help="record every ARM answer as JSON lines in this folder (default: $LOCAL_AZURE_RECORD_DIR; off if unset)",
    )
    serve.add_argument("--arm-latency", help="ARM delay per request: MEDIAN_MS or MEDIAN_MS/P99_MS (default none)")
    serve.add_argument("--storage-latency", help="blob delay per request: MEDIAN_MS or MEDIAN_MS/P99_MS")
    serve.add_argument("--latency-seed", type=int, default=0, help="seed of the delays (default 0)")
    serve.add_argument("--throttle", action="store_true", help="answer 429 when ARM's token buckets are empty")
    serve.add_argument("--log-level", default="INFO", help="log level on stderr (default INFO)")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    for noisy in ("azure", "uvicorn.access", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    from emulator.latency import Latencies, LatencyError, parse_option
    from emulator.server import serve as run_server

    try:
        latencies = Latencies(parse_option(args.arm_latency), parse_option(args.storage_latency), args.latency_seed)
    except LatencyError as exc:
        parser.error(str(exc))
    try:
        return asyncio.run(
            run_server(
                args.world,
                state_dir=args.state_dir,
                arm_port=args.arm_port,
                blob_port=args.blob_port,
                out=sys.stdout,
                record_dir=args.record_dir,
                latencies=latencies,
                throttling=args.throttle,
            )
        )
    except WorldError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
