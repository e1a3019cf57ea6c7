"""One look at the real UI: headless Chromium opens the Trigger dialog and finds every param of the form.

Playwright drives Debian's Chromium (tests/e2e/browser.py); the page logs in the way the UI does, with the API token
in the ``_token`` cookie. A screenshot of the dialog is left under pytest's base temp, in ``screenshots/``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from stack.__main__ import DAG_ID, Stack
from tests.e2e.browser import UI_TIMEOUT_MS, save_screenshot

pytestmark = pytest.mark.e2e


def test_trigger_dialog_shows_the_params_form(stack: Stack, page: Page, screenshots: Path) -> None:
    details = stack.client.request("GET", f"/dags/{DAG_ID}/details")
    params = details["params"]
    titles = [p.get("schema", {}).get("title") or name for name, p in params.items()]
    assert {"labs", "image_paths", "capture", "dry_run"} <= set(params)

    page.goto(f"/dags/{DAG_ID}")
    page.get_by_role("button", name="Trigger Dag", exact=True).click()
    # The page holds other (hidden) dialogs, e.g. the grid's options menu: read the one titled for the trigger.
    dialog = page.get_by_role("dialog").filter(has_text="Trigger Dag")
    expect(dialog).to_contain_text(f"Trigger Dag - {DAG_ID}", timeout=UI_TIMEOUT_MS)
    expect(dialog).to_contain_text("Run Parameters", timeout=UI_TIMEOUT_MS)
    for title in titles:
        # innerText: only what the dialog shows, not text in collapsed or hidden parts.
        expect(dialog, f"trigger form lacks {title!r}").to_contain_text(title, use_inner_text=True)

    save_screenshot(dialog, screenshots / "trigger-dialog.png")
