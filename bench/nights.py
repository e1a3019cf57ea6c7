"""P7 bytes moved per night: three nights on one world, ours on the real stack beside the original's behaviour.

Night 1 captures every factory VM and distributes every (lab, image) pair; on night 2 nothing changed; before
night 3 one factory VM is rebuilt (the emulator's control API: a new OS disk). Ours runs the nightly DAG (capture
on) for three successive logical dates on one stack (LocalExecutor on PostgreSQL, the stack's default); the
emulator's list of copies says what each night moved, split by destination into captures (the factory catalogue)
and distributions (a lab's ``uploads``). The baseline is the original's behaviour on the same world and nights: its
capture takes every factory VM again each night under the night's name (computed here: the disk blob of every VM
capture would take) and DistributeImages — ``bench/baseline.py``, measured — copies each of those new images into
every lab that wants it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench import worlds
from bench.baseline import BaselineSettings, should_copy_image_to_lab
from bench.measure import (
    RUN_DIR,
    arm_count,
    baseline_facts,
    baseline_settings,
    local_azure,
    run_baseline_once,
    stats_digest,
    world_facts,
)
from bench.ours import NO_SCHEDULED_RUNS, images_succeeded, try_ours
from bench.report import Figure, Outcome
from emulator.vhd import FOOTER_SIZE

log = logging.getLogger(__name__)

LABS, IMAGES = 4, 3
COPY_SECONDS, LRO_SECONDS = 2.0, 1.0
POOL = 10
#: The factory VM rebuilt before night 3 (``Gen/Image001.json``: wanted by three of the four labs).
REBUILT_VM = "vm-image001"
#: The DAG's params for every night: capture on (its default), copies looked at every second.
OURS_CONF = {"copy_poll_seconds": 1}
NIGHT_TIMEOUT = 900.0


@dataclass(frozen=True)
class NightPlan:
    """One night of the scenario and the change made to the world before it."""

    number: int
    title: str
    rebuild: str | None = None


NIGHTS = (
    NightPlan(1, "first capture + distribution"),
    NightPlan(2, "nothing changed"),
    NightPlan(3, f"{REBUILT_VM} rebuilt", rebuild=REBUILT_VM),
)


@dataclass(frozen=True)
class CopyTally:
    """Copies and bytes of one night, captures and distributions apart."""

    capture_copies: int = 0
    capture_bytes: int = 0
    distribution_copies: int = 0
    distribution_bytes: int = 0

    @property
    def copies(self) -> int:
        """Every copy started."""
        return self.capture_copies + self.distribution_copies

    @property
    def bytes(self) -> int:
        """Every byte copied."""
        return self.capture_bytes + self.distribution_bytes


@dataclass
class Night:
    """What one night cost one side."""

    number: int
    tally: CopyTally
    arm_writes: int
    seconds: float
    state: str = "success"
    detail: dict[str, Any] = field(default_factory=dict)

    def value(self, key: str) -> int | float:
        """Return the figure ``key`` (a ``CopyTally`` field or property, ``arm_writes`` or ``seconds``)."""
        if key == "arm_writes":
            return self.arm_writes
        if key == "seconds":
            return round(self.seconds, 1)
        return int(getattr(self.tally, key))

    def digest(self) -> dict[str, Any]:
        """Return what the result file keeps of the night."""
        return {
            "night": self.number,
            "state": self.state,
            "seconds": round(self.seconds, 2),
            "arm_writes": self.arm_writes,
            **asdict(self.tally),
            **self.detail,
        }


# -- the world --------------------------------------------------------------------------------------------------
def nights_world() -> dict[str, Any]:
    """A generated world, one region: 4 labs, 3 factory VMs whose disks are 1, 2 and 3 MiB."""
    world = worlds.generate_world(LABS, IMAGES, 1, copy_seconds=COPY_SECONDS, lro_seconds=LRO_SECONDS)
    for index, vm in enumerate(worlds.factory_lab(world)["vms"]):
        vm["disk_size_mib"] = index + 1
    return world


def selectors_for(lab_index: int, image_paths: Sequence[str]) -> list[str]:
    """Lab ``n``'s ImagePaths: the first two labs the whole folder, the third all but the last image, the fourth it."""
    kind = lab_index % 4
    if kind < 2:
        return sorted({path.split("/")[0] for path in image_paths})
    return list(image_paths[:-1]) if kind == 2 else list(image_paths[-1:])


def nights_labs_json(world: Mapping[str, Any]) -> dict[str, Any]:
    """The ``labs.json`` of the scenario: labs that want different images (``selectors_for``)."""
    doc = worlds.labs_json(world)
    paths = worlds.image_paths(world)
    for index, lab in enumerate(doc["Labs"]):
        lab["ImagePaths"] = selectors_for(index, paths)
    return doc


