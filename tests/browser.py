"""Open a page in headless Chromium (Debian's `chromium`) and report what the browser saw.

Used by the `browser` tests of the HTML report. No node, no driver: Chromium's own command line
flags. One run dumps the DOM after the scripts ran (the page marks itself `data-ready`, and its
`window.onerror` hook marks `data-js-error`), with console messages logged to stderr as
`CONSOLE` lines; a second run takes a screenshot. Name resolution is disabled, so a page that
needed the network would fail here as it would offline.
"""

from __future__ import annotations

import html
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"

_FLAGS = (
    "--headless",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--host-resolver-rules=MAP * ~NOTFOUND",  # offline: no name resolves
    "--enable-logging=stderr",
    "--v=0",
    "--window-size=1280,1600",
)


@dataclass(frozen=True, slots=True)
class BrowserView:
    """What Chromium made of a page: the DOM after its scripts ran, and its console lines."""

    dom: str
    console: tuple[str, ...]

    @property
    def script_error(self) -> str | None:
        """The message the page's `window.onerror` hook left on <html>, if a script failed."""
        found = re.search(r'<html[^>]*\sdata-js-error="([^"]*)"', self.dom)
        return html.unescape(found.group(1)) if found else None

    @property
    def ready(self) -> bool:
        """Whether the page's own script ran to its end (it marks <body data-ready="1">)."""
        return re.search(r'<body[^>]*\sdata-ready="1"', self.dom) is not None


def chromium_available() -> bool:
    return os.path.exists(CHROMIUM)


def _chromium(args: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    flags = list(_FLAGS)
    if os.geteuid() == 0:
        flags.append("--no-sandbox")  # Chromium refuses to run as root with its sandbox
    with tempfile.TemporaryDirectory(prefix="orchestrate-chromium-") as profile:
        return subprocess.run(
            [CHROMIUM, *flags, f"--user-data-dir={profile}", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )


def open_page(page: Path, screenshot: Path | None = None, timeout: float = 60) -> BrowserView:
    """Load `page` from disk; return its DOM and console lines, and save a PNG to `screenshot`."""
    url = page.resolve().as_uri()
    dumped = _chromium(["--dump-dom", url], timeout)
    console = tuple(line for line in dumped.stderr.splitlines() if ":CONSOLE" in line)
    if screenshot is not None:
        _chromium([f"--screenshot={screenshot}", url], timeout)
    return BrowserView(dumped.stdout, console)
