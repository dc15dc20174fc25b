"""The API keeps answers for a moment; read-your-writes still holds."""

from __future__ import annotations

import asyncio
import re

import msgspec
from litestar.testing import AsyncTestClient

from service.app import create_app
from tests.conftest import OPERATOR


async def test_answers_are_kept_for_a_moment_but_never_below_the_asked_position(
    settings, project
):
    cached = msgspec.structs.replace(settings, page_cache_ms=3000)
    async with AsyncTestClient(app=create_app(cached)) as client:
        await client.post("/api/forums", json={"slug": "s", "title": "S"}, headers=OPERATOR)
        started = await client.post("/api/forums/s/threads",
                                    json={"title": "T", "body": "one", "guest_name": "ann"})
        thread = started.json()["thread_id"]
        await project()
        first = await client.get(f"/api/threads/{thread}")
        assert [p["number"] for p in first.json()["posts"]] == [1]

        reply = await client.post(f"/api/threads/{thread}/posts",
                                  json={"body": "two", "guest_name": "bob"})
        await project()
        # Within the moment, a plain read may get the kept answer…
        kept = await client.get(f"/api/threads/{thread}")
        assert kept.content == first.content
        # …but a read that names the reply's position never does.
        mine = await client.get(f"/api/threads/{thread}",
                                headers={"X-Min-Position": str(reply.json()["position"])})
        assert [p["number"] for p in mine.json()["posts"]] == [1, 2]
        assert int(mine.headers["X-Projection-Position"]) >= reply.json()["position"]

        await asyncio.sleep(3.1)
        later = await client.get(f"/api/threads/{thread}")
        assert [p["number"] for p in later.json()["posts"]] == [1, 2]


async def test_failures_are_not_kept(settings, project):
    cached = msgspec.structs.replace(settings, page_cache_ms=10_000)
    async with AsyncTestClient(app=create_app(cached)) as client:
        await client.post("/api/forums", json={"slug": "s", "title": "S"}, headers=OPERATOR)
        await project()
        assert (await client.get("/api/threads/1")).status_code == 404
        started = await client.post("/api/forums/s/threads",
                                    json={"title": "T", "body": "b", "guest_name": "ann"})
        assert started.json()["thread_id"] == 1
        await project()
        assert (await client.get("/api/threads/1")).status_code == 200


async def test_a_guest_page_kept_by_a_shared_cache_serves_every_guest(settings, project):
    """What a shared cache in front does with an anonymous thread page: keeps the bytes it
    got for one visitor and hands them to another, whose form then posts (the public
    token, this site's Origin), from another process too; no cookie was ever set."""
    async with AsyncTestClient(app=create_app(settings)) as first:
        await first.post("/api/forums", json={"slug": "s", "title": "S"}, headers=OPERATOR)
        started = await first.post("/api/forums/s/threads",
                                   json={"title": "T", "body": "one", "guest_name": "ann"})
        thread = started.json()["thread_id"]
        await project()
        kept = await first.get(f"/threads/{thread}")
        assert kept.headers["cache-control"] == "public, max-age=10"
        assert "set-cookie" not in kept.headers and not first.cookies
    token = re.search(r'name="_csrf_token" value="([^"]+)"', kept.text)
    assert token
    async with AsyncTestClient(app=create_app(settings)) as second:
        r = await second.post(f"/threads/{thread}/reply", follow_redirects=False,
                              headers={"Origin": "http://testserver.local"},
                              data={"body": "from the cached page", "guest_name": "bob",
                                    "_csrf_token": token.group(1)})
        assert r.status_code == 303, r.text