def wanted_by(labs_doc: Mapping[str, Any], image_path: str) -> int:
    """Return how many labs want ``image_path`` (the original's prefix rule; the product's agrees for these)."""
    return sum(1 for lab in labs_doc["Labs"] if should_copy_image_to_lab(lab, image_path))


def vhd_bytes(world: Mapping[str, Any], vm_name: str) -> int:
    """Return the bytes of a factory VM's disk blob (data + the VHD footer)."""
    vm = next(vm for vm in worlds.factory_lab(world)["vms"] if vm["name"] == vm_name)
    return int(vm.get("disk_size_mib", 1)) * worlds.MIB + FOOTER_SIZE


def night_dates(count: int, now: datetime) -> list[str]:
    """Return ``count`` nightly logical dates (02:00 UTC), one a day, the last one the day before ``now``'s."""
    today = now.astimezone(UTC).replace(hour=2, minute=0, second=0, microsecond=0)
    return [(today - timedelta(days=count - i)).isoformat() for i in range(count)]


# -- what the emulator counted ----------------------------------------------------------------------------------
def copy_tally(
    stats: Mapping[str, Any],
    factory_account: str = worlds.FACTORY_ACCOUNT,
    container: str = worlds.CONTAINER,
) -> CopyTally:
    """Split the copies the emulator saw into captures (into the factory catalogue) and distributions (the rest).

    Bytes are what each copy moved (``copied``: all of it for a successful copy, the part done for another).
    """
    counts = {"capture": [0, 0], "distribution": [0, 0]}
    for transfer in stats.get("copies", {}).get("transfers", []):
        into_catalogue = transfer.get("destination_account") == factory_account and transfer.get("container") == (
            container
        )
        tally = counts["capture" if into_catalogue else "distribution"]
        tally[0] += 1
        tally[1] += int(transfer.get("copied", transfer.get("bytes", 0)))
    return CopyTally(*counts["capture"], *counts["distribution"])


def capture_everything(state: Mapping[str, Any]) -> CopyTally:
    """Return what capturing every factory VM in a state to be captured copies: each one's OS disk blob.

    This is the original's capture each night (it makes every image again under the night's name); the sizes are the
    disk blobs' in the emulator's ``/state``.
    """
    sizes = {
        f"{account}/{container}/{blob['name']}": int(blob["size"])
        for account, containers in state.get("blobs", {}).items()
        for container, blobs in containers.items()
        for blob in blobs
    }
    factory = next(lab for lab in state["labs"] if lab["name"] == worlds.FACTORY_LAB)
    disks = [vm["os_disk"] for vm in factory.get("vms", []) if worlds.capturable(vm)]
    return CopyTally(
        capture_copies=len(disks),
        capture_bytes=sum(sizes.get(str(d.get("blob")), int(d.get("size_bytes", 0)) + FOOTER_SIZE) for d in disks),
    )


def rebuild(azure: Any, world: Mapping[str, Any], vm: str) -> dict[str, Any]:
    """Give a factory VM a new OS disk through the emulator's control API; return its answer."""
    lab = worlds.factory_lab(world)
    body = {"subscription": lab["subscription"], "resource_group": lab["resource_group"], "lab": lab["name"], "vm": vm}
    return dict(azure.post("/vms/rebuild", body))


# -- the baseline: the original's behaviour, night after night ---------------------------------------------------
def _baseline_night(
    azure: Any, world: Mapping[str, Any], settings: BaselineSettings, plan: NightPlan, date: str
) -> Night:
    """Change the world as the night says; count the original's captures; run the port on the night's catalogue."""
    if plan.rebuild:
        rebuild(azure, world, plan.rebuild)
    captured = capture_everything(azure.state())
    # What the original's capture would have written: every image again, named for the night.
    worlds.seed_catalogue(azure.info, world, version=date[:10])
    result, stats = run_baseline_once(azure, settings)
    distributed = copy_tally(stats)
    tally = CopyTally(
        captured.capture_copies,
        captured.capture_bytes,
        distributed.distribution_copies,
        distributed.distribution_bytes,
    )
    return Night(
        plan.number,
        tally,
        arm_count(stats, "writes"),
        result.seconds,
        state="success" if not result.errors else "errors",
        detail={"logical_date": date, "summary": result.summary(), "stats": stats_digest(stats)},
    )


def run_baseline_nights(
    run_dir: Path, world: Mapping[str, Any], settings: BaselineSettings, dates: Sequence[str]
) -> list[Night]:
    """The original's nights on one local Azure: re-capture everything (computed), distribute it all (the port)."""
    with local_azure(run_dir, world) as azure:
        return [_baseline_night(azure, world, settings, plan, date) for plan, date in zip(NIGHTS, dates, strict=True)]


