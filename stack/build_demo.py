"""``python -m stack demo-build``: a build night on the build world (``emulator/worlds/build.json``).

The factory lab starts empty: no VM built by hand. The sample ``Configuration/`` is copied to
``.run/demo-build-configuration/`` with ``Build.Enabled`` switched on (the sample keeps it off), the stack starts
on that copy, and the nightly run Airflow schedules on unpause builds one VM per template a lab subscribes to (ARM
template deployments with the sysprep / deprovision artifact appended), captures them, distributes their images,
deletes the built VMs once catalogued and retires. It prints verify's matrix, what the build did per template and the
factory lab's VMs afterwards (none). It reads the configuration as data and never imports the product.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
WORLD = REPO / "emulator" / "worlds" / "build.json"
RUN_NAME = "demo-build"


def add_parser(sub: Any) -> None:
    """Register ``demo-build`` on ``python -m stack``'s sub-commands."""
    demo = sub.add_parser("demo-build", help="a build night: make the factory VMs from GoldenImages/, then as demo")
    demo.add_argument("--executor", choices=("local", "celery"), default="local")
    demo.set_defaults(func=cmd_demo_build)


def build_configuration(source: Path, target: Path) -> Path:
    """Copy the configuration folder to ``target`` with factory.json's ``Build.Enabled`` on; return ``target``."""
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source, target)
    path = next(p for p in target.iterdir() if p.name.casefold() == "factory.json")
    doc = json.loads(path.read_text(encoding="utf-8-sig"))
    doc.setdefault("Build", {})["Enabled"] = True
    path.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    return target


def _factory_vms(state: dict[str, Any], lab: str) -> list[str]:
    found: dict[str, Any] = next((e for e in state.get("labs", []) if e.get("name") == lab), {})
    return [str(vm.get("name")) for vm in found.get("vms", [])]


def cmd_demo_build(args: argparse.Namespace) -> int:
    from stack.__main__ import DAG_ID, follow_run, stack_for, summarize, verify_report, wait_for_scheduled_run  # noqa: PLC0415

    args.world = WORLD
    # Beside the run folder, which the stack empties when it starts.
    args.config = build_configuration(args.config, REPO / ".run" / f"{RUN_NAME}-configuration")
    with stack_for(args, RUN_NAME, emulator_config={"copy_seconds": 2, "lro_seconds": 1}) as stack:
        factory = json.loads((args.config / "factory.json").read_text(encoding="utf-8"))["Factory"]["LabName"]
        print(f"factory lab {factory} before the night: VMs {_factory_vms(stack.azure.state(), factory) or 'none'}")
        stack.client.unpause(DAG_ID)
        run_id = wait_for_scheduled_run(stack)
        if run_id is None:
            print("Airflow scheduled no run after the unpause", file=sys.stderr)
            return 1
        print(f"{DAG_ID} unpaused: Airflow scheduled the nightly run {run_id}, a build night")
        started = time.monotonic()
        run = follow_run(stack, run_id)
        ok, _ = summarize(stack, run, time.monotonic() - started, show_matrix=True)
        report = verify_report(stack, run_id) or {}
        print("\nbuild:")
        for path, text in sorted((report.get("build") or {}).items()):
            print(f"  {path}: {text}")
        print("capture:")
        for path, text in sorted((report.get("capture") or {}).items()):
            print(f"  {path}: {text}")
        left = _factory_vms(stack.azure.state(), factory)
        print(f"factory lab {factory} after the night: VMs {left or 'none'}")
        ok = ok and not left
        if not ok:
            print(f"logs: {stack.airflow.log_dir} and {stack.airflow.settings.home / 'task-logs'}", file=sys.stderr)
        return 0 if ok else 1
