"""The demo's reference thread in Chromium, as API.md's "The reference page" describes it
and as the demo's own data file lists it (service/demo_data/reference_thread.json): every
post across the thread's pages, in order, with its author, ``#N``, the OP mark on the
starter's posts, its date, and a block for each quote; ``posts: 21`` in the heading."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import pytest

from service import demo
from service.web.times import MONTHS
from tests.browser.board import (
    REFERENCE_TITLE,
    Board,
    Watch,
    find_thread,
    load_demo,
    viewer_page,
)
from tests.conftest import Stack

pytestmark = pytest.mark.e2e

_QUOTED = re.compile(r"\[quote=([^\]\s]+)")

# What each post shows, read off the page: OP mark, author, date, number, quote authors.
_READ_POSTS = """() => [...document.querySelectorAll('article.post')].map(a => ({
  op: !!a.querySelector('.author .op'),
  author: a.querySelector('.author .name a').textContent,
  date: a.querySelector('.post-head time').textContent,
  number: a.querySelector('.post-head .number').textContent,
  quotes: [...a.querySelectorAll('.body blockquote.quote > .quote-author')]
            .map(q => q.textContent),
}))"""


def _day(when: datetime) -> str:
    return f"{when.day} {MONTHS[when.month - 1]} {when.year}"


async def test_the_reference_thread_shows_every_post_as_the_seed_lists_them(
        stack: Stack, browser: Any) -> None:
    seed = demo.reference_thread()
    assert seed.title == REFERENCE_TITLE and len(seed.posts) == 21
    thread = find_thread(stack, REFERENCE_TITLE, await load_demo(stack))
    assert thread is not None, "the demo has no reference thread"
    starter = seed.posts[0].author
    expected = [{
        "op": post.author == starter, "author": post.author,
        "date": _day(post.created_at),
        "number": f"#{number}",
        "quotes": [f"{name} wrote:" for name in _QUOTED.findall(post.body)],
    } for number, post in enumerate(seed.posts, 1)]

    watch = Watch()
    shown: list[dict[str, Any]] = []
    async with viewer_page(browser, stack, Board(), "guest", watch, 1280) as page:
        page_number, pages = 1, 1
        while page_number <= pages:
            await page.goto(f"{stack.url}/threads/{thread}?page={page_number}")
            heading = await page.text_content("main")
            assert heading is not None and "posts: 21" in heading
            shown += await page.evaluate(_READ_POSTS)
            pager = await page.query_selector(".pager .of")
            if pager is not None:
                pages = int((await pager.text_content() or "").rsplit(" ", 1)[-1])
            page_number += 1
    assert shown == expected
    assert sum(post["op"] for post in shown) > 1  # the starter came back, marked each time
    assert sum(len(post["quotes"]) for post in shown) >= 5
    assert {post["date"][-4:] for post in shown} == {"2011", "2018", "2024"}
    assert not watch.violations and not watch.script_errors