# -- ours: the nightly DAG, three logical dates on one stack -------------------------------------------------------
def _ours_night(stack: Any, world: Mapping[str, Any], plan: NightPlan, date: str) -> Night:
    """Change the world as the night says, run the night's DAG run with fresh stats, read what it cost."""
    from stack.__main__ import DAG_ID, follow_run, verify_report

    if plan.rebuild:
        rebuild(stack.azure, world, plan.rebuild)
    stack.azure.post("/reset-stats", {})
    started = time.monotonic()
    run_id = stack.client.trigger(DAG_ID, conf=dict(OURS_CONF), logical_date=date)
    run = follow_run(stack, run_id, timeout=NIGHT_TIMEOUT)
    seconds = time.monotonic() - started
    stats = stack.azure.stats()
    report = verify_report(stack, run_id) or {}
    return Night(
        plan.number,
        copy_tally(stats),
        arm_count(stats, "writes"),
        seconds,
        state=str(run["state"]),
        detail={
            "logical_date": date,
            "run_id": run_id,
            "capture": report.get("capture"),
            "problems": report.get("problems"),
            "images_in_labs": images_succeeded(stack.azure.state()),
            "stats": stats_digest(stats),
        },
    )


def run_ours_nights(run_dir: Path, world: Mapping[str, Any], config_dir: Path, dates: Sequence[str]) -> list[Night]:
    """Start the default stack once and run the three nights on it, in order."""
    from stack.__main__ import DAG_ID, running_stack

    path = worlds.write_world(run_dir.parent / f"{run_dir.name}-world.json", world)
    with running_stack(
        run_dir=run_dir, world=path, config_dir=config_dir, extra_env=dict(NO_SCHEDULED_RUNS), say=log.info
    ) as stack:
        stack.client.unpause(DAG_ID)
        nights = [_ours_night(stack, world, plan, date) for plan, date in zip(NIGHTS, dates, strict=True)]
        settings = stack.airflow.settings
        described = {
            "executor": settings.executor,
            "database": "PostgreSQL" if settings.sql_alchemy_conn else "SQLite",
            "parallelism": str(settings.parallelism),
        }
    for night in nights:
        night.detail["stack"] = described
    return nights


# -- figures ------------------------------------------------------------------------------------------------------
#: Figure key → label and unit, for each night.
ROWS = (
    ("capture_copies", "capture copies (baseline: computed)", ""),
    ("capture_bytes", "bytes copied by capture (baseline: computed)", "B"),
    ("distribution_copies", "distribution copies", ""),
    ("distribution_bytes", "bytes copied by distribution", "B"),
    ("bytes", "bytes copied in all", "B"),
    ("arm_writes", "ARM writes (baseline: distribution only)", ""),
    ("seconds", "wall time of the run (baseline: distribution only)", "s"),
)


def night_goals(world: Mapping[str, Any], labs_doc: Mapping[str, Any]) -> dict[tuple[int, str], str]:
    """Return (night, figure key) → what ours should show: all at first, nothing when quiet, the changed VM alone."""
    paths = worlds.image_paths(world)
    pairs = sum(wanted_by(labs_doc, path) for path in paths)
    rebuilt = next(vm for vm in worlds.factory_lab(world)["vms"] if vm["name"] == REBUILT_VM)
    wanted = wanted_by(labs_doc, rebuilt["tags"]["ImagePath"])
    size = vhd_bytes(world, REBUILT_VM)
    goals = {(1, "capture_copies"): f"= {len(paths)}", (1, "distribution_copies"): f"= {pairs} pairs"}
    goals |= {(2, key): "0" for key in ("capture_copies", "distribution_copies", "bytes", "arm_writes")}
    goals |= {
        (3, "capture_copies"): "= 1",
        (3, "distribution_copies"): f"= {wanted} (labs that want it)",
        (3, "bytes"): f"= {(1 + wanted) * size}",
        (3, "arm_writes"): f"= {wanted}",
    }
    return goals


def night_figures(
    ours: Sequence[Night] | None, baseline: Sequence[Night], goals: Mapping[tuple[int, str], str]
) -> list[Figure]:
    """Return each night's rows (ours beside the baseline), then the bytes of all the nights together."""
    mine = {n.number: n for n in ours or []}
    figures = []
    for plan, base in zip(NIGHTS, baseline, strict=True):
        night = mine.get(plan.number)
        for key, label, unit in ROWS:
            figures.append(
                Figure(
                    f"night{plan.number}_{key}",
                    f"night {plan.number} ({plan.title}): {label}",
                    None if night is None else night.value(key),
                    base.value(key),
                    goals.get((plan.number, key), ""),
                    unit,
                )
            )
    complete = ours is not None and len(mine) == len(NIGHTS)
    figures.append(
        Figure(
            "bytes_all_nights",
            f"bytes copied over the {len(NIGHTS)} nights",
            sum(n.tally.bytes for n in mine.values()) if complete else None,
            sum(n.tally.bytes for n in baseline),
            unit="B",
        )
    )
    return figures


