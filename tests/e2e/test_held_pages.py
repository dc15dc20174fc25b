"""Hold for review in the HTML pages: the author is told and shown their held post, and the
moderation page lists the queue with Approve and Reject (moderators and the operator
only)."""

from __future__ import annotations

import re

import msgspec
import pytest_asyncio

from tests.conftest import OPERATOR
from tests.e2e import test_pages
from tests.e2e.test_pages import make_section, text
from tests.forms import any_token, reply, submit

settle = test_pages.settle  # the fixture: project until every read model has caught up

NOTICE = "Your post is waiting for a moderator's review"


async def sign_in_as(client, name: str, role: str) -> None:
    """A real member (promoted when ``role`` says so) with an open session in the cookie."""
    password = "correct horse"
    r = await client.post("/api/users", json={"name": name, "password": password})
    assert r.status_code in (201, 409), r.text
    if role == "moderator":
        r = await client.put(f"/api/users/{name}/role", json={"role": role}, headers=OPERATOR)
        assert r.status_code in (200, 409), r.text
    r = await client.post("/api/sessions", json={"name": name, "password": password})
    assert r.status_code == 200, r.text
    client.cookies.set("forum_token", r.json()["token"])


async def test_a_held_form_reply_shows_the_author_a_notice_and_nobody_else_the_post(
        client, settle):
    slug = await make_section(client)
    r = await client.post(f"/api/forums/{slug}/threads",
                          json={"title": "Forms", "body": "first", "guest_name": "ann"})
    thread_id = r.json()["thread_id"]
    await settle()
    r = await reply(client, thread_id, {"body": "buy [b]now[/b] at www.spam.example",
                                        "guest_name": "spammer", "page": "1"},
                    follow_redirects=False)
    assert r.status_code == 202, r.text
    assert NOTICE in text(r.text) and "buy <strong>now</strong>" in r.text
    assert "posts: 1" in text(r.text)
    await settle()
    # The author's browser keeps its guest identity (the forum_guest cookie) and sees its
    # own reply waiting; anyone else sees nothing of it.
    assert "spam.example" in (await client.get(f"/threads/{thread_id}")).text
    client.cookies.delete("forum_guest")
    page = (await client.get(f"/threads/{thread_id}")).text
    assert "spam.example" not in page and NOTICE not in text(page)


async def test_a_held_new_thread_form_shows_the_notice_and_no_thread(client, settle):
    slug = await make_section(client)
    await settle()
    r = await submit(client, f"/forums/{slug}", f"/forums/{slug}/threads", {
        "title": "Deals", "body": "http://spam.example", "guest_name": "spammer"},
        follow_redirects=False)
    assert r.status_code == 202, r.text
    assert NOTICE in text(r.text) and "Deals" in text(r.text)
    await settle()
    page = (await client.get(f"/forums/{slug}")).text
    assert "Deals" not in text(page) and "No threads yet." in text(page)


async def test_the_moderation_page_is_for_moderators_only(client, settle):
    await settle()
    r = await client.get("/moderation")
    assert r.status_code == 403 and "Moderation" not in text(r.text).split("Error")[0]
    await sign_in_as(client, "mem", "member")
    r = await client.get("/moderation")
    assert r.status_code == 403
    assert 'href="/moderation"' not in r.text
    r = await client.post("/moderation/held/1/approve", follow_redirects=False,
                          data={"_csrf_token": await any_token(client)})
    assert r.status_code == 403 and "Only moderators" in text(r.text)
    await sign_in_as(client, "mo", "moderator")
    r = await client.get("/moderation")
    assert r.status_code == 200 and "Nothing is waiting for review." in text(r.text)
    assert 'href="/moderation"' in r.text  # linked from the header


async def test_a_moderator_approves_and_rejects_from_the_moderation_page(client, settle):
    slug = await make_section(client)
    r = await client.post(f"/api/forums/{slug}/threads",
                          json={"title": "Rome", "body": "first", "guest_name": "ann"})
    thread_id = r.json()["thread_id"]
    held = []
    for body in ("first link www.one.example", "second link www.two.example"):
        r = await client.post(f"/api/threads/{thread_id}/posts",
                              json={"body": body, "guest_name": "sp"})
        assert r.status_code == 202, r.text
        held.append(r.json()["held_id"])
    await settle()
    await sign_in_as(client, "mo", "moderator")
    page = (await client.get("/moderation")).text
    assert "www.one.example" in page and "www.two.example" in page
    for held_id in held:
        assert f'action="/moderation/held/{held_id}/approve"' in page
        assert f'action="/moderation/held/{held_id}/reject"' in page

    r = await submit(client, "/moderation", f"/moderation/held/{held[1]}/reject", {},
                     follow_redirects=False)
    assert r.status_code == 303 and re.fullmatch(r"/moderation\?after=\d+",
                                                 r.headers["location"])
    token = {"_csrf_token": await any_token(client)}
    r = await client.post(f"/moderation/held/{held[0]}/approve", data=token,
                          follow_redirects=False)
    assert r.status_code == 303
    r = await client.post(f"/moderation/held/{held[0]}/approve", data=token,
                          follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/moderation"  # decided
    r = await client.post("/moderation/held/999999/approve", data=token,
                          follow_redirects=False)
    assert r.status_code == 404
    r = await client.post(f"/moderation/held/{held[0]}/approve", follow_redirects=False)
    assert r.status_code == 403  # no CSRF token
    await settle()
    page = (await client.get("/moderation")).text
    assert "Nothing is waiting for review." in text(page)
    page = (await client.get(f"/threads/{thread_id}")).text
    assert "www.one.example" in page and "www.two.example" not in page
    assert "posts: 2" in text(page) and "#2" in text(page)


@pytest_asyncio.fixture
async def links_client(settings):
    """FORUM_HOLD=links: members' posts with links are held too (members have an identity
    the pages know, so they can be shown their own pending posts later)."""
    from litestar.testing import AsyncTestClient

    from service.app import create_app

    app = create_app(msgspec.structs.replace(settings, hold="links"))
    async with AsyncTestClient(app=app) as test_client:
        yield test_client


async def test_a_members_held_reply_stays_visible_to_them_on_the_thread_page(
        links_client, settle):
    client = links_client
    slug = await make_section(client)
    r = await client.post(f"/api/forums/{slug}/threads",
                          json={"title": "Rome", "body": "first", "guest_name": "ann"})
    thread_id = r.json()["thread_id"]
    await settle()
    await sign_in_as(client, "mem", "member")
    r = await reply(client, thread_id, {"body": "my site www.mine.example", "page": "1"},
                    follow_redirects=False)
    assert r.status_code == 202 and NOTICE in text(r.text)
    assert r.text.count("www.mine.example") == 1
    await settle()
    page = (await client.get(f"/threads/{thread_id}")).text
    assert NOTICE in text(page) and "www.mine.example" in page
    assert "posts: 1" in text(page)
    for other in ("someone", None):
        if other:
            await sign_in_as(client, other, "member")
        else:
            client.cookies.clear()
        page = (await client.get(f"/threads/{thread_id}")).text
        assert NOTICE not in text(page) and "www.mine.example" not in page
