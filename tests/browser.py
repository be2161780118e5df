"""A small headless-Chromium driver over the DevTools protocol, for the report's browser tests.

Uses only the ``websockets`` sync client: Chromium is started with
``--remote-debugging-port=0``, its port is read from ``DevToolsActivePort`` in a private
profile folder, and pages are driven through flattened target sessions on the one browser
socket. Script exceptions, console errors and JavaScript dialogs (which are dismissed) are
recorded per page so tests can assert there were none.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import connect

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--remote-debugging-port=0",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--mute-audio",
    "--window-size=1280,900",
)


def find_chromium() -> str | None:
    """Path of a Chromium binary: ``$NRRCAST_CHROMIUM`` or the first one on PATH."""
    env = os.environ.get("NRRCAST_CHROMIUM")
    if env:
        return env if Path(env).exists() else shutil.which(env)
    return next((p for p in map(shutil.which, CANDIDATES) if p), None)


BROWSER_MARKS = [
    pytest.mark.slow,
    pytest.mark.xdist_group("browser"),  # one Chromium at a time on 2 cores
    pytest.mark.skipif(
        find_chromium() is None, reason="chromium not installed (run `make browser`)"
    ),
]
"""The marks of every browser test module: ``pytestmark = BROWSER_MARKS``."""


class Browser:
    """One headless Chromium process and its DevTools socket; use as a context manager."""

    def __init__(self, executable: str | None = None, timeout: float = 20.0) -> None:
        self.executable = executable or find_chromium()
        if not self.executable:
            raise FileNotFoundError("chromium not found (install it with `make browser`)")
        self.timeout = timeout
        self._ids = itertools.count(1)
        self._events: dict[str | None, list[dict[str, Any]]] = {}
        self._pages: dict[str, Page] = {}
        self._profile = tempfile.mkdtemp(prefix="nrrcast-chromium-")
        self._proc = subprocess.Popen(
            [self.executable, *FLAGS, f"--user-data-dir={self._profile}", "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            self._ws = connect(self._endpoint(), max_size=None, open_timeout=timeout)
        except BaseException:
            self.close()
            raise

    def _endpoint(self) -> str:
        port_file = Path(self._profile) / "DevToolsActivePort"
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"chromium exited with code {self._proc.returncode}")
            if port_file.exists():
                lines = port_file.read_text().split()
                if len(lines) >= 2:
                    return f"ws://127.0.0.1:{lines[0]}{lines[1]}"
            time.sleep(0.05)
        raise TimeoutError(f"chromium wrote no DevToolsActivePort within {self.timeout} s")

    # -- protocol ---------------------------------------------------------------
    def call(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        """Send one command and return its result, recording events that arrive meanwhile."""
        msg_id = next(self._ids)
        msg: dict[str, Any] = {"id": msg_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        self._ws.send(json.dumps(msg))
        deadline = time.monotonic() + self.timeout
        while True:
            reply = self._receive(deadline, method)
            if reply.get("id") == msg_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})

    def wait_event(self, name: str, session: str | None, timeout: float | None = None) -> dict:
        """Block until event ``name`` arrives for ``session`` (or was already recorded)."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            events = self._events.setdefault(session, [])
            for i, ev in enumerate(events):
                if ev["method"] == name:
                    return events.pop(i)
            self._receive(deadline, name)

    def _receive(self, deadline: float, waiting_for: str) -> dict:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"no answer to {waiting_for} within {self.timeout} s")
        msg = json.loads(self._ws.recv(timeout=remaining))
        if "method" in msg:
            session = msg.get("sessionId")
            page = self._pages.get(session or "")
            if page is not None:
                page._record(msg)
            self._events.setdefault(session, []).append(msg)
        return msg

    # -- pages ------------------------------------------------------------------
    def new_page(self, width: int = 1280, height: int = 900) -> Page:
        """Open a blank tab with Page, Runtime and Log events on."""
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        page = Page(self, target, session)
        self._pages[session] = page
        for domain in ("Page.enable", "Runtime.enable", "Log.enable"):
            self.call(domain, session=session)
        self.call(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
            session=session,
        )
        return page

    def close(self) -> None:
        ws = getattr(self, "_ws", None)
        if ws is not None:
            with contextlib.suppress(Exception):
                ws.close()
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=5)
        shutil.rmtree(self._profile, ignore_errors=True)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Page:
    """One tab: navigate, evaluate JavaScript, take screenshots; records what went wrong."""

    def __init__(self, browser: Browser, target: str, session: str) -> None:
        self.browser, self.target, self.session = browser, target, session
        self.exceptions: list[str] = []
        self.console_errors: list[str] = []
        self.dialogs: list[str] = []

    def _record(self, msg: dict) -> None:
        method, params = msg["method"], msg.get("params", {})
        if method == "Runtime.exceptionThrown":
            d = params.get("exceptionDetails", {})
            self.exceptions.append(d.get("exception", {}).get("description") or d.get("text", "?"))
        elif method == "Runtime.consoleAPICalled" and params.get("type") in {"error", "assert"}:
            self.console_errors.append(
                " ".join(str(a.get("value", a.get("description"))) for a in params.get("args", []))
            )
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            self.console_errors.append(params["entry"].get("text", "?"))
        elif method == "Page.javascriptDialogOpening":
            self.dialogs.append(f"{params.get('type')}: {params.get('message')}")
            self.browser._ws.send(
                json.dumps(
                    {
                        "id": next(self.browser._ids),
                        "method": "Page.handleJavaScriptDialog",
                        "params": {"accept": False},
                        "sessionId": self.session,
                    }
                )
            )

    def call(self, method: str, params: dict | None = None) -> dict:
        return self.browser.call(method, params, session=self.session)

    def goto(self, url: str) -> None:
        """Load ``url`` and wait for its load event."""
        self.browser._events.pop(self.session, None)
        self.call("Page.navigate", {"url": url})
        self.browser.wait_event("Page.loadEventFired", self.session)

    def evaluate(self, expression: str, await_promise: bool = False) -> Any:
        """Value of a JavaScript expression (JSON-serializable); raises on a thrown error."""
        res = self.call(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": await_promise},
        )
        if "exceptionDetails" in res:
            d = res["exceptionDetails"]
            msg = d.get("exception", {}).get("description") or d.get("text")
            raise AssertionError(f"{msg} (page exceptions so far: {self.exceptions})")
        return res.get("result", {}).get("value")

    def set_hash(self, fragment: str) -> None:
        """Change ``location.hash`` and wait until the page's hashchange handler ran."""
        self.evaluate(
            "new Promise(r => { addEventListener('hashchange', () => setTimeout(r, 0), {once: true});"
            f" location.hash = {json.dumps(fragment)}; }})",
            await_promise=True,
        )

    def screenshot(self, path: str | Path, full_page: bool = True) -> Path:
        """Save a PNG of the page (the whole scrollable height when ``full_page``)."""
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            size = self.call("Page.getLayoutMetrics")["cssContentSize"]
            params |= {
                "captureBeyondViewport": True,
                "clip": {
                    "x": 0,
                    "y": 0,
                    "width": size["width"],
                    "height": size["height"],
                    "scale": 1,
                },
            }
        data = self.call("Page.captureScreenshot", params)["data"]
        path = Path(path)
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        self.browser.call("Target.closeTarget", {"targetId": self.target})
        self.browser._pages.pop(self.session, None)
