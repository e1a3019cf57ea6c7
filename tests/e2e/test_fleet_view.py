"""The Image Factory view in the real UI, after the demo night: nav bar, the 3 demo labs as the local Azure holds
them, a lab made stale in the world caught up from the view (dry run, then the run), the API refusing strangers.

Headless Debian Chromium under Playwright (tests/e2e/browser.py); one night (the one the session already ran, or
this module's), one catch-up dry run and one catch-up run of a single lab. Screenshots under ``screenshots/``.
It reads QALab's holdings as the demo night left them, so it runs before the e2e modules that change them
(its name sorts it right after test_factory_e2e).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import FrameLocator, Page, expect

from image_factory import imagepaths, versions
from image_factory.catalogue import version_from_name
from image_factory.models import IMAGE_PATH_TAG, VERSION_TAG
from stack.__main__ import DAG_ID, Stack, follow_run, wait_for_scheduled_run
from tests.drills.conftest import dtl_client
from tests.e2e.browser import UI_TIMEOUT_MS, save_screenshot
from tests.e2e.test_factory_e2e import OLD, TARGET_LABS, seed_powershell_version

pytestmark = pytest.mark.e2e

UBUNTU = "Ubuntu/Ubuntu2204.json"
#: The catch-up of a whole lab's dry run and run, in a stack with 4-second copies.
CATCH_UP_MS = 240_000


@pytest.fixture(scope="module")
def night(stack: Stack) -> str:
    """The demo night: the nightly run Airflow schedules on unpause (with an older Ubuntu catalogued before it)."""
    if not any(run.get("run_type") == "scheduled" for run in stack.client.dag_runs(DAG_ID)):
        seed_powershell_version(stack)
        stack.client.unpause(DAG_ID)
    nightly = wait_for_scheduled_run(stack)
    assert nightly, "unpausing the DAG schedules its latest nightly slot"
    assert follow_run(stack, nightly, timeout=600)["state"] == "success"
    return nightly


@pytest.fixture
def freshness(config_dir: Path) -> Iterator[int]:
    """FreshnessDays 1 in the session's factory.json for this test (read by the runs' verify)."""
    factory = config_dir / "factory.json"
    before = factory.read_text(encoding="utf-8")
    factory.write_text(json.dumps({**json.loads(before), "FreshnessDays": 1}, indent=2), encoding="utf-8")
    try:
        yield 1
    finally:
        factory.write_text(before, encoding="utf-8")


def held(state: dict[str, Any]) -> dict[str, dict[str, list[str]]]:
    """Lab → ImagePath → its Succeeded versions, newest first, from the local Azure's /state."""
    out: dict[str, dict[str, list[str]]] = {}
    for lab in state["labs"]:
        paths: dict[str, list[str]] = {}
        for image in lab["images"]:
            tags = image["tags"]
            version = tags.get(VERSION_TAG) or version_from_name(image["name"])
            if image["provisioning_state"] == "Succeeded" and tags.get(IMAGE_PATH_TAG) and version:
                paths.setdefault(imagepaths.normalize(tags[IMAGE_PATH_TAG]), []).append(version)
        out[lab["name"]] = {p: versions.newest_first(vs) for p, vs in paths.items()}
    return out


def view(page: Page, screenshots: Path) -> FrameLocator:
    """Open the Image Factory page from the nav bar; return the embedded view, loaded (else a screenshot, and why)."""
    page.goto("/")
    page.get_by_role("link", name="Image Factory").or_(page.get_by_role("button", name="Image Factory")).first.click()
    frame = page.frame_locator("iframe")
    try:
        expect(frame.locator("body[data-loaded=true]")).to_have_count(1, timeout=UI_TIMEOUT_MS)
    except AssertionError as exc:
        screenshots.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=screenshots / "fleet-view-not-loaded.png")
        said = frame.locator("#error").all_inner_texts() if page.locator("iframe").count() else ["no iframe"]
        raise AssertionError(f"the view did not load at {page.url}: {said}") from exc
    return frame


def cell(frame: FrameLocator, lab: str, path: str) -> Any:
    return frame.locator(f'td.cell[data-lab="{lab}"][data-path="{path}"]')


def test_the_view_shows_the_labs_as_azure_holds_them_and_catches_up_a_stale_lab(
    stack: Stack, page: Page, screenshots: Path, night: str, freshness: int
) -> None:
    base = stack.airflow.base_url
    assert httpx.get(f"{base}/image-factory/api/fleet", timeout=30).status_code == 401
    forged = httpx.get(f"{base}/image-factory/api/fleet", headers={"Authorization": "Bearer x"}, timeout=30)
    assert forged.status_code == 403

    frame = view(page, screenshots)
    holdings = held(stack.azure.state())
    for lab in TARGET_LABS:
        for path, found in holdings[lab].items():
            shown = cell(frame, lab, path)
            expect(shown).to_have_attribute("data-state", "current")
            expect(shown).to_contain_text(found[0])
    save_screenshot(page.locator("iframe"), screenshots / "fleet-view.png")

    # An administrator deletes QALab's newest Ubuntu: it holds only the one catalogued two days ago.
    assert holdings["QALab"][UBUNTU][-1] == OLD.isoformat(), "the demo night gave QALab the older Ubuntu too"
    qalab = next(lab for lab in stack.azure.state()["labs"] if lab["name"] == "QALab")
    newest = next(
        image["name"]
        for image in qalab["images"]
        if image["tags"].get(VERSION_TAG) == holdings["QALab"][UBUNTU][0]
        and imagepaths.key(image["tags"].get(IMAGE_PATH_TAG, "")) == imagepaths.key(UBUNTU)
    )
    with dtl_client(stack, qalab["subscription_id"]) as client:
        client.custom_images.begin_delete(qalab["resource_group"], "QALab", newest).result()

    # Catch up this lab: the dry run re-reads QALab (stale now), then the run brings the newest back.
    frame.locator('button[data-catch-up="QALab"]').click()
    expect(frame.locator("#catch-up")).to_contain_text(f"it would distribute: QALab / {newest}", timeout=CATCH_UP_MS)
    expect(cell(frame, "QALab", UBUNTU)).to_have_attribute("data-state", "stale")
    expect(cell(frame, "QALab", UBUNTU)).to_contain_text(OLD.isoformat())
    save_screenshot(page.locator("iframe"), screenshots / "fleet-view-stale.png")

    frame.locator("#catch-up-run").click()
    expect(frame.locator("#catch-up")).to_contain_text("started", timeout=UI_TIMEOUT_MS)
    runs = [r for r in stack.client.dag_runs(DAG_ID) if r.get("conf", {}).get("dry_run") is False]
    catch_up = max(runs, key=lambda r: str(r.get("run_after")))
    assert catch_up["conf"]["labs"] == ["QALab"]
    assert follow_run(stack, catch_up["dag_run_id"], timeout=600)["state"] == "success"
    frame = view(page, screenshots)
    expect(cell(frame, "QALab", UBUNTU)).to_have_attribute("data-state", "current")
    assert newest in held_names(stack, "QALab")


def held_names(stack: Stack, lab_name: str) -> set[str]:
    return {image["name"] for lab in stack.azure.state()["labs"] if lab["name"] == lab_name for image in lab["images"]}
