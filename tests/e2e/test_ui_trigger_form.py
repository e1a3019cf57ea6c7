"""One look at the real UI: headless Chromium opens the Trigger dialog and finds every param of the form.

Chromium (Debian's package) is driven over the DevTools protocol with the ``websockets`` client Airflow already
depends on; the session logs in the way the UI does, with the API token in the ``_token`` cookie.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.sync.client import ClientConnection, connect

from stack.__main__ import DAG_ID, Stack

pytestmark = pytest.mark.e2e

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--remote-debugging-port=0",
    "--window-size=1400,1000",
]


class DevTools:
    """A minimal Chrome DevTools Protocol session on one page."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self._id = 0

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self._id += 1
        self.ws.send(json.dumps({"id": self._id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv(timeout=30))
            if msg.get("id") == self._id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return dict(msg.get("result", {}))

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        return result.get("result", {}).get("value")

    def wait_for(self, expression: str, timeout: float = 30) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(0.5)
        raise TimeoutError(f"page never satisfied: {expression}")


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[DevTools]:
    if CHROMIUM is None:
        pytest.fail("chromium is not installed: `make test` installs Debian's chromium package")
    profile = tmp_path / "profile"
    proc = subprocess.Popen(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not port_file.exists() or not port_file.read_text().strip():
            assert time.monotonic() < deadline, "chromium did not open its DevTools port"
            time.sleep(0.2)
        port = int(port_file.read_text().split()[0])
        pages = httpx.get(f"http://127.0.0.1:{port}/json/list", timeout=10).json()
        page = next(p for p in pages if p.get("type") == "page")
        with connect(page["webSocketDebuggerUrl"], max_size=None) as ws:
            yield DevTools(ws)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_trigger_dialog_shows_the_params_form(stack: Stack, browser: DevTools) -> None:
    details = stack.client.request("GET", f"/dags/{DAG_ID}/details")
    params = details["params"]
    titles = [p.get("schema", {}).get("title") or name for name, p in params.items()]
    assert {"labs", "image_paths", "capture", "dry_run"} <= set(params)

    base = stack.airflow.base_url
    browser.call("Network.enable")
    browser.call("Network.setCookie", name="_token", value=stack.client.token, url=base, path="/")
    browser.call("Page.enable")
    browser.call("Page.navigate", url=f"{base}/dags/{DAG_ID}")
    trigger_button = "document.querySelector('button[aria-label=\"Trigger Dag\"]')"
    browser.wait_for(f"!!{trigger_button}", timeout=60)
    browser.evaluate(f"{trigger_button}.click()")
    # The page holds other (hidden) dialogs, e.g. the grid's options menu: read the one titled for the trigger.
    dialog = "Array.from(document.querySelectorAll('[role=dialog]')).find(d => d.innerText.includes('Trigger Dag'))"
    text = browser.wait_for(
        f"(() => {{ const d = {dialog}; return d && d.innerText.includes('Run Parameters') ? d.innerText : null }})()"
    )
    assert f"Trigger Dag - {DAG_ID}" in text
    missing = [t for t in titles if t not in text]
    assert not missing, f"trigger form lacks {missing}; dialog said:\n{text[:2000]}"
