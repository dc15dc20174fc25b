"""Erasure (API.md, "Data rights and backups"; ARCHITECTURE invariant 9), against real
``forum serve`` and ``forum worker`` processes: a member who wrote posts, was quoted and
liked things is erased, and afterwards neither their name nor their erased bodies are in
a plain ``pg_dump`` of the database, in any Redis key or value under the board's prefix, in
any answer of the API or the pages, nor in a fresh ``forum backup``; the worker's read
models equal a replay of the rewritten log."""

from __future__ import annotations

import asyncio
import gzip
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import asyncpg
import httpx
import msgspec
import pytest
from redis.asyncio import Redis

from events.postgres import PostgresEventStore
from service.settings import Settings
from tests.builders import unique_name, unique_slug
from tests.conftest import FORUM, OPERATOR, process_env
from tests.readmodel_dump import differences, dump, rebuild_dump
from workers.erasures import born_of
from workers.readmodels import PROJECTION_NAMES, Keys, stored_posts
from workers.search.sink import models as search_models

PASSWORD = "correct horse battery"


@pytest.fixture
def stack_settings(stack_settings: Settings) -> Settings:
    """Every load of a thread snapshots it: the erasure finds snapshots holding the name."""
    return msgspec.structs.replace(stack_settings, thread_snapshot_every=1)


