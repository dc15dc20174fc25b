"""Headless Chromium for the browser tests: Debian's ``chromium`` driven by Playwright.

Never a downloaded browser (``playwright install`` is not used): the set-up installs the
distribution's package with apt-get when it is missing (CI runs as root), and the tests
skip, saying why, only where no browser can be had.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

CHROMIUM = "/usr/bin/chromium"


def _install_chromium() -> str:
    """Why there is no browser, after trying apt-get; "" when there is one now."""
    if os.path.exists(CHROMIUM):
        return ""
    if shutil.which("apt-get") is None:
        return f"{CHROMIUM} is missing and there is no apt-get to install it"
    if os.geteuid() != 0:
        return f"{CHROMIUM} is missing and installing it needs root (apt-get install chromium)"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "chromium"]):
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=1200,
                              check=False)
        if done.returncode != 0:
            return f"{' '.join(command)} failed: {done.stderr.strip()[-300:]}"
    return "" if os.path.exists(CHROMIUM) else f"apt-get installed no {CHROMIUM}"


@pytest_asyncio.fixture(scope="session")
async def browser() -> AsyncIterator[Any]:
    """One browser for the session. Playwright's async API: its sync API runs an event
    loop of its own, which the async fixtures' loop cannot share a thread with."""
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        pytest.skip("playwright is not installed (pip install -e '.[dev]')")
    missing = _install_chromium()
    if missing:
        pytest.skip(f"no Chromium for the browser tests: {missing}")
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield chromium
        await chromium.close()
