"""The post and thread controls in a real browser (headless Chromium) against real
``forum serve`` and ``forum worker`` processes: a member edits their post and a reader
sees "edited" and the earlier version; a member likes a post and the author's reputation
shows on reload; a moderator locks a thread and the reply box disappears."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.browser import test_in_chromium
from tests.browser.test_in_chromium import api, thread_posts
from tests.builders import unique_name, unique_slug
from tests.conftest import OPERATOR, Stack

pytestmark = pytest.mark.e2e
watched = test_in_chromium.watched  # the fixture: a page whose CSP violations fail the test


def member(stack: Stack, role: str = "member") -> tuple[str, str]:
    """A new member (or moderator) and a session token for them."""
    name = unique_name("m")
    with api(stack) as http:
        r = http.post("/api/users", json={"name": name, "password": "correct horse"})
        assert r.status_code == 201, r.text
        if role != "member":
            r = http.put(f"/api/users/{name}/role", json={"role": role}, headers=OPERATOR)
            assert r.status_code == 200, r.text
        r = http.post("/api/sessions", json={"name": name, "password": "correct horse"})
        return name, r.json()["token"]


def thread_by(stack: Stack, token: str, body: str) -> tuple[int, int, int]:
    """(thread id, first post id, position) of a member's new thread, once projected."""
    slug = unique_slug()
    with api(stack) as http:
        r = http.post("/api/forums", json={"slug": slug, "title": "Controls"},
                      headers=OPERATOR)
        assert r.status_code == 201, r.text
        r = http.post(f"/api/forums/{slug}/threads", json={"title": "Edit me", "body": body},
                      headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 201, r.text
    position = int(r.headers["x-position"])
    thread_posts(stack, r.json()["thread_id"], position)
    return r.json()["thread_id"], r.json()["post_id"], position


async def signed_in(page: Any, stack: Stack, token: str | None) -> None:
    await page.context.clear_cookies()
    if token:
        await page.context.add_cookies([{"name": "forum_token", "value": token,
                                         "url": stack.url}])


async def test_a_member_edits_their_post_and_a_reader_sees_the_earlier_version(
        stack, watched):
    page, _ = watched
    _, token = member(stack)
    thread_id, post_id, position = thread_by(stack, token, "The [b]first[/b] version.")
    await signed_in(page, stack, token)
    await page.goto(f"{stack.url}/threads/{thread_id}?after={position}")
    post = page.locator(f"#p{post_id}")
    await post.get_by_role("link", name="Edit").click()
    await page.wait_for_url(f"{stack.url}/posts/{post_id}/edit")
    await page.locator("textarea[name=body]").fill("The second version.")
    await page.get_by_role("button", name="Save changes").click()
    await page.wait_for_url(re.compile(rf"/threads/{thread_id}\?page=1&after=\d+#p{post_id}$"))

    await signed_in(page, stack, None)  # a reader
    await page.reload()
    post = page.locator(f"#p{post_id}")
    assert "The second version." in await post.locator(".body").inner_text()
    assert "edited" in await post.locator(".edited").inner_text()
    await post.get_by_role("link", name="history").click()
    await page.wait_for_url(f"{stack.url}/posts/{post_id}/revisions")
    earlier = page.locator("section.revision").nth(1)
    assert "The first version." in " ".join((await earlier.inner_text()).split())
    assert await earlier.locator("strong").inner_text() == "first"


async def test_a_member_likes_a_post_and_the_authors_reputation_shows_on_reload(
        stack, watched):
    page, _ = watched
    _, ann = member(stack)
    _, bob = member(stack)
    thread_id, post_id, position = thread_by(stack, ann, "Worth a like.")
    await signed_in(page, stack, bob)
    await page.goto(f"{stack.url}/threads/{thread_id}?after={position}")
    post = page.locator(f"#p{post_id}")
    assert " ".join((await post.locator(".reputation").inner_text()).split()) == "reputation 0"
    await post.get_by_role("button", name="Like").click()
    await page.wait_for_url(re.compile(rf"after=\d+#p{post_id}$"))
    await page.reload()
    post = page.locator(f"#p{post_id}")
    assert " ".join((await post.locator(".reputation").inner_text()).split()) == "reputation 1"
    assert await post.get_by_role("button", name="Unlike").count() == 1


async def test_a_moderator_locks_a_thread_and_the_reply_box_disappears(stack, watched):
    page, _ = watched
    _, ann = member(stack)
    _, mod = member(stack, "moderator")
    thread_id, _, position = thread_by(stack, ann, "Soon locked.")
    await signed_in(page, stack, mod)
    await page.goto(f"{stack.url}/threads/{thread_id}?after={position}")
    assert await page.locator("textarea#reply-body").count() == 1
    await page.get_by_role("button", name="Lock thread").click()
    await page.wait_for_url(re.compile(rf"/threads/{thread_id}\?after=\d+#reply$"))
    assert await page.locator("textarea#reply-body").count() == 0
    assert "locked" in await page.locator("#reply").inner_text()
    assert await page.get_by_role("button", name="Unlock thread").count() == 1
    await signed_in(page, stack, ann)  # the member sees it locked too
    await page.reload()
    assert await page.locator("textarea#reply-body").count() == 0
