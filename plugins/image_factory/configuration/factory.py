"""factory.json: the factory lab and the run settings, one model (FactorySettings) and one loader for them.

The DAG file reads it at parse time through :func:`parse_time_settings` and every task at run time through
:func:`load_factory_settings`: the same reader and the same checks, so the schedule and the pool the DAG is
parsed with are the ones its tasks run with.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from croniter import croniter

from image_factory.configuration.findings import Collector
from image_factory.configuration.reader import MAX_SETTINGS_BYTES, file_or_found, find_settings_file, read_json
from image_factory.configuration.scanner import JsonPath
from image_factory.configuration.schema import FACTORY_SCHEMA, canonical_keys, check_schema
from image_factory.exceptions import ConfigurationError
from image_factory.notifications.settings import notification_problems
from image_factory.pacing import ArmBudget
from image_factory.settings import config_dir

log = logging.getLogger(__name__)

FACTORY_FILE_NAME = "factory.json"


@dataclass(frozen=True)
class FactorySettings:
    """``factory.json``: what the PowerShell scripts took as build parameters.

    The defaults are the ones ``schemas/factory.schema.json`` documents (a test keeps the two equal).
    """

    subscription_id: str
    resource_group: str
    lab_name: str
    max_concurrent_jobs: int = 20
    images_to_save: int = 2
    schedule: str = "0 2 * * *"
    pool: str = "image_distribution"
    container: str = "imagefactoryvhds"
    arm_conn_id: str = "image_factory_arm"
    storage_conn_id: str = "image_factory_storage"
    copy_timeout_minutes: int = 240
    image_timeout_minutes: int = 60
    read_sas_hours: int = 4
    disk_access_seconds: int = 36000
    adopt_powershell_images: bool = False
    #: The fleet view's freshness target: a lab's newest version older than this many days is stale (0: none).
    freshness_days: int = 0
    arm_reads_per_second: int = 20
    arm_writes_per_second: int = 8
    arm_deletes_per_second: int = 8
    arm_burst: int = 100
    arm_concurrency: int = 8

    @property
    def arm_budget(self) -> ArmBudget:
        """``ArmBudget``: the ARM requests per second the factory allows itself, and its concurrent lab reads."""
        return ArmBudget(
            reads_per_second=self.arm_reads_per_second,
            writes_per_second=self.arm_writes_per_second,
            deletes_per_second=self.arm_deletes_per_second,
            burst=self.arm_burst,
            concurrency=self.arm_concurrency,
        )

    #: The ``Notifications`` object as written (read by ``image_factory.notifications.settings``); None: absent.
    notifications: Mapping[str, Any] | None = None
    #: Build (``Build`` in factory.json): make the factory VMs from GoldenImages/ before capture (off by default,
    #: so a factory whose VMs are built by hand keeps working).
    build_enabled: bool = False
    build_vm_size: str = "Standard_D2s_v3"
    build_admin_user: str = "adminuser"
    #: An Airflow connection whose password is the build VMs' admin password; None: one generated per VM.
    build_password_conn_id: str | None = None
    build_deploy_minutes: int = 180
    build_stop_minutes: int = 60


#: factory.json paths → FactorySettings fields.
FACTORY_FIELDS: dict[JsonPath, str] = {
    ("Factory", "SubscriptionId"): "subscription_id",
    ("Factory", "ResourceGroup"): "resource_group",
    ("Factory", "LabName"): "lab_name",
    ("MaxConcurrentJobs",): "max_concurrent_jobs",
    ("ImagesToSave",): "images_to_save",
    ("Schedule",): "schedule",
    ("Pool",): "pool",
    ("Container",): "container",
    ("Connections", "Arm"): "arm_conn_id",
    ("Connections", "FactoryStorage"): "storage_conn_id",
    ("Timeouts", "CopyMinutes"): "copy_timeout_minutes",
    ("Timeouts", "ImageMinutes"): "image_timeout_minutes",
    ("ReadSasHours",): "read_sas_hours",
    ("DiskAccessSeconds",): "disk_access_seconds",
    ("AdoptPowerShellImages",): "adopt_powershell_images",
    ("FreshnessDays",): "freshness_days",
    ("ArmBudget", "ReadsPerSecond"): "arm_reads_per_second",
    ("ArmBudget", "WritesPerSecond"): "arm_writes_per_second",
    ("ArmBudget", "DeletesPerSecond"): "arm_deletes_per_second",
    ("ArmBudget", "Burst"): "arm_burst",
    ("ArmBudget", "Concurrency"): "arm_concurrency",
    ("Notifications",): "notifications",
    ("Build", "Enabled"): "build_enabled",
    ("Build", "VmSize"): "build_vm_size",
    ("Build", "AdminUser"): "build_admin_user",
    ("Build", "PasswordConnection"): "build_password_conn_id",
    ("Build", "DeployMinutes"): "build_deploy_minutes",
    ("Build", "StopMinutes"): "build_stop_minutes",
}


def find_factory_file(config_dir: str | os.PathLike[str]) -> Path:
    """Return the factory.json of a configuration folder (any casing)."""
    return find_settings_file(
        config_dir,
        (FACTORY_FILE_NAME,),
        label=FACTORY_FILE_NAME,
        purpose="it names the factory lab and the run settings",
    )


def _valid_cron(expr: str) -> bool:
    expr = expr.strip()
    if not expr.startswith("@") and len(expr.split()) != 5:
        return False
    return bool(croniter.is_valid(expr))


def _settings_from_doc(doc: dict[str, Any]) -> FactorySettings:
    values: dict[str, Any] = {}
    for path, name in FACTORY_FIELDS.items():
        node: Any = doc
        for step in path:
            node = node.get(step) if isinstance(node, dict) else None
        if node is not None:
            values[name] = int(node) if isinstance(node, float) else node
    return FactorySettings(**values)


def check_factory(factory_file: Path) -> tuple[Collector, FactorySettings | None]:
    """Check factory.json; return its findings and its settings (None when it has errors)."""
    col = Collector(factory_file)
    ok, doc = read_json(col, MAX_SETTINGS_BYTES)
    if not ok:
        return col, None
    doc = canonical_keys(doc, FACTORY_SCHEMA)
    schema_ok = check_schema(col, doc, FACTORY_SCHEMA)
    schedule = doc.get("Schedule") if isinstance(doc, dict) else None
    if isinstance(schedule, str) and not _valid_cron(schedule):
        col.add(("Schedule",), f"{schedule!r} is not a valid five-field cron expression (e.g. '0 2 * * *')")
    if not schema_ok or col.errors:
        return col, None
    for path, message in notification_problems(doc.get("Notifications")):
        col.add(path, message)
    if col.errors:
        return col, None
    settings = _settings_from_doc(doc)
    _check_access_outlives_copies(col, settings)
    return (col, None) if col.errors else (col, settings)


def _check_access_outlives_copies(col: Collector, settings: FactorySettings) -> None:
    """Refuse a read access (disk SAS, catalogue SAS) that could end before the copy it serves may end."""
    copy_seconds = settings.copy_timeout_minutes * 60
    copy_limit = f"a copy may take Timeouts.CopyMinutes = {settings.copy_timeout_minutes} min"
    if settings.disk_access_seconds < copy_seconds:
        col.add(
            ("DiskAccessSeconds",),
            f"{settings.disk_access_seconds} s is shorter than a capture's copy may run ({copy_limit}): the disk's"
            f" read access would end mid-copy; set DiskAccessSeconds to at least {copy_seconds}"
            " (the PowerShell factory asked for 36000, 10 hours)",
        )
    if settings.read_sas_hours * 3600 < copy_seconds:
        col.add(
            ("ReadSasHours",),
            f"{settings.read_sas_hours} h is shorter than a distribution's copy may run ({copy_limit}): the"
            f" catalogue VHD's read SAS would end mid-copy; set ReadSasHours to at least {-(-copy_seconds // 3600)}",
        )


def load_factory_settings(path_or_dir: str | os.PathLike[str]) -> FactorySettings:
    """Load factory.json (a file, or the folder holding it); raise ConfigurationError if invalid."""
    path = file_or_found(path_or_dir, find_factory_file)
    col, settings = check_factory(path)
    if col.errors or settings is None:
        raise ConfigurationError(f"{path} is invalid", [str(f) for f in col.errors])
    return settings


def parse_time_settings(folder: str | os.PathLike[str] | None = None) -> FactorySettings:
    """Return factory.json's settings for the DAG file, read as the tasks read them; never raise.

    A local read (no network), checked like :func:`load_factory_settings`. When the file is missing or invalid
    the DAG still imports with the defaults (a warning is logged) and its tasks fail at run time, naming what to
    fix; the factory lab's fields are then empty strings, as nothing at parse time uses them.
    """
    folder = config_dir() if folder is None else folder
    try:
        return load_factory_settings(folder)
    except Exception as exc:  # whatever goes wrong, the DAG must import: the tasks report it at run time
        log.warning("Using the default schedule and pool: factory.json in %s cannot be used: %s", folder, exc)
        return FactorySettings(subscription_id="", resource_group="", lab_name="")
