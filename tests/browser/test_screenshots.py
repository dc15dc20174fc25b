"""Screenshots of the demo's reference thread at a desktop and a phone width, for people
to look at. Written to screenshots/ at the repository's root (ignored by git)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.board import (
    REFERENCE_TITLE,
    Board,
    Watch,
    find_thread,
    load_demo,
    too_wide,
    viewer_page,
)
from tests.conftest import ROOT, Stack

pytestmark = pytest.mark.e2e

SCREENSHOTS = ROOT / "screenshots"
WIDTHS = (1280, 390)


async def test_screenshots_of_a_thread_at_desktop_and_phone_widths(stack: Stack, browser: Any
                                                                 ) -> None:
    """Full-page screenshots of the reference thread at 1280 and 390 px wide, under
    screenshots/; on the phone nothing is wider than the screen."""
    thread = find_thread(stack, REFERENCE_TITLE, await load_demo(stack))
    assert thread is not None, "the demo has no reference thread"
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
