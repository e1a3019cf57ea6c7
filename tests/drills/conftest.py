"""Drill fixtures: worlds, configuration copies, the real stack, and helpers to run and reset the factory."""

from __future__ import annotations

import contextlib
import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.identity import ClientSecretCredential
from azure.mgmt.devtestlabs import DevTestLabsClient

from stack.__main__ import DAG_ID, Stack, follow_run, running_stack, same_night, verify_report
from tests.drills import invariants

REPO = Path(__file__).resolve().parents[2]
DEMO_WORLD = REPO / "emulator" / "worlds" / "demo.json"
SUB1 = "11111111-1111-4111-8111-111111111111"
SUB2 = "22222222-2222-4222-8222-222222222222"
SUB3 = "33333333-3333-4333-8333-333333333333"
TARGET_LABS = ("DevLab", "TestLab", "QALab")
#: The pairs the demo configuration distributes in one run of one version (labs × selected golden images).
DEMO_PAIRS = 7
#: Emulator timings for drills: short, but long enough for copies to be pending when a drill strikes.
FAST = {"copy_seconds": 4, "lro_seconds": 1}

#: Labs the access drill adds: the default principal may only read ReaderLab, may not see ForeignLab at all;
#: GhostLab is listed in labs.json but exists nowhere.
READER_LAB = {
    "name": "ReaderLab",
    "subscription": SUB2,
    "resource_group": "rg-reader",
    "storage_account": "readerstore",
}
FOREIGN_LAB = {
    "name": "ForeignLab",
    "subscription": SUB3,
    "resource_group": "rg-foreign",
    "storage_account": "foreignstore",
}
GHOST_LAB = {"name": "GhostLab", "subscription": SUB1, "resource_group": "rg-dev"}


def access_world(tmp: Path) -> Path:
    """The demo world plus ReaderLab (Reader only) and ForeignLab (another subscription, no role)."""
    world = json.loads(DEMO_WORLD.read_text())
    for lab, location in ((READER_LAB, "northeurope"), (FOREIGN_LAB, "westeurope")):
        world["labs"].append({**lab, "location": location})
    sub2 = next(s for s in world["subscriptions"] if s["id"] == SUB2)
    sub2["resource_groups"].append({"name": READER_LAB["resource_group"]})
    world["subscriptions"].append({"id": SUB3, "name": "Elsewhere", "resource_groups": [{"name": "rg-foreign"}]})
    default = next(p for p in world["principals"] if p["name"] == world["default_principal"])
    default["roles"] = [
        {"scope": f"/subscriptions/{SUB1}", "role": "Contributor"},
        {"scope": f"/subscriptions/{SUB2}/resourceGroups/rg-qa", "role": "Contributor"},
        {"scope": f"/subscriptions/{SUB2}/resourceGroups/{READER_LAB['resource_group']}", "role": "Reader"},
    ]
    path = tmp / "access-world.json"
    path.write_text(json.dumps(world, indent=2))
    return path


def access_labs(config_dir: Path) -> None:
    """Subscribe ReaderLab, ForeignLab and GhostLab to Ubuntu in ``config_dir``'s labs.json."""
    labs_file = config_dir / "labs.json"
    labs = json.loads(labs_file.read_text())
    for lab in (READER_LAB, FOREIGN_LAB, GHOST_LAB):
        labs["Labs"].append(
            {
                "SubscriptionId": lab["subscription"],
                "LabName": lab["name"],
                "ResourceGroup": lab["resource_group"],
                "ImagePaths": ["Ubuntu"],
            }
        )
    labs_file.write_text(json.dumps(labs, indent=2))


def copy_config(target: Path) -> Path:
    """Copy the repo's Configuration/ to ``target`` (a drill may edit it) and return it."""
    shutil.copytree(REPO / "Configuration", target)
    return target


