"""Who may erase and export (service/data_rights.py), ``forum erase-guest``, and the
workers following an erasure that lands while a rebuild is under way
(workers/erasures.py). The whole-board search for an erased member is
tests/e2e/test_erasure.py."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx

from events.erasure import erase
from events.redaction import Subject
from tests.builders import unique_name, unique_slug
from tests.conftest import OPERATOR, process_env
from tests.integration.test_cli import forum, no_traceback
from tests.readmodel_dump import differences, dump, fill_pages, rebuild_dump
from workers import rebuild
from workers.readmodels import PROJECTION_NAMES

PASSWORD = "correct horse battery"


async def member(client: httpx.AsyncClient, name: str) -> dict[str, str]:
    r = await client.post("/api/users", json={"name": name, "password": PASSWORD})
    assert r.status_code == 201, r.text
    r = await client.post("/api/sessions", json={"name": name, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


async def board(client: httpx.AsyncClient) -> dict[str, Any]:
    slug = unique_slug()
    r = await client.post("/api/forums", json={"slug": slug, "title": "S"}, headers=OPERATOR)
    assert r.status_code == 201, r.text
    ann, bob = unique_name("ann"), unique_name("bob")
    tokens = {ann: await member(client, ann), bob: await member(client, bob)}
    r = await client.post(f"/api/forums/{slug}/threads",
                          json={"title": "T", "body": "ann's first words"}, headers=tokens[ann])
    assert r.status_code == 201, r.text
    thread, first = r.json()["thread_id"], r.json()["post_id"]
    r = await client.post(f"/api/threads/{thread}/posts", json={"body": "ann again"},
                          headers=tokens[ann])
    assert r.status_code == 201, r.text
    second = r.json()["post_id"]
    r = await client.delete(f"/api/posts/{second}", headers=tokens[ann])
    assert r.status_code == 200, r.text
    return {"slug": slug, "ann": ann, "bob": bob, "tokens": tokens, "thread": thread,
            "posts": [first, second]}


async def test_an_export_is_the_members_or_the_operators(client):
    b = await board(client)
    ann, bob = b["ann"], b["bob"]
    assert (await client.get(f"/api/users/{ann}/export")).status_code == 401
    r = await client.get(f"/api/users/{ann}/export", headers=b["tokens"][bob])
    assert r.status_code == 403, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert (await client.get(f"/api/users/{unique_name('nobody')}/export",
                             headers=OPERATOR)).status_code == 404
    for headers in (b["tokens"][ann], OPERATOR):
        r = await client.get(f"/api/users/{ann}/export", headers=headers)
        assert r.status_code == 200, r.text
        assert r.headers["cache-control"] == "private, no-store"
        exported = r.json()
        assert exported["profile"]["name"] == ann
        assert [(p["post_id"], p["body"], p["deleted"]) for p in exported["posts"]] == [
            (b["posts"][0], "ann's first words", False), (b["posts"][1], "ann again", True)]
    r = await client.get(f"/api/users/{bob}/export", headers=b["tokens"][bob])
    assert r.json()["posts"] == []


async def test_only_the_member_with_their_password_or_the_operator_may_erase(client, project):
    b = await board(client)
    ann, bob = b["ann"], b["bob"]
    path = f"/api/users/{ann}"
    r = await client.request("DELETE", path, json={"content": "keep"})
    assert r.status_code == 401, r.text
    r = await client.request("DELETE", path, json={"content": "keep", "password": PASSWORD},
                             headers=b["tokens"][bob])
    assert r.status_code == 403, r.text
    r = await client.request("DELETE", path, json={"content": "keep"}, headers=b["tokens"][ann])
    assert r.status_code == 401, r.text  # no password: a stolen token is not enough
    r = await client.request("DELETE", path, json={"content": "everything"}, headers=OPERATOR)
    assert r.status_code in (400, 422), r.text
    r = await client.request("DELETE", path, json={"content": "keep"}, headers=OPERATOR)
    assert r.status_code == 200, r.text
    pseudonym = r.json()["pseudonym"]
    assert (await client.request("DELETE", path, json={"content": "keep"},
                                 headers=OPERATOR)).status_code == 404
    await project()
    r = await client.get(f"/api/threads/{b['thread']}")
    first = r.json()["posts"][0]
    assert (first["author"]["name"], first["body"]) == (pseudonym, "ann's first words")
    r = await client.get(f"/api/users/{pseudonym}")
    assert r.status_code == 200 and r.json()["posts"] == 2, r.text
    # The name is free again; the pseudonym and its look-alikes are not.
    assert (await client.post("/api/users", json={"name": ann, "password": PASSWORD})
            ).status_code == 201
    r = await client.post("/api/users", json={"name": pseudonym.upper(), "password": PASSWORD})
    assert r.status_code == 409, r.text


async def test_forum_erase_guest(client, project, settings):
    b = await board(client)
    gus = unique_name("gus")
    r = await client.post(f"/api/threads/{b['thread']}/posts",
                          json={"body": "words of a guest", "guest_name": gus})
    assert r.status_code == 201, r.text
    env = process_env(settings)
    done = forum("erase-guest", unique_name("nobody"), "--yes", env=env)
    assert done.returncode == 1 and "no post" in done.stderr, done.stderr
    no_traceback(done)
    done = forum("erase-guest", gus, "--content", "erase", "--yes", env=env)
    assert done.returncode == 0, done.stderr
    assert "anon-" in done.stdout and gus not in done.stdout
    await project()
    page = (await client.get(f"/api/threads/{b['thread']}")).json()
    last = page["posts"][-1]
    assert last["author"]["guest"] and last["author"]["name"].startswith("anon-")
    assert last["body"] == ""
    assert gus not in str(page)


async def test_an_erasure_during_a_rebuild_restarts_it_and_live_equals_replay(
        client, project, pool, store, redis, keys):
    b = await board(client)
    await project()
    # A rebuild under way, started before the erasure (as `forum replay` or a new version
    # would): what it read so far may hold the name.
    head = await store.head()
    started = {n: await rebuild.start(redis, keys, n, fresh=True, born=head)
               for n in PROJECTION_NAMES}
    erased = await erase(pool, Subject(b["ann"], False, "anon-test", True),
                         actor="operator", now=datetime.now(UTC))
    await project()
    now_live = await redis.mget(*(keys.active(n) for n in PROJECTION_NAMES))
    assert all(v.decode() not in started.values() for v in now_live)
    assert erased.events_rewritten >= 4
    await fill_pages(store, redis, keys)  # pages as reads make them (a build writes none)
    live = await dump(redis, keys)
    assert b["ann"] not in str(live) and "ann's first words" not in str(live)
    assert differences(live, await rebuild_dump(store, redis, keys)) == []
