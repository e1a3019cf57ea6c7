"""The factory's fixed settings and those read from the environment (factory.json is ``configuration``'s)."""

from __future__ import annotations

import os
from pathlib import Path

#: The DAG's id.
DAG_ID = "image_factory"
#: The repository root (``plugins/image_factory/settings.py`` → three levels up).
REPO_ROOT = Path(__file__).resolve().parents[2]
#: Env var naming the configuration folder (labs.json, factory.json, GoldenImages/).
CONFIG_DIR_ENV = "IMAGE_FACTORY_CONFIG_DIR"
#: Env var naming the folder verify writes its JSON report into.
REPORT_DIR_ENV = "IMAGE_FACTORY_REPORT_DIR"
#: Default seconds between two polls of a copy or a custom image (a run's ``copy_poll_seconds`` param wins).
DEFAULT_POLL_SECONDS = 15
#: The shortest time from a deferral to the trigger's event. Airflow 3.3 can fail a deferred task whose trigger
#: fires before the scheduler has drained the executor's "success" event of the worker that deferred
#: (apache/airflow#67287, #72716): the task is marked up_for_retry. Copies and image creations take minutes in
#: Azure, so holding a finished trigger's event this long costs nothing there and removes the race locally.
MIN_TRIGGER_SECONDS = 10.0
#: Retries of a mapped distribute task (a pending copy is adopted, so a retry never restarts it).
DISTRIBUTE_RETRIES = 3
#: Owner shown in the UI.
OWNER = "image-factory"
#: DAG tags.
TAGS = ("image-factory", "azure", "devtest-labs")


def config_dir() -> Path:
    """Return the configuration folder: ``$IMAGE_FACTORY_CONFIG_DIR`` or ``<repo>/Configuration``."""
    value = os.environ.get(CONFIG_DIR_ENV, "").strip()
    return Path(value) if value else REPO_ROOT / "Configuration"


def report_dir() -> Path:
    """Return the folder verify writes reports into: ``$IMAGE_FACTORY_REPORT_DIR`` or ``$AIRFLOW_HOME/reports``."""
    value = os.environ.get(REPORT_DIR_ENV, "").strip()
    if value:
        return Path(value)
    home = os.environ.get("AIRFLOW_HOME", "").strip() or str(Path.home() / "airflow")
    return Path(home) / "reports" / "image_factory"