async def snapshots_naming(pool: asyncpg.Pool, name: str) -> int:
    """How many thread snapshots hold ``name`` (bytea: a pg_dump shows it as hex, so it
    is searched here)."""
    forms = [name.encode(), name.casefold().encode()]
    rows = await pool.fetch("SELECT data FROM snapshots")
    return sum(any(form in bytes(r[0]) for form in forms) for r in rows)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def member(http: httpx.AsyncClient, name: str) -> dict[str, str]:
    r = await http.post("/api/users", json={"name": name, "password": PASSWORD})
    assert r.status_code == 201, r.text
    r = await http.post("/api/sessions", json={"name": name, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return bearer(r.json()["token"])


async def wrote(http: httpx.AsyncClient, path: str, body: dict[str, Any],
                headers: dict[str, str]) -> dict[str, Any]:
    r = await http.post(path, json=body, headers=headers)
    assert r.status_code in (200, 201), r.text
    answer: dict[str, Any] = r.json()
    return answer


async def rebuilt_after(redis: Redis, keys: Keys, pool: asyncpg.Pool, position: int,
                        timeout: float = 90) -> None:
    """Wait until every live read model, and the search model, was built after
    ``position`` (the erasure) and no build is under way: what the worker does on its
    own."""
    deadline = time.monotonic() + timeout
    while True:
        pointers = await redis.mget(*(keys.active(n) for n in PROJECTION_NAMES))
        building = await redis.mget(*(keys.building(n) for n in PROJECTION_NAMES))
        searching, search_build = await search_models(pool)
        if all(p is not None and born_of(p.decode()) >= position for p in pointers) \
                and not any(building) and searching is not None \
                and searching.born >= position and search_build is None:
            return
        assert time.monotonic() < deadline, \
            f"not rebuilt after {position}: {pointers}, search {searching}"
        await asyncio.sleep(0.2)


async def every_redis_text(redis: Redis, prefix: str) -> str:
    """Every key under the prefix and its value, whatever its type, as one text."""
    parts: list[bytes] = []
    async for key in redis.scan_iter(match=f"{prefix}:*", count=1000):
        parts.append(key)
        kind = (await redis.type(key)).decode()
        if kind == "string":
            parts.append(await redis.get(key) or b"")
        elif kind == "list":
            parts.extend(await redis.lrange(key, 0, -1))
        elif kind == "hash":
            for field, value in (await redis.hgetall(key)).items():
                parts += [field, value]
        elif kind == "zset":
            parts.extend(m for m, _ in await redis.zrange(key, 0, -1, withscores=True))
        elif kind == "set":
            parts.extend(await redis.smembers(key))
        elif kind == "stream":
            parts.extend(str(e).encode() for e in await redis.xrange(key))
    # Posts' longer bodies are stored deflated (workers/readmodels/stored_posts.py).
    return b"\n".join(map(stored_posts.unpacked, parts)).decode("utf-8", "replace")


async def every_answer(http: httpx.AsyncClient, slug: str, threads: list[int],
                       post_ids: list[int], names: list[str], searched: list[str]) -> str:
    """What the API and the pages answer about everything the test wrote, and what search
    answers for ``names`` and the words ``searched``."""
    paths = ["/api/forums", f"/api/forums/{slug}/threads", "/api/unanswered",
             f"/api/forums/{slug}/archive", "/", f"/forums/{slug}", "/unanswered",
             f"/forums/{slug}/archive", "/api/held", "/api/suspensions", "/api/bans"]
    paths += [f"/api/threads/{t}" for t in threads] + [f"/threads/{t}" for t in threads]
    paths += [f"/api/posts/{p}" for p in post_ids]
    paths += [f"/posts/{p}/revisions" for p in post_ids]  # earlier versions of edited posts
    paths += [f"/api/users/{n}" for n in names]
    # Search: for each name and each word asked (the JSON answers do not repeat the
    # question), posts by each name, and a page of results for everything starting "t".
    paths += [f"/api/search?q={quote(words)}" for words in [*names, *searched]]
    paths += [f"/api/search?q=t*&author={quote(name)}" for name in names]
    paths += ["/api/search?q=t*", "/search?q=t*"]
    texts = []
    for path in paths:
        r = await http.get(path, headers=OPERATOR)
        assert r.status_code in (200, 404), (path, r.status_code, r.text)
        texts.append(r.text)
    for year in (r.json().get("years") or [] if (r := await http.get(
            f"/api/forums/{slug}/archive")).status_code == 200 else []):
        texts.append((await http.get(f"/api/forums/{slug}/archive/{year['year']}")).text)
    after = 0
    while True:  # the whole log, as the operator reads it
        r = await http.get("/api/events", params={"after": after, "limit": 1000},
                           headers=OPERATOR)
        assert r.status_code == 200, r.text
        texts.append(r.text)
        events = r.json()["events"]
        if not events:
            break
        after = events[-1]["position"]
    return "\n".join(texts)


async def projected(http: httpx.AsyncClient, path: str, position: int,
                    timeout: float = 60) -> None:
    """Wait until ``path`` reflects ``position``: on a shared cluster another session's
    transaction can hold the log's read horizon for longer than one read waits."""
    deadline = time.monotonic() + timeout
    while (r := await http.get(path, headers={"X-Min-Position": str(position)})
           ).status_code == 503:
        assert time.monotonic() < deadline, r.text
    assert r.status_code == 200, r.text


async def searched_for(http: httpx.AsyncClient, q: str, position: int, **filters: str
                       ) -> list[int]:
    """The posts search finds for ``q`` once it has reached ``position``."""
    deadline = time.monotonic() + 60
    while (r := await http.get("/api/search", params={"q": q, **filters},
                               headers={"X-Min-Position": str(position)})).status_code == 503:
        assert time.monotonic() < deadline, r.text  # see ``projected``
    assert r.status_code == 200, r.text
    return [hit["post_id"] for hit in r.json()["results"]]


def pg_dump(database_url: str) -> str:
    parts = urlsplit(database_url)
    done = subprocess.run(
        ["pg_dump", "-h", parts.hostname or "127.0.0.1", "-p", str(parts.port or 5432),
         "-U", parts.username or "postgres", "--no-owner", parts.path.lstrip("/")],
        capture_output=True, check=True, timeout=120)
    return done.stdout.decode()


def absent(text: str, secrets: list[str], where: str) -> None:
    folded = text.casefold()
    for secret in secrets:
        at = folded.find(secret.casefold())
        assert at < 0, f"{secret!r} is still in {where}: …{text[max(0, at - 80):at + 80]}…"


async def test_an_erased_member_is_found_nowhere_and_live_equals_replay(
        stack, stack_settings, pool, tmp_path: Path):
    name = unique_name("Zorblax")
    secrets = [f"whisper{uuid.uuid4().hex[:10]}" for _ in range(3)]
    slug = unique_slug()
    keys = Keys(stack_settings.key_prefix)
    redis = Redis.from_url(stack_settings.redis_url)
    async with httpx.AsyncClient(base_url=stack.url, timeout=30) as http:
        await wrote(http, "/api/forums", {"slug": slug, "title": "Talk"}, OPERATOR)
        alice, bob = await member(http, name), await member(http, unique_name("bob"))
        first = await wrote(http, f"/api/forums/{slug}/threads",
                            {"title": "A question", "body": f"I think {secrets[0]}"}, alice)
        t1, p1 = first["thread_id"], first["post_id"]
        quote = await wrote(http, f"/api/threads/{t1}/posts", {
            "body": f"[quote={name} post={p1}]I think {secrets[0]}[/quote]\nAgreed."}, bob)
        second = await wrote(http, f"/api/forums/{slug}/threads",
                             {"title": "Bob's thread", "body": "Hello all"}, bob)
        t2 = second["thread_id"]
        reply = await wrote(http, f"/api/threads/{t2}/posts",
                            {"body": f"Welcome {secrets[1]}"}, alice)
        r = await http.patch(f"/api/posts/{reply['post_id']}",
                             json={"body": f"Welcome, edited {secrets[2]}"}, headers=alice)
        assert r.status_code == 200, r.text
        for post_id, who in ((second["post_id"], alice), (p1, bob)):
            r = await http.post(f"/api/posts/{post_id}/likes", headers=who)
            assert r.status_code in (200, 201), r.text
        guest = await wrote(http, f"/api/threads/{t2}/posts",
                            {"body": "a guest says hi", "guest_name": unique_name("gus")}, {})
        posts = [p1, quote["post_id"], second["post_id"], reply["post_id"], guest["post_id"]]
        await projected(http, f"/api/threads/{t2}", guest["position"])
        before = await every_answer(http, slug, [t1, t2], posts, [name], secrets)
        assert name in before and secrets[0] in before  # the premise: there to be found
        r = await http.get(f"/posts/{reply['post_id']}/revisions")
        assert r.status_code == 200 and secrets[1] in r.text  # the version before the edit
        deadline = time.monotonic() + 10  # snapshots are saved after the answer
        while await snapshots_naming(pool, name) < 2:
            assert time.monotonic() < deadline, "the threads were not snapshotted"
            await asyncio.sleep(0.1)
        assert await searched_for(http, secrets[0], guest["position"]) == [p1]
        assert set(await searched_for(http, "whisper*", guest["position"], author=name)) \
            == {p1, reply["post_id"]}
        assert await searched_for(http, secrets[1][:-2] + "*", guest["position"]) == []
        assert await searched_for(http, secrets[2], guest["position"]) == [reply["post_id"]]
        assert name in await every_redis_text(redis, keys.prefix)

        # The member's own export, before: their profile and both of their posts.
        r = await http.get(f"/api/users/{name}/export", headers=alice)
        assert r.status_code == 200, r.text
        exported = r.json()
        assert exported["profile"]["name"] == name
        assert [(p["post_id"], p["body"]) for p in exported["posts"]] == [
            (p1, f"I think {secrets[0]}"), (reply["post_id"], f"Welcome, edited {secrets[2]}")]

        r = await http.request("DELETE", f"/api/users/{name}",
                               json={"content": "erase", "password": "wrong password"},
                               headers=alice)
        assert r.status_code == 401, r.text
        r = await http.request("DELETE", f"/api/users/{name}",
                               json={"content": "erase", "password": PASSWORD}, headers=alice)
        assert r.status_code == 200, r.text
        erased = r.json()
        pseudonym = erased["pseudonym"]
        assert name not in r.text and erased["events_rewritten"] > 0

        # Bob quotes the erased post again, with the attribution the page now shows: the
        # API process's kept state of the thread must not bring the name back.
        again = await wrote(http, f"/api/threads/{t1}/posts", {
            "body": f"[quote={pseudonym} post={p1}][/quote]\nStill agreed."}, bob)
        posts.append(again["post_id"])
        await rebuilt_after(redis, keys, pool, erased["position"])
        r = await http.get(f"/api/threads/{t1}",
                           headers={"X-Min-Position": str(again["position"])})
        assert r.status_code == 200, r.text
        page = r.json()
        assert page["posts"][0]["author"]["name"] == pseudonym
        assert page["posts"][0]["body"] == ""
        assert all(q["author"] == pseudonym for p in page["posts"] for q in p["quotes"])

        # The member is gone: their token, their password, their profile and export.
        assert (await http.get(f"/api/users/{name}/export", headers=alice)).status_code \
            == 401
        r = await http.post("/api/sessions", json={"name": name, "password": PASSWORD})
        assert r.status_code == 401, r.text
        r = await http.get(f"/api/users/{name}/export", headers=OPERATOR)
        assert r.status_code == 404, r.text

        # Asked by name, it is not found (the 404 repeats only what was asked).
        assert (await http.get(f"/api/users/{name}")).status_code == 404
        gone = [name, *secrets]
        absent(await every_answer(http, slug, [t1, t2], posts, [pseudonym], secrets),
               gone, "the API's answers")
        for secret in secrets:  # neither the words nor the name find anything any more
            assert await searched_for(http, secret, again["position"]) == []
        assert await searched_for(http, "whisper*", again["position"], author=name) == []
        # The title stays (a thread is everyone's); the post is now the pseudonym's.
        assert await searched_for(http, "question", again["position"], author=pseudonym) \
            == [p1]
        assert await searched_for(http, "agreed", again["position"]) == [
            again["post_id"], quote["post_id"]]  # the quoting posts' own words, newest first
    absent(await every_redis_text(redis, keys.prefix), gone, "Redis")
    absent(pg_dump(stack_settings.database_url), gone, "a pg_dump")
    assert await snapshots_naming(pool, name) == 0
    backup = tmp_path / "after.backup"
    done = subprocess.run([*FORUM, "backup", str(backup)], env=process_env(stack_settings),
                          capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr
    absent(gzip.decompress(backup.read_bytes()).decode("utf-8", "replace"), gone,
           "a forum backup")

    # What the worker made live equals a replay of the rewritten log.
    store = PostgresEventStore(pool)
    live = await dump(redis, keys)
    assert differences(live, await rebuild_dump(store, redis, keys)) == []
    await redis.aclose()