def p7_notes(world: Mapping[str, Any], labs_doc: Mapping[str, Any], settings: BaselineSettings) -> list[str]:
    """What P7's figures need said: what was measured, what was computed, the world and the rebuilt VM."""
    rebuilt = next(vm for vm in worlds.factory_lab(world)["vms"] if vm["name"] == REBUILT_VM)["tags"]["ImagePath"]
    wants = "; ".join(f"{lab['LabName']} {', '.join(lab['ImagePaths'])}" for lab in labs_doc["Labs"])
    return [
        "Measured, ours: every copy the local Azure saw during each night's DAG run (its copy list: count and bytes "
        "moved), split by destination — into the factory catalogue = capture, into a lab's uploads = distribution; "
        "ARM writes (PUT/PATCH/DELETE) from its statistics; wall time from the trigger to the run's end. Three "
        "logical dates one day apart on one stack; nothing else ran between the nights.",
        "Measured, baseline distribution: bench/baseline.py (the original DistributeImages, call for call) on its "
        "own local Azure with the same world, once per night, after the night's catalogue was written with every "
        "image under the night's name — what the original's capture leaves each night, since it re-captures every "
        "VM. The port skips images a lab already has by name, so it copies every image again every night.",
        "Computed, baseline capture: the port implements distribution only, so the original's capture is counted, "
        "not run: one copy per factory VM in a state to be captured (tagged, deallocated, provisioned) of its OS "
        "disk blob, sizes from the local Azure's /state that night. The baseline's ARM writes and wall time cover "
        "its distribution only (its capture's ARM calls and time are not modelled).",
        f"World: one region, {len(labs_doc['Labs'])} labs wanting {wants}; factory disks of 1, 2 and 3 MiB "
        f"(+ 512 B VHD footer). Before night 3 the emulator's control API rebuilt {REBUILT_VM} ({rebuilt}, a new "
        f"OS disk: new id, uniqueId, timeCreated); {wanted_by(labs_doc, rebuilt)} labs want it.",
        f"baseline timings scaled by {COPY_SECONDS:g}/20 (throttle {settings.throttle_seconds:g} s, copy poll "
        f"{settings.copy_poll_seconds:g} s); copies of {COPY_SECONDS:g} s and LROs of {LRO_SECONDS:g} s on both sides.",
    ]


def scenario_p7(*, with_ours: bool = True) -> list[Outcome]:
    """P7: bytes copied per night — first night, nothing changed, one factory VM rebuilt — ours beside the original."""
    world = nights_world()
    labs_doc = nights_labs_json(world)
    dates = night_dates(len(NIGHTS), datetime.now(UTC))
    settings = baseline_settings(labs_doc, jobs=POOL, copy_seconds=COPY_SECONDS, scaled=True)
    pairs = sum(wanted_by(labs_doc, path) for path in worlds.image_paths(world))
    out = Outcome("P7", f"Bytes moved per night, {LABS} labs x {IMAGES} images: first night, a quiet one, one rebuild")
    out.world = {
        **world_facts(LABS, IMAGES, 1, copy_seconds=COPY_SECONDS, lro_seconds=LRO_SECONDS),
        "pairs": pairs,
        "disk_mib": "/".join(str(vm["disk_size_mib"]) for vm in worlds.factory_lab(world)["vms"]),
    }
    out.settings = {
        "pool": POOL,
        "nights": [{**asdict(plan), "logical_date": date} for plan, date in zip(NIGHTS, dates, strict=True)],
        "labs": {lab["LabName"]: lab["ImagePaths"] for lab in labs_doc["Labs"]},
        "baseline": baseline_facts(settings, scaled=True),
        "ours_conf": dict(OURS_CONF),
    }
    log.info("P7 baseline: %d nights …", len(NIGHTS))
    baseline = run_baseline_nights(RUN_DIR / "p7-baseline", world, settings, dates)
    out.baseline = {"nights": [night.digest() for night in baseline]}
    ours: list[Night] | None = None
    if with_ours:
        config_dir = worlds.write_config(RUN_DIR / "p7-config", world, max_concurrent_jobs=POOL, labs_doc=labs_doc)
        ours = try_ours(out, lambda: run_ours_nights(RUN_DIR / "p7-ours", world, config_dir, dates))
        if ours:
            out.ours = {"stack": ours[0].detail.get("stack"), "nights": [night.digest() for night in ours]}
    out.figures = night_figures(ours, baseline, night_goals(world, labs_doc))
    out.notes += p7_notes(world, labs_doc, settings)
    return [out]
