"""Hold for review through HTTP (in-process app, real PostgreSQL and Redis): a held post is
answered 202, shown to nobody but its author and moderators, and published by approval
with the thread's next number (API.md "Abuse limits")."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import msgspec
import pytest_asyncio

from service.settings import Settings
from tests.builders import unique_key, unique_slug
from tests.conftest import OPERATOR
from tests.e2e import test_api_writes
from tests.e2e.test_api_writes import (
    assert_problem,
    log_size,
    moderator_headers,
    sign_up,
)

Client = httpx.AsyncClient
LINK = "cheap pills at https://spam.example"

forum = test_api_writes.forum  # the fixture: a section



@pytest_asyncio.fixture
async def thread(client: Client, forum: str) -> dict[str, Any]:
    r = await client.post(f"/api/forums/{forum}/threads",
                          json={"title": "Rome", "body": "first", "guest_name": "starter"})
    assert r.status_code == 201, r.text
    return r.json()


@pytest_asyncio.fixture
async def links_client(settings: Settings) -> AsyncIterator[Client]:
    """The app with FORUM_HOLD=links: members' posts with links are held too, so an author
    with an identity (a member's token) can be shown their own pending posts."""
    from litestar.testing import AsyncTestClient

    from service.app import create_app

    app = create_app(msgspec.structs.replace(settings, hold="links"))
    async with AsyncTestClient(app=app) as test_client:
        yield test_client


async def reply(client: Client, thread_id: int, body: str, **extra: Any) -> httpx.Response:
    return await client.post(f"/api/threads/{thread_id}/posts",
                             json={"body": body, **extra.pop("json", {})}, **extra)


async def page_numbers(client: Client, thread_id: int) -> list[tuple[int, int, str]]:
    r = await client.get(f"/api/threads/{thread_id}", params={"per_page": 100})
    assert r.status_code == 200, r.text
    return [(p["number"], p["id"], p["body"]) for p in r.json()["posts"]]


async def held_ids(client: Client, headers: dict[str, str]) -> list[int]:
    r = await client.get("/api/held", headers=headers)
    assert r.status_code == 200, r.text
    assert r.json()["page"] == 1 and r.json()["pages"] >= 1
    return [item["id"] for item in r.json()["held"]]


async def test_a_guests_reply_with_a_link_is_held_shown_to_nobody_and_approved_without_gaps(
        client, pool, project, thread):
    tid = thread["thread_id"]
    r = await reply(client, tid, LINK, json={"guest_name": "spammer"})
    assert r.status_code == 202, r.text
    held = r.json()
    assert held["held"] is True and held["thread_id"] == tid
    assert held["position"] == int(r.headers["x-position"]) > 0
    assert "location" not in r.headers
    held_id = held["held_id"]
    r = await reply(client, tid, "a plain guest reply", json={"guest_name": "gus"})
    assert r.status_code == 201 and r.json()["number"] == 2
    await project()

    numbers = await page_numbers(client, tid)
    assert [n for n, _, _ in numbers] == [1, 2] and LINK not in {b for *_, b in numbers}
    r = await client.get(f"/api/threads/{tid}")
    assert r.json()["thread"]["posts"] == 2
    assert_problem(await client.get(f"/api/posts/{held_id}"), 404)
    assert_problem(await client.get("/api/held"), 401)
    member = await sign_up(client)
    assert await held_ids(client, member) == []  # others see none of it
    moderator = await moderator_headers(client)
    r = await client.get("/api/held", headers=moderator)
    (item,) = r.json()["held"]
    assert (item["id"], item["thread_id"], item["author"], item["body"]) == (
        held_id, tid, "spammer", LINK)
    assert item["created_at"].endswith("Z")

    r = await client.post(f"/api/held/{held_id}/approve", headers=member)
    assert_problem(r, 403)
    r = await client.post(f"/api/held/{held_id}/approve", headers=moderator)
    assert r.status_code == 200, r.text
    approved = r.json()
    assert (approved["post_id"], approved["number"]) == (held_id, 3)
    assert approved["position"] == int(r.headers["x-position"])
    assert_problem(await client.post(f"/api/held/{held_id}/approve", headers=moderator), 409)
    assert_problem(await client.post(f"/api/held/{held_id}/reject", headers=OPERATOR), 409)

    await project()
    r = await client.get(f"/api/threads/{tid}")
    assert r.status_code == 200, r.text
    assert [(p["number"], p["id"]) for p in r.json()["posts"]][-1] == (3, held_id)
    r = await client.get(f"/api/posts/{held_id}")
    assert r.status_code == 200 and r.json()["number"] == 3 and r.json()["body"] == LINK
    assert await held_ids(client, moderator) == []
    r = await reply(client, tid, "after the approval", json={"guest_name": "gus"})
    assert r.json()["number"] == 4


async def test_a_rejected_post_never_appears(client, pool, project, thread):
    tid = thread["thread_id"]
    r = await reply(client, tid, "[url=https://x.example]x[/url]", json={"guest_name": "sp"})
    held_id = r.json()["held_id"]
    assert_problem(await client.post(f"/api/held/{held_id}/reject"), 401)
    before = await log_size(pool)
    r = await client.post(f"/api/held/{held_id}/reject", headers=OPERATOR)
    assert r.status_code == 200, r.text
    assert r.json()["id"] == held_id and r.json()["position"] > 0
    assert await log_size(pool) == before + 1
    assert_problem(await client.post(f"/api/held/{held_id}/approve", headers=OPERATOR), 409)
    r = await reply(client, tid, "next", json={"guest_name": "gus"})
    assert r.json()["number"] == 2
    await project()
    assert [n for n, _, _ in await page_numbers(client, tid)] == [1, 2]
    assert_problem(await client.get(f"/api/posts/{held_id}"), 404)
    assert await held_ids(client, OPERATOR) == []


async def test_unknown_held_ids_are_404_and_odd_ones_4xx(client, pool, thread):
    for held_id in (thread["post_id"], 987654321, 1 << 62):
        for verb in ("approve", "reject"):
            assert_problem(await client.post(f"/api/held/{held_id}/{verb}",
                                             headers=OPERATOR), 404)
    for odd in ("0", "-1", str(1 << 63), "x"):
        r = await client.post(f"/api/held/{odd}/approve", headers=OPERATOR)
        assert 400 <= r.status_code < 500, (odd, r.status_code)
    assert_problem(await client.get("/api/held", params={"page": 0}, headers=OPERATOR))


async def test_a_guests_new_thread_with_a_link_is_held_whole_until_approved(
        client, pool, project, forum):
    r = await client.post(f"/api/forums/{forum}/threads", json={
        "title": "Deals", "body": "see www.spam.example", "guest_name": "spammer"})
    assert r.status_code == 202, r.text
    held = r.json()
    tid, held_id = held["thread_id"], held["held_id"]
    assert held["held"] is True and "location" not in r.headers
    await project()
    assert_problem(await client.get(f"/api/threads/{tid}"), 404)
    assert_problem(await client.get(f"/api/posts/{held_id}"), 404)
    r = await client.get(f"/api/forums/{forum}/threads")
    assert r.json()["threads"] == [] and r.json()["forum"]["threads"] == 0
    r = await client.get("/api/unanswered")
    assert tid not in [t["id"] for t in r.json()["threads"]]
    # nobody can write to it meanwhile
    assert_problem(await reply(client, tid, "me too", json={"guest_name": "gus"}), 404)
    assert_problem(await client.post(f"/api/threads/{tid}/lock", headers=OPERATOR), 404)
    (item,) = (await client.get("/api/held", headers=OPERATOR)).json()["held"]
    assert (item["id"], item["thread_id"], item["title"], item["new_thread"]) == (
        held_id, tid, "Deals", True)

    r = await client.post(f"/api/held/{held_id}/approve", headers=await moderator_headers(client))
    assert r.status_code == 200, r.text
    assert (r.json()["post_id"], r.json()["number"]) == (held_id, 1)
    await project()
    r = await client.get(f"/api/threads/{tid}")
    assert r.status_code == 200, r.text
    assert r.json()["thread"]["title"] == "Deals"
    assert [(p["number"], p["id"]) for p in r.json()["posts"]] == [(1, held_id)]
    r = await client.get(f"/api/forums/{forum}/threads")
    assert [t["id"] for t in r.json()["threads"]] == [tid]
    assert tid in [t["id"] for t in (await client.get("/api/unanswered")).json()["threads"]]


async def test_a_rejected_new_thread_never_exists(client, pool, project, forum):
    r = await client.post(f"/api/forums/{forum}/threads", json={
        "title": "Deals", "body": "http://spam.example", "guest_name": "spammer"})
    tid, held_id = r.json()["thread_id"], r.json()["held_id"]
    r = await client.post(f"/api/held/{held_id}/reject", headers=OPERATOR)
    assert r.status_code == 200, r.text
    await project()
    assert_problem(await client.get(f"/api/threads/{tid}"), 404)
    assert (await client.get(f"/api/forums/{forum}/threads")).json()["threads"] == []


async def test_an_author_sees_only_their_own_pending_posts(links_client, pool, project):
    client = links_client
    slug = unique_slug()
    await client.post("/api/forums", json={"slug": slug, "title": "T"}, headers=OPERATOR)
    ann, bob = await sign_up(client), await sign_up(client)
    r = await client.post(f"/api/forums/{slug}/threads", json={
        "title": "Links", "body": "mine: https://ann.example"}, headers=ann)
    assert r.status_code == 202, r.text
    ann_thread = r.json()["held_id"]
    r = await client.post(f"/api/forums/{slug}/threads", json={"title": "Plain",
                                                               "body": "no link"},
                          headers=bob)
    assert r.status_code == 201, r.text
    tid = r.json()["thread_id"]
    r = await reply(client, tid, "see www.ann.example", headers=ann)
    assert r.status_code == 202, r.text
    ann_reply = r.json()["held_id"]
    r = await reply(client, tid, "see www.bob.example", headers=bob)
    bob_reply = r.json()["held_id"]
    await project()
    assert await held_ids(client, ann) == [ann_thread, ann_reply]
    assert await held_ids(client, bob) == [bob_reply]
    assert sorted(await held_ids(client, OPERATOR)) == sorted(
        [ann_thread, ann_reply, bob_reply])
    # moderators are never held, whatever the policy
    r = await reply(client, tid, "www.mod.example", headers=await moderator_headers(client))
    assert r.status_code == 201, r.text


async def test_a_held_write_replayed_with_its_idempotency_key_answers_the_same_202(
        client, pool, thread):
    headers = {"Idempotency-Key": unique_key()}
    tid = thread["thread_id"]
    first = await reply(client, tid, LINK, json={"guest_name": "sp"}, headers=headers)
    before = await log_size(pool)
    again = await reply(client, tid, LINK, json={"guest_name": "sp"}, headers=headers)
    assert (first.status_code, again.status_code) == (202, 202)
    assert again.json() == first.json()
    assert await log_size(pool) == before


async def test_a_held_reply_to_a_thread_moved_and_locked_meanwhile_is_still_published(
        client, pool, project, thread, forum):
    tid = thread["thread_id"]
    held_id = (await reply(client, tid, LINK, json={"guest_name": "sp"})).json()["held_id"]
    other = unique_slug()
    await client.post("/api/forums", json={"slug": other, "title": "Other"}, headers=OPERATOR)
    for path, body in (("move", {"forum": other}), ("lock", None)):
        r = await client.post(f"/api/threads/{tid}/{path}", json=body, headers=OPERATOR)
        assert r.status_code == 200, r.text
    r = await client.post(f"/api/held/{held_id}/approve", headers=OPERATOR)
    assert r.status_code == 200 and r.json()["number"] == 2
    await project()
    sections = {f["slug"]: f for f in (await client.get("/api/forums")).json()["forums"]}
    assert (sections[other]["posts"], sections[forum]["posts"]) == (2, 0)
