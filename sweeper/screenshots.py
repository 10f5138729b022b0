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
CONSOLE = re.compile(r"CONSOLE\(\d+\)\]? ?\"(?P<message>.*)\", source: (?P<source>.*)|"
                     r":CONSOLE:\d+\] \"(?P<message2>.*)\", source: (?P<source2>.*)")


def find_chromium() -> str | None:
    explicit = os.environ.get("SWEEPER_CHROMIUM")
    if explicit:
        return explicit if Path(explicit).exists() else None
    return next((found for found in map(shutil.which, NAMES) if found), None)


def _run(url: str, extra: list[str], *, timeout_s: float, virtual_time_ms: int | None) -> subprocess.CompletedProcess:
    chromium = find_chromium()
    if chromium is None:
        raise FileNotFoundError("no Chromium found: install it (scripts/setup, or apt-get install chromium) "
                                "or point SWEEPER_CHROMIUM at the binary")
    with tempfile.TemporaryDirectory(prefix="sweeper-chromium-") as profile:
        argv = [chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                "--no-first-run", "--disable-extensions", f"--user-data-dir={profile}",
                "--enable-logging=stderr", "--v=0", *extra]
        if virtual_time_ms:
            argv.append(f"--virtual-time-budget={virtual_time_ms}")
        return subprocess.run(argv + [url], capture_output=True, text=True, timeout=timeout_s)


def console_messages(stderr: str) -> list[str]:
    """The page's console messages (JavaScript errors included) from Chromium's stderr log."""
    out = []
    for match in CONSOLE.finditer(stderr):
        out.append(match.group("message") or match.group("message2") or "")
    return out


def screenshot(url: str, path: Path | str, *, width: int = 1400, height: int = 2000, timeout_s: float = 120.0,
               virtual_time_ms: int | None = None) -> list[str]:
    """PNG of the page at `path`; returns its console messages."""
    path = Path(path).resolve()
    done = _run(url, [f"--screenshot={path}", f"--window-size={width},{height}"], timeout_s=timeout_s,
                virtual_time_ms=virtual_time_ms)
    if not path.is_file():
        raise RuntimeError(f"Chromium made no screenshot of {url} (exit {done.returncode}): {done.stderr[-1500:]}")
    return console_messages(done.stderr)


def dump_dom(url: str, *, timeout_s: float = 120.0, virtual_time_ms: int | None = None,
             width: int = 1400, height: int = 2000) -> tuple[str, list[str]]:
    """(the DOM after scripts ran, the console messages)."""
    done = _run(url, ["--dump-dom", f"--window-size={width},{height}"], timeout_s=timeout_s,
                virtual_time_ms=virtual_time_ms)
    return done.stdout, console_messages(done.stderr)
