"""Headless Chromium for the UI checks, driven by Playwright.

Playwright drives Debian's ``chromium`` package through ``executable_path``: its own browser download cannot reach
this network, and CI installs the Debian package (``make browser``). The fixtures in conftest.py build on these.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from playwright.sync_api import Browser, BrowserContext, Locator, Playwright, ViewportSize

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

#: No sandbox (CI runs as root), no GPU, and nothing that would reach out to the internet on its own.
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: Tall enough for the whole Trigger dialog (~1.6k px with the factory's params): a screenshot is clipped to it.
VIEWPORT: ViewportSize = {"width": 1400, "height": 1800}

#: How long a UI check waits for the page (ms): the first load of the UI after start-up takes a few seconds.
UI_TIMEOUT_MS = 30_000

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def launch_chromium(playwright: Playwright) -> Browser:
    """Start Debian's Chromium headless; fail with what to install when it is missing."""
    if CHROMIUM is None:
        raise RuntimeError("chromium is not installed: `make browser` installs Debian's chromium package")
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)


def logged_in_context(browser: Browser, base_url: str, token: str) -> BrowserContext:
    """A fresh browser context logged in the way the Airflow UI does: the API token in the ``_token`` cookie."""
    context = browser.new_context(base_url=base_url, viewport=VIEWPORT)
    context.set_default_timeout(UI_TIMEOUT_MS)
    context.add_cookies([{"name": "_token", "value": token, "url": base_url}])
    return context


def save_screenshot(target: Locator, path: Path) -> Path:
    """Screenshot one element to ``path`` and check that a non-empty PNG was written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    target.screenshot(path=path)
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE) and len(data) > len(PNG_SIGNATURE), f"{path} is not a PNG"
    return path
