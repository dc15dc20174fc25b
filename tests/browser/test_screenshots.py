"""Screenshots of a thread page at a desktop and a phone width, for people to look at:
the demo's reference thread once the demo data has it, a seeded thread until then.
Written to screenshots/ at the repository's root (ignored by git)."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from tests.browser.board import Board, Watch, seed, too_wide, viewer_page
from tests.conftest import ROOT, Stack

pytestmark = pytest.mark.e2e

REFERENCE_TITLE = "Historic Polish-Japanese intelligence cooperation"
SCREENSHOTS = ROOT / "screenshots"
WIDTHS = (1280, 390)


async def _load_demo(stack: Stack) -> int:
    """The demo data ``forum dev`` loads; the log's head after it."""
    from events.postgres import create_pool
    from service.devstack import _load_demo

    await _load_demo(stack.settings)
    pool = await create_pool(stack.settings.database_url, min_size=1, max_size=1)
    try:
        return int(await pool.fetchval("SELECT coalesce(max(position), 0) FROM events"))
    finally:
        await pool.close()


def _find_thread(stack: Stack, title: str, position: int) -> int | None:
    """The id of the thread titled ``title`` in any section, once the views hold
    ``position``."""
    wait = {"X-Min-Position": str(position)}
    deadline = time.monotonic() + 60
    with httpx.Client(base_url=stack.url, timeout=20) as http:
        while True:
            r = http.get("/api/forums", headers=wait)
            if r.status_code == 200:
                break
            assert r.status_code == 503 and time.monotonic() < deadline, r.text
        for forum in r.json()["forums"]:
            page, pages = 1, 1
            while page <= pages:
                r = http.get(f"/api/forums/{forum['slug']}/threads",
                             params={"page": page}, headers=wait)
                assert r.status_code == 200, r.text
                listing = r.json()
                for thread in listing["threads"]:
                    if thread["title"] == title:
                        return int(thread["id"])
                page, pages = page + 1, listing["pages"]
    return None


async def test_screenshots_of_a_thread_at_desktop_and_phone_widths(stack: Stack, browser: Any
                                                                 ) -> None:
    """Full-page screenshots of the reference thread (the seeded one until the demo data
    has it), at 1280 and 390 px wide, under screenshots/; on the phone nothing is wider
    than the screen."""
    thread = _find_thread(stack, REFERENCE_TITLE, await _load_demo(stack))
    if thread is None:
        thread = seed(stack).long_thread
    path = f"/threads/{thread}"
    SCREENSHOTS.mkdir(exist_ok=True)
    watch = Watch()
    for width in WIDTHS:
        async with viewer_page(browser, stack, Board(), "guest", watch, width) as page:
            await page.goto(f"{stack.url}{path}")
            shot = SCREENSHOTS / f"thread-{width}.png"
            await page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 10_000
            assert not await too_wide(page, width)
    assert not watch.violations, watch.violations
    assert not watch.script_errors, watch.script_errors


def test_the_screenshots_folder_is_ignored_by_git() -> None:
    assert "/screenshots/" in (ROOT / ".gitignore").read_text().splitlines()
    assert ROOT / "screenshots" == SCREENSHOTS