@contextlib.contextmanager
def drill_stack(
    run_dir: Path, *, world: Path = DEMO_WORLD, config_dir: Path | None = None, emulator: dict[str, Any] | None = None
) -> Iterator[Stack]:
    """Start the local Azure and the four Airflow processes under ``run_dir``; the DAG unpaused."""
    config = config_dir or copy_config(run_dir / "Configuration")
    with running_stack(
        run_dir=run_dir / "run",
        world=world,
        config_dir=config,
        emulator_config=emulator or FAST,
        say=lambda *_: None,
    ) as stack:
        stack.client.unpause(DAG_ID)
        wait_scheduled_run_done(stack)
        yield stack


def wait_scheduled_run_done(stack: Stack, settle: float = 8) -> None:
    """Unpausing makes Airflow schedule the latest nightly slot: let it finish so drills start from a known state.

    Drills trigger their own runs; the scheduled run is the first distribution (no fault) when it comes.
    """
    deadline = time.monotonic() + settle
    while time.monotonic() < deadline:
        runs = [r for r in stack.client.dag_runs(DAG_ID) if r.get("run_type") == "scheduled"]
        if runs:
            follow_run(stack, str(runs[0]["dag_run_id"]), timeout=900, interval=3)
            return
        time.sleep(1)


def trigger(stack: Stack, conf: dict[str, Any] | None = None) -> str:
    """Trigger image_factory through the REST API as the UI does; return the run id.

    The run gets a logical date on the nightly run's day: a drill means "the same night again", also when it runs
    between midnight and the nightly slot.
    """
    return stack.client.trigger(DAG_ID, conf=conf or {}, logical_date=same_night(stack))


def wait(stack: Stack, run_id: str, timeout: float = 900) -> dict[str, Any]:
    """Wait for a run to end and return it."""
    return follow_run(stack, run_id, timeout=timeout, interval=3)


def run_to_end(stack: Stack, conf: dict[str, Any] | None = None, timeout: float = 900) -> tuple[str, dict[str, Any]]:
    """Trigger a run and wait for it; return (run id, final run)."""
    run_id = trigger(stack, conf)
    return run_id, wait(stack, run_id, timeout)


def task_states(stack: Stack, run_id: str, task_id: str) -> list[str]:
    """Return the states of one task's instances (all map indexes) in a run."""
    return [str(ti.get("state")) for ti in stack.client.task_instances(DAG_ID, run_id) if ti["task_id"] == task_id]


def check_after(stack: Stack, run_id: str) -> dict[str, Any]:
    """Assert the invariants after a run (state + verify's report); return the state."""
    state = stack.azure.state()
    invariants.assert_invariants(state, verify_report(stack, run_id))
    return state


def dtl_client(stack: Stack, subscription_id: str) -> DevTestLabsClient:
    """A DevTest Labs SDK client on the local Azure as the default principal (for resetting labs)."""
    info = stack.azure.info
    credential = ClientSecretCredential(
        info["tenant_id"],
        info["client_id"],
        info["client_secret"],
        authority=info["authority_host"],
        connection_verify=info["ca_bundle"],
        disable_instance_discovery=True,
    )
    return DevTestLabsClient(
        credential, subscription_id, base_url=info["arm_endpoint"], connection_verify=info["ca_bundle"]
    )


def clear_lab_images(stack: Stack, labs: tuple[str, ...] = TARGET_LABS) -> int:
    """Delete every custom image of ``labs`` (so the next run distributes again); return how many."""
    deleted = 0
    for lab in stack.azure.state()["labs"]:
        if lab["name"] not in labs or not lab["images"]:
            continue
        with dtl_client(stack, lab["subscription_id"]) as client:
            pollers = [
                client.custom_images.begin_delete(lab["resource_group"], lab["name"], image["name"])
                for image in lab["images"]
            ]
            for poller in pollers:
                poller.result()
            deleted += len(pollers)
    return deleted


def reset(stack: Stack) -> None:
    """Clear faults and stats and every target lab's images: the next run distributes all pairs again."""
    stack.azure.delete("/faults")
    clear_lab_images(stack)
    stack.azure.post("/config", FAST)
    stack.azure.post("/reset-stats", {})


@pytest.fixture(scope="module")
def demo_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One real stack (demo world, sample configuration) per drill module, its nightly run done."""
    with drill_stack(tmp_path_factory.mktemp("drill-stack")) as stack:
        yield stack
