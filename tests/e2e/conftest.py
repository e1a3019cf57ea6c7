"""End-to-end fixtures: the local Azure and the four Airflow 3 processes, started once per session."""

from __future__ import annotations

import contextlib
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.storage.blob import BlobServiceClient, ContainerClient
from playwright.sync_api import Browser, Page, sync_playwright

from stack.__main__ import DAG_ID, Stack, follow_run, running_stack
from tests.e2e.browser import launch_chromium, logged_in_context

REPO = Path(__file__).resolve().parents[2]
DEMO_WORLD = REPO / "emulator" / "worlds" / "demo.json"

#: An extra lab that exists in the e2e world but not (yet) in labs.json: the backfill test subscribes it.
EXTRA_LAB = {
    "name": "StagingLab",
    "subscription": "11111111-1111-4111-8111-111111111111",
    "resource_group": "rg-staging",
    "location": "westeurope",
    "storage_account": "staginglabstore",
}

pytestmark = pytest.mark.e2e


def e2e_world(tmp: Path) -> Path:
    """The demo world plus one lab that labs.json does not name yet."""
    world = json.loads(DEMO_WORLD.read_text())
    world["labs"].append(dict(EXTRA_LAB))
    sub = next(s for s in world["subscriptions"] if s["id"] == EXTRA_LAB["subscription"])
    sub["resource_groups"].append({"name": EXTRA_LAB["resource_group"]})
    path = tmp / "world.json"
    path.write_text(json.dumps(world, indent=2))
    return path


def copy_configuration(tmp_path_factory: pytest.TempPathFactory, name: str) -> Path:
    """A copy of the repo's Configuration/ that a test may edit (the DAG reads it at run time)."""
    target = tmp_path_factory.mktemp(name) / "Configuration"
    shutil.copytree(REPO / "Configuration", target)
    return target


def e2e_stack(run_dir: Path, world: Path, config_dir: Path) -> contextlib.AbstractContextManager[Stack]:
    """The default stack (LocalExecutor on PostgreSQL) with short emulator copies, quiet."""
    return running_stack(
        run_dir=run_dir / "run",
        world=world,
        config_dir=config_dir,
        emulator_config={"copy_seconds": 4, "lro_seconds": 1},
        say=lambda *_: None,
    )


@pytest.fixture(scope="session")
def config_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_configuration(tmp_path_factory, "config")


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory, config_dir: Path) -> Iterator[Stack]:
    run_dir = tmp_path_factory.mktemp("stack")
    with e2e_stack(run_dir, e2e_world(run_dir), config_dir) as s:
        yield s


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless Debian Chromium under Playwright, one per test module."""
    with sync_playwright() as playwright:
        chromium = launch_chromium(playwright)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(stack: Stack, browser: Browser) -> Iterator[Page]:
    """A page on the stack's Airflow UI, logged in as the stack's admin; relative URLs go to the UI."""
    context = logged_in_context(browser, stack.airflow.base_url, stack.client.token)
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the UI tests leave their screenshots: one folder under pytest's base temp (``--basetemp``)."""
    return tmp_path_factory.getbasetemp() / "screenshots"


def run_to_end(stack: Stack, conf: dict[str, Any] | None = None, logical_date: str | None = None) -> dict[str, Any]:
    """Trigger image_factory through the REST API as the UI does and wait for it to finish."""
    run_id = stack.client.trigger(DAG_ID, conf=conf or {}, logical_date=logical_date)
    return follow_run(stack, run_id, timeout=600)


def lab_images(state: dict[str, Any]) -> dict[str, dict[str, dict[str, Any]]]:
    """Lab name -> image name -> image, from the emulator's /state."""
    labs: dict[str, dict[str, dict[str, Any]]] = {}
    for lab in state["labs"]:
        labs[lab["name"]] = {img["name"]: img for img in lab.get("custom_images", lab.get("images", []))}
    return labs


def uploads_blobs(state: dict[str, Any]) -> list[str]:
    """Every blob left in any lab's ``uploads`` container (there must be none after a run)."""
    left = []
    for account, containers in state["blobs"].items():
        for blob in containers.get("uploads", []):
            left.append(f"{account}/uploads/{blob['name']}")
    return left


def catalogue_container(stack: Stack) -> ContainerClient:
    """The factory catalogue's container, reached with the factory storage account's key (as the tests seed it)."""
    account = stack.azure.info["storage"]["factorystore"]
    service = BlobServiceClient(
        account["blob_endpoint"],
        credential={"account_name": "factorystore", "account_key": account["account_key"]},
        connection_verify=stack.azure.ca_bundle,
    )
    return service.get_container_client("imagefactoryvhds")
