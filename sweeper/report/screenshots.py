"""Headless Chromium for pictures and checks of pages: the HTML report and the MLflow UI.

Used by scripts/mlflow_screenshots (the README's pictures) and by the tests that
look at those pages the way a user's browser does. Chromium is a system package
(scripts/setup installs it); `find_chromium()` says when it is missing.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
# Chromium's own complaints in a container (no D-Bus, no GPU) are not the page's.
CONSOLE = re.compile(
    r"CONSOLE\(\d+\)\]? ?\"(?P<message>.*)\", source: (?P<source>.*)|"
    r":CONSOLE:\d+\] \"(?P<message2>.*)\", source: (?P<source2>.*)"
)


def find_chromium() -> str | None:
    explicit = os.environ.get("SWEEPER_CHROMIUM")
    if explicit:
        return explicit if Path(explicit).exists() else None
    return next((found for found in map(shutil.which, NAMES) if found), None)


def _run(
    url: str, extra: list[str], *, timeout_s: float, virtual_time_ms: int | None
) -> subprocess.CompletedProcess:
    chromium = find_chromium()
    if chromium is None:
        raise FileNotFoundError(
            "no Chromium found: install it (scripts/setup, or apt-get install chromium) "
            "or point SWEEPER_CHROMIUM at the binary"
        )
    with tempfile.TemporaryDirectory(prefix="sweeper-chromium-") as profile:
        argv = [
            chromium,
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--no-first-run",
            "--disable-extensions",
            f"--user-data-dir={profile}",
            "--enable-logging=stderr",
            "--v=0",
            *extra,
        ]
        if virtual_time_ms:
            argv.append(f"--virtual-time-budget={virtual_time_ms}")
        return subprocess.run(argv + [url], capture_output=True, text=True, timeout=timeout_s)


def console_messages(stderr: str) -> list[str]:
    """The page's console messages (JavaScript errors included) from Chromium's stderr log."""
    out = []
    for match in CONSOLE.finditer(stderr):
        out.append(match.group("message") or match.group("message2") or "")
    return out


def screenshot(
    url: str,
    path: Path | str,
    *,
    width: int = 1400,
    height: int = 2000,
    timeout_s: float = 120.0,
    virtual_time_ms: int | None = None,
) -> list[str]:
    """PNG of the page at `path`; returns its console messages."""
    path = Path(path).resolve()
    done = _run(
        url,
        [f"--screenshot={path}", f"--window-size={width},{height}"],
        timeout_s=timeout_s,
        virtual_time_ms=virtual_time_ms,
    )
    if not path.is_file():
        raise RuntimeError(
            f"Chromium made no screenshot of {url} (exit {done.returncode}): {done.stderr[-1500:]}"
        )
    return console_messages(done.stderr)


def dump_dom(
    url: str,
    *,
    timeout_s: float = 120.0,
    virtual_time_ms: int | None = None,
    width: int = 1400,
    height: int = 2000,
) -> tuple[str, list[str]]:
    """(the DOM after scripts ran, the console messages)."""
    done = _run(
        url,
        ["--dump-dom", f"--window-size={width},{height}"],
        timeout_s=timeout_s,
        virtual_time_ms=virtual_time_ms,
    )
    return done.stdout, console_messages(done.stderr)


class DevToolsPage:
    """One headless Chromium page driven over the DevTools protocol, for pages that need a click.

    The MLflow runs table nests trial runs under their sweep's collapsed parent; a
    one-shot `--screenshot` cannot open it. aiohttp (a dependency of ray[default])
    speaks the protocol's websocket.
    """

    def __init__(self, *, width: int = 1600, height: int = 1000, timeout_s: float = 60.0):
        self.width, self.height, self.timeout_s = width, height, timeout_s
        self.console: list[str] = []

    def __enter__(self) -> DevToolsPage:
        import asyncio
        import time

        chromium = find_chromium()
        if chromium is None:
            raise FileNotFoundError("no Chromium found: install it (scripts/setup) or set SWEEPER_CHROMIUM")
        self._profile = tempfile.TemporaryDirectory(prefix="sweeper-chromium-")
        self._proc = subprocess.Popen(
            [
                chromium,
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
                "--no-first-run",
                "--remote-debugging-port=0",
                f"--user-data-dir={self._profile.name}",
                f"--window-size={self.width},{self.height}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        port_file = Path(self._profile.name) / "DevToolsActivePort"
        deadline = time.monotonic() + self.timeout_s
        while not (port_file.is_file() and port_file.read_text().strip()):
            if time.monotonic() > deadline or self._proc.poll() is not None:
                self.__exit__()
                raise RuntimeError("headless Chromium did not open its DevTools port")
            time.sleep(0.2)
        self.port = int(port_file.read_text().split()[0])
        self._loop = asyncio.new_event_loop()
        self._loop.run_until_complete(self._connect())
        return self

    async def _connect(self) -> None:
        import aiohttp

        self._session = aiohttp.ClientSession()
        async with self._session.get(f"http://127.0.0.1:{self.port}/json/list") as reply:
            pages = [p for p in await reply.json(content_type=None) if p.get("type") == "page"]
        self._ws = await self._session.ws_connect(pages[0]["webSocketDebuggerUrl"], max_msg_size=0)
        self._next_id = 0
        await self._call("Page.enable")
        await self._call("Runtime.enable")

    async def _call(self, method: str, **params):
        import json

        self._next_id += 1
        await self._ws.send_str(json.dumps({"id": self._next_id, "method": method, "params": params}))
        while True:
            message = json.loads((await self._ws.receive()).data)
            if message.get("method") == "Runtime.consoleAPICalled" and message["params"]["type"] == "error":
                self.console.append(
                    " ".join(str(a.get("value", a.get("description", ""))) for a in message["params"]["args"])
                )
            elif message.get("method") == "Runtime.exceptionThrown":
                self.console.append(message["params"]["exceptionDetails"].get("text", "exception"))
            if message.get("id") == self._next_id:
                if "error" in message:
                    raise RuntimeError(f"DevTools {method}: {message['error']}")
                return message.get("result", {})

    def call(self, method: str, **params):
        return self._loop.run_until_complete(self._call(method, **params))

    def evaluate(self, expression: str):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        return result.get("result", {}).get("value")

    def goto(self, url: str) -> None:
        self.call("Page.navigate", url=url)

    def wait_for(self, expression: str, *, timeout_s: float | None = None) -> bool:
        """Poll a JavaScript expression until it is truthy; False on timeout."""
        import time

        deadline = time.monotonic() + (timeout_s or self.timeout_s)
        while time.monotonic() < deadline:
            if self.evaluate(expression):
                return True
            time.sleep(0.5)
        return False

    def screenshot(self, path: Path | str) -> Path:
        import base64

        path = Path(path)
        path.write_bytes(base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"]))
        return path

    def __exit__(self, *exc) -> None:
        import signal

        if getattr(self, "_loop", None) is not None:

            async def close():
                await self._ws.close()
                await self._session.close()

            try:
                self._loop.run_until_complete(close())
            finally:
                self._loop.close()
                self._loop = None
        if getattr(self, "_proc", None) is not None:
            try:
                os.killpg(self._proc.pid, signal.SIGTERM)
                self._proc.wait(timeout=20)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                os.killpg(self._proc.pid, signal.SIGKILL)
            self._proc = None
        self._profile.cleanup()


EXPANDER = 'button[data-component-id*="runnamecellrenderer"]'


RUN_COLUMNS = (
    "metrics.`N`",
    "metrics.`D`",
    "metrics.`C`",
    "metrics.`loss`",
    "metrics.`loss_caption`",
    "metrics.`loss_text`",
    "tags.`status`",
    "params.`size`",
)


def _preferences(experiment_id: str, columns) -> dict[str, str]:
    """What a user would have clicked once in this MLflow UI: the sweep's columns, the assistant panel shut.
    Stored where the MLflow 3.17 UI keeps them (browser localStorage of the server's origin)."""
    import json

    state = {"selectedColumns": list(columns), "runsExpanded": {}, "runsHiddenMode": "SHOW_ALL"}
    return {
        f'MLflowLocalStorage-1.1-ExperimentPage-["{experiment_id}"]-ReactComponentState': json.dumps(state),
        "mlflow.assistant.panelOpen_v1": "false",
        "mlflow.assistant.fab.autoOpenedOnFirstLoad_v1": "true",
    }


def mlflow_runs_view(
    server_url: str,
    experiment_id: str,
    parent_name: str,
    child_names,
    path: Path | str | None,
    *,
    width: int = 1600,
    height: int = 1000,
    timeout_s: float = 60.0,
    columns=RUN_COLUMNS,
) -> dict:
    """Open an experiment's runs table, expand the sweep's parent run, and (optionally) screenshot it.

    Returns {"parent": shown, "children": names of child_names shown under it, "console": JS errors}.
    The `workflowType` parameter picks MLflow 3's model-training view for this browser, which has
    no stored preference; the experiment's own mlflow.experimentKind tag says the same.
    """
    import json

    url = f"{server_url.rstrip('/')}/#/experiments/{experiment_id}/runs?workflowType=machine_learning"
    with DevToolsPage(width=width, height=height, timeout_s=timeout_s) as page:
        page.goto(url)
        page.wait_for(f"document.body.innerText.includes({json.dumps(parent_name)})")
        if columns:
            for key, value in _preferences(experiment_id, columns).items():
                page.evaluate(f"localStorage.setItem({json.dumps(key)}, {json.dumps(value)})")
            page.call("Page.reload")
        shown = page.wait_for(f"document.body.innerText.includes({json.dumps(parent_name)})")
        children: list[str] = []
        if shown:
            page.evaluate(f"document.querySelector({json.dumps(EXPANDER)})?.click()")
            names = json.dumps(list(child_names))
            page.wait_for(f"{names}.some(n => document.body.innerText.includes(n))", timeout_s=timeout_s / 2)
            children = page.evaluate(f"{names}.filter(n => document.body.innerText.includes(n))") or []
            page.evaluate("new Promise(r => setTimeout(r, 1000))")  # let the grid settle before the picture
        if path is not None:
            page.screenshot(path)
        return {"parent": shown, "children": children, "console": list(page.console)}
