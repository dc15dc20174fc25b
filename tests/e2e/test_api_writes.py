"""Every write route of API.md through the in-process app (real PostgreSQL and Redis).

A refused request answers 4xx with ``application/problem+json`` and a non-empty ``detail``,
and appends nothing: each bad request is checked against the events table itself (the
``client`` and ``pool`` fixtures share this test's database).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import httpx
import pytest_asyncio

from tests.builders import quote, unique_key, unique_name, unique_slug
from tests.conftest import OPERATOR

Client = httpx.AsyncClient
HUGE_IDS = ["99999999999999999999999999", str(1 << 63), str((1 << 63) - 1), "0", "-1"]
XSS = "<script>alert('x')</script><img src=x onerror=alert(1)>"
SQL = "Robert'); DROP TABLE events; -- \" OR 1=1; SELECT pg_sleep(10);"


# -- helpers --------------------------------------------------------------------------

async def log_size(pool: asyncpg.Pool) -> int:
    return int(await pool.fetchval("SELECT count(*) FROM events"))


def assert_problem(response: httpx.Response, status: int | None = None) -> dict[str, Any]:
    assert 400 <= response.status_code < 500, (response.status_code, response.text)
    if status is not None:
        assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json"), (
        response.headers, response.text)
    problem = response.json()
    assert isinstance(problem["detail"], str) and problem["detail"].strip(), problem
    assert problem["status"] == response.status_code
    assert problem["title"] and problem["type"]
    return problem


@asynccontextmanager
async def appends_nothing(pool: asyncpg.Pool) -> AsyncIterator[None]:
    before = await log_size(pool)
    yield
    assert await log_size(pool) == before, "a refused request appended events"


async def refused(pool: asyncpg.Pool, send: Any, status: int | None = None,
                  case: object = "") -> dict[str, Any]:
    """Send a request that must be refused; check the answer and that the log is unchanged.

    Bad inputs are checked many to a test (each test costs a database), so a failure names
    its ``case``."""
    before = await log_size(pool)
    response = await send
    try:
        problem = assert_problem(response, status)
        assert await log_size(pool) == before, "a refused request appended events"
    except AssertionError as error:
        label = repr(case)
        raise AssertionError(f"case {label[:200]}: {error}") from error
    return problem


async def events_of(client: Client, pool: asyncpg.Pool, after: int = 0
                    ) -> list[dict[str, Any]]:
    """The whole log through GET /api/events, once it shows every committed event.

    The log is read below the oldest transaction still running anywhere in the cluster,
    so it may trail the table for a moment while other databases are busy."""
    deadline = time.monotonic() + 15
    while True:
        expected = await log_size(pool)
        out: list[dict[str, Any]] = []
        cursor = after
        while True:
            r = await client.get("/api/events", params={"after": cursor, "limit": 1000},
                                 headers=OPERATOR)
            assert r.status_code == 200, r.text
            page = r.json()["events"]
            if not page:
                break
            out.extend(page)
            cursor = page[-1]["position"]
        if len(out) >= expected or time.monotonic() > deadline:
            return out
        await asyncio.sleep(0.02)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def sign_up(client: Client, name: str | None = None) -> dict[str, str]:
    name = name or unique_name("member")
    r = await client.post("/api/users", json={"name": name, "password": "correct horse"})
    assert r.status_code == 201, r.text
    r = await client.post("/api/sessions", json={"name": name, "password": "correct horse"})
    assert r.status_code == 200, r.text
    return bearer(r.json()["token"])


async def moderator_headers(client: Client, name: str | None = None) -> dict[str, str]:
    """A real moderator's token: registered, promoted by the operator, signed in."""
    name = name or unique_name("mod")
    await sign_up(client, name)
    r = await client.put(f"/api/users/{name}/role", json={"role": "moderator"},
                         headers=OPERATOR)
    assert r.status_code == 200, r.text
    r = await client.post("/api/sessions", json={"name": name, "password": "correct horse"})
    assert r.status_code == 200, r.text
    return bearer(r.json()["token"])


# -- fixtures -------------------------------------------------------------------------

@pytest_asyncio.fixture
async def forum(client: Client) -> str:
    slug = unique_slug()
    r = await client.post("/api/forums", json={"slug": slug, "title": "History"},
                          headers=OPERATOR)
    assert r.status_code == 201, r.text
    return slug


@pytest_asyncio.fixture
async def thread(client: Client, forum: str) -> dict[str, Any]:
    r = await client.post(f"/api/forums/{forum}/threads",
                          json={"title": "Rome", "body": "first", "guest_name": "starter"})
    assert r.status_code == 201, r.text
    return {**r.json(), "forum": forum, "starter": "starter",
            "as_starter": {"X-Guest-Token": r.json()["guest_token"]}}


# -- POST /api/forums -----------------------------------------------------------------

async def test_operator_creates_a_section(client, pool):
    slug = unique_slug()
    before = await log_size(pool)
    r = await client.post("/api/forums", json={"slug": slug, "title": "  History "},
                          headers=OPERATOR)
    assert r.status_code == 201, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert (body["slug"], body["title"]) == (slug, "History")
    assert r.headers["location"] == f"/api/forums/{slug}/threads"
    assert str(body["position"]) == r.headers["x-position"]
    assert await log_size(pool) == before + 1
    (event,) = await events_of(client, pool)
    assert (event["type"], event["stream"], event["version"]) == (
        "forum_created", f"forum-{slug}", 1)
    assert event["position"] == body["position"]


async def test_only_the_operator_and_moderators_create_sections(client, pool):
    def create() -> dict[str, str]:
        return {"slug": unique_slug(), "title": "T"}

    problem = await refused(pool, client.post("/api/forums", json=create()), 401, "no token")
    assert "token" in problem["detail"]
    await refused(pool, client.post("/api/forums", json=create(),
                                    headers=bearer("not-a-token")), 401, "bad token")
    await refused(pool, client.post("/api/forums", json=create(),
                                    headers={"Authorization": "Basic Zm9vOmJhcg=="}), 401,
                  "basic auth")
    moderator = await moderator_headers(client)
    forged = bearer(moderator["Authorization"].split()[1][:-2] + "xx")
    await refused(pool, client.post("/api/forums", json=create(), headers=forged), 401,
                  "forged signature")
    await refused(pool, client.post("/api/forums", json={**create(), "guest_name": "v"}),
                  case="guest")
    member = await sign_up(client)
    await refused(pool, client.post("/api/forums", json=create(), headers=member), 403,
                  "member")
    r = await client.post("/api/forums", json=create(), headers=moderator)
    assert r.status_code == 201, r.text


BAD_SECTIONS = [
    {"slug": "Bad Slug", "title": "T"},
    {"slug": "-x", "title": "T"},
    {"slug": "a" * 65, "title": "T"},
    {"slug": "ok-slug", "title": ""},
    {"slug": "ok-slug", "title": "   "},
    {"slug": "ok-slug", "title": "t" * 201},
    {"slug": "nul\x00slug", "title": "T"},
    {"slug": "ok-slug"},
    {"title": "T"},
    {"slug": 7, "title": "T"},
    {"slug": "ok-slug", "title": ["T"]},
    {"slug": "ok-slug", "title": "T", "extra": 1},
]


async def test_bad_section_requests_are_4xx(client, pool, forum):
    for payload in BAD_SECTIONS:
        await refused(pool, client.post("/api/forums", json=payload, headers=OPERATOR),
                      case=payload)
    await refused(pool, client.post("/api/forums", json={"slug": forum, "title": "Again"},
                                    headers=OPERATOR), 409, "existing")


# -- POST /api/forums/{slug}/threads --------------------------------------------------

async def test_a_guest_starts_a_thread(client, pool, forum):
    before = await log_size(pool)
    r = await client.post(f"/api/forums/{forum}/threads",
                          json={"title": "Rome", "body": "hello", "guest_name": "visitor"})
    assert r.status_code == 201, r.text
    body = r.json()
    assert {"thread_id", "post_id", "position"} <= set(body)
    assert r.headers["location"] == f"/api/threads/{body['thread_id']}"
    assert await log_size(pool) == before + 2
    started, added = (await events_of(client, pool))[-2:]
    assert (started["type"], added["type"]) == ("thread_started", "post_added")
    assert started["stream"] == added["stream"] == f"thread-{body['thread_id']}"
    assert added["data"]["author"] == "visitor" and added["data"]["guest"] is True
    assert added["data"]["number"] == 1 and added["data"]["op"] is True
    assert added["position"] == body["position"]


async def test_a_member_starts_a_thread(client, pool, forum):
    name = unique_name("ann")
    member = await sign_up(client, name)
    r = await client.post(f"/api/forums/{forum}/threads", json={"title": "T", "body": "b"},
                          headers=member)
    assert r.status_code == 201, r.text
    added = (await events_of(client, pool))[-1]
    assert (added["data"]["author"], added["data"]["guest"]) == (name, False)


async def test_who_may_start_a_thread(client, pool, forum):
    url = f"/api/forums/{forum}/threads"
    await refused(pool, client.post(url, json={"title": "T", "body": "b"}), 401,
                  "neither account nor guest name")
    name = unique_name("Ann")
    member = await sign_up(client, name)
    for guest_name in (name, name.upper(), name.lower()):
        await refused(pool, client.post(url, json={
            "title": "T", "body": "b", "guest_name": guest_name}), 409, guest_name)
    await refused(pool, client.post(url, json={"title": "T", "body": "b", "guest_name": "o"},
                                    headers=member), 422, "guest_name while signed in")


BAD_STARTS = [
    ({"title": "", "body": "b"}, 422),
    ({"title": " \t ", "body": "b"}, 422),
    ({"title": "t" * 201, "body": "b"}, 422),
    ({"title": "T", "body": ""}, 422),
    ({"title": "T", "body": "\x00\x01 \x7f"}, 422),
    ({"title": "T", "body": "b" * 50_001}, 422),
    ({"title": "T", "body": quote(123) + "no such post"}, 422),
    ({"body": "b"}, None),
    ({"title": "T"}, None),
    ({}, None),
    ({"title": 1, "body": "b"}, None),
    ({"title": "T", "body": None}, None),
    ({"title": "T", "body": {"text": "b"}}, None),
    ({"title": "T", "body": "b", "guest_name": 5}, None),
    ({"title": "T", "body": "b", "author": "admin"}, None),
    ({"title": "T", "body": "b", "guest_name": ""}, 422),
    ({"title": "T", "body": "b", "guest_name": "operator"}, 409),  # reserved: in use
    ({"title": "T", "body": "b", "guest_name": "x" * 33}, 422),
    ({"title": "T", "body": "b", "guest_name": "<script>"}, 422),
    ({"title": "T", "body": "b", "guest_name": "nul\x00name"}, 422),
]


async def test_bad_thread_starts_are_4xx(client, pool, forum):
    for payload, status in BAD_STARTS:
        payload = {"guest_name": "visitor", **payload}
        await refused(pool, client.post(f"/api/forums/{forum}/threads", json=payload), status,
                      case=payload)


async def test_title_of_200_and_body_of_50000_characters_are_accepted(client, pool, forum):
    r = await client.post(f"/api/forums/{forum}/threads", json={
        "title": "t" * 200, "body": "ж" * 50_000, "guest_name": "visitor"})
    assert r.status_code == 201, r.text
    started, added = (await events_of(client, pool))[-2:]
    assert started["data"]["title"] == "t" * 200
    assert added["data"]["body"] == "ж" * 50_000


async def test_unknown_or_odd_section_slugs_are_404(client, pool):
    for slug in ["no-such-section", "a%00b", "x" * 300, "%F0%9F%98%80", "..%2F..%2Fetc",
                 "Upper", "-x-"]:
        await refused(pool, client.post(f"/api/forums/{slug}/threads", json={
            "title": "T", "body": "b", "guest_name": "visitor"}), 404, case=slug)


# -- POST /api/threads/{id}/posts -----------------------------------------------------

async def test_a_guest_replies(client, pool, thread):
    before = await log_size(pool)
    r = await client.post(f"/api/threads/{thread['thread_id']}/posts",
                          json={"body": "me too", "guest_name": "replier"})
    assert r.status_code == 201, r.text
    body = r.json()
    assert (body["number"], body["page"]) == (2, 1)
    assert {"post_id", "position"} <= set(body)
    assert r.headers["location"] == f"/api/posts/{body['post_id']}"
    assert await log_size(pool) == before + 2
    added, bumped = (await events_of(client, pool))[-2:]
    assert (added["type"], bumped["type"]) == ("post_added", "thread_bumped")
    assert added["data"]["first_reply"] is True and added["data"]["op"] is False
    assert bumped["position"] == body["position"]


async def test_the_starter_replies_as_op(client, pool, thread):
    r = await client.post(f"/api/threads/{thread['thread_id']}/posts",
                          json={"body": "bump", "guest_name": thread["starter"].upper()},
                          headers=thread["as_starter"])
    assert r.status_code == 201, r.text
    added = (await events_of(client, pool))[-2]
    assert added["data"]["op"] is True


async def test_a_reply_quoting_earlier_posts_records_each_quote(client, pool, thread):
    tid = thread["thread_id"]
    second = (await client.post(f"/api/threads/{tid}/posts",
                                json={"body": "two", "guest_name": "bob"})).json()
    body = (quote(thread["post_id"], "starter") + quote(second["post_id"], "bob")
            + "replying to both")
    r = await client.post(f"/api/threads/{tid}/posts", json={"body": body, "guest_name": "cy"})
    assert r.status_code == 201, r.text
    assert r.json()["number"] == 3
    last = (await events_of(client, pool))[-4:]
    assert [e["type"] for e in last] == ["post_added", "post_quoted", "post_quoted",
                                         "thread_bumped"]
    assert [e["data"]["quoted_post_id"] for e in last[1:3]] == [thread["post_id"],
                                                               second["post_id"]]
    assert len({e["position"] for e in last}) == 4


async def test_quote_of_another_threads_post_is_422(client, pool, thread, forum):
    other = (await client.post(f"/api/forums/{forum}/threads", json={
        "title": "Other", "body": "elsewhere", "guest_name": "x"})).json()
    problem = await refused(pool, client.post(f"/api/threads/{thread['thread_id']}/posts", json={
        "body": quote(other["post_id"]) + "hm", "guest_name": "y"}), 422)
    assert str(other["post_id"]) in problem["detail"]


async def test_reply_to_unknown_huge_or_odd_thread_ids_is_4xx(client, pool, thread):
    for thread_id in [str(thread["thread_id"] + 10_000), *HUGE_IDS]:
        await refused(pool, client.post(f"/api/threads/{thread_id}/posts",
                                        json={"body": "b", "guest_name": "y"}), 404,
                      case=thread_id)
    for thread_id in ("abc", "1.5", "1e3", "0x10"):
        await refused(pool, client.post(f"/api/threads/{thread_id}/posts",
                                        json={"body": "b", "guest_name": "y"}), case=thread_id)


async def test_reply_to_a_locked_thread_is_409_but_moderators_may(client, pool, thread):
    tid = thread["thread_id"]
    r = await client.post(f"/api/threads/{tid}/lock", headers=OPERATOR)
    assert r.status_code == 200, r.text
    await refused(pool, client.post(f"/api/threads/{tid}/posts",
                                    json={"body": "b", "guest_name": "y"}), 409)
    r = await client.post(f"/api/threads/{tid}/posts", json={"body": "closing"},
                          headers=await moderator_headers(client))
    assert r.status_code == 201, r.text


BAD_REPLIES = [
    ({"body": ""}, 422),
    ({"body": "   \n\t "}, 422),
    ({"body": "\x00\x08\x1b"}, 422),
    ({"body": "b" * 50_001}, 422),
    ({"body": quote(987_654_321) + "nothing"}, 422),
    ({}, None),
    ({"body": 42}, None),
    ({"body": True}, None),
    ({"body": ["a"]}, None),
    ({"body": "b", "number": 1}, None),
    ({"body": "b", "thread_id": 5}, None),
    ({"body": "b", "guest_name": None, "x": 1}, None),
]


async def test_bad_replies_are_4xx(client, pool, thread):
    for payload, status in BAD_REPLIES:
        await refused(pool, client.post(f"/api/threads/{thread['thread_id']}/posts",
                                        json={"guest_name": "y", **payload}), status,
                      case=payload)


# -- raw bodies: malformed, non-JSON, oversized --------------------------------------

RAW_BODIES = [
    (b'{"body": "b", "guest_name": "y"', "application/json"),
    (b"{body: 'b'}", "application/json"),
    (b"", "application/json"),
    (b"null", "application/json"),
    (b"[]", "application/json"),
    (b'"just a string"', "application/json"),
    (b"\xff\xfe\x00garbage", "application/json"),
    (b"body=b&guest_name=y", "application/x-www-form-urlencoded"),
    (b"just some text", "text/plain"),
    (b"<post><body>b</body></post>", "application/xml"),
    (b'{"body": "lone \\ud800 surrogate", "guest_name": "y"}', "application/json"),
    (b'{"body": "b", "guest_name": "y", "z": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
     "application/json"),  # nested past the decoder's recursion limit: was a 500
    (b'{"body": ' + b"{" * 50_000, "application/json"),
]



def write_routes(forum: str, thread: dict[str, Any]) -> list[tuple[str, dict[str, str]]]:
    return [
        ("/api/forums", OPERATOR),
        (f"/api/forums/{forum}/threads", {}),
        (f"/api/threads/{thread['thread_id']}/posts", {}),
        (f"/api/threads/{thread['thread_id']}/bump", {}),
    ]


async def test_malformed_or_non_json_bodies_are_4xx_on_every_write_route(client, pool, forum,
                                                                         thread):
    for url, headers in write_routes(forum, thread):
        for content, content_type in RAW_BODIES:
            if url.endswith("/bump") and content in (b"", b"null"):
                continue  # the bump body is optional: no body means no guest name (401)
            await refused(pool, client.post(url, content=content, headers={
                "Content-Type": content_type, **headers}), case=(url, content, content_type))


async def test_a_10_mb_body_is_413_on_every_write_route(client, pool, forum, thread):
    huge = "x" * (10 * 1024 * 1024)
    payloads = [{"slug": "s", "title": huge}, {"title": "T", "body": huge, "guest_name": "y"},
                {"body": huge, "guest_name": "y"}, {"guest_name": huge}]
    for (url, headers), payload in zip(write_routes(forum, thread), payloads, strict=True):
        await refused(pool, client.post(url, content=json.dumps(payload), headers={
            "Content-Type": "application/json", **headers}), 413, case=url)


# -- text is data ---------------------------------------------------------------------

async def test_markup_and_sql_are_stored_verbatim_and_never_executed(client, pool, forum,
                                                                     project):
    r = await client.post(f"/api/forums/{forum}/threads", json={
        "title": XSS + SQL, "body": XSS + "\n" + SQL, "guest_name": "visitor"})
    assert r.status_code == 201, r.text
    tid = r.json()["thread_id"]
    r = await client.post(f"/api/threads/{tid}/posts",
                          json={"body": SQL + XSS, "guest_name": "y"})
    assert r.status_code == 201, r.text
    events = await events_of(client, pool)
    assert events[-4]["data"]["title"] == XSS + SQL
    assert events[-3]["data"]["body"] == XSS + "\n" + SQL
    assert events[-2]["data"]["body"] == SQL + XSS
    assert await pool.fetchval("SELECT count(*) FROM events") == len(events)  # table intact
    await project()
    page = await client.get(f"/api/threads/{tid}")
    assert page.status_code == 200, page.text
    posts = page.json()["posts"]
    assert posts[0]["body"] == XSS + "\n" + SQL
    for post in posts:
        assert "<script" not in post["html"] and "<img" not in post["html"]
    assert page.json()["thread"]["title"] == XSS + SQL


async def test_control_characters_are_stripped_before_storing(client, pool, thread, forum):
    r = await client.post(f"/api/threads/{thread['thread_id']}/posts", json={
        "body": "he\x00l\x07lo\u2028 wor\x1bld\r\nbye\x7f", "guest_name": "y"})
    assert r.status_code == 201, r.text
    r = await client.post(f"/api/forums/{forum}/threads", json={
        "title": "Ro\x00me\x1b", "body": "b", "guest_name": "y"})
    assert r.status_code == 201, r.text
    added, _, started, _ = (await events_of(client, pool))[-4:]
    assert added["data"]["body"] == "hello world\nbye"
    assert started["data"]["title"] == "Rome"


# -- POST /api/threads/{id}/bump ------------------------------------------------------

async def test_the_starter_bumps_once_then_waits(client, pool, thread):
    tid = thread["thread_id"]
    r = await client.post(f"/api/threads/{tid}/bump", json={"guest_name": thread["starter"]},
                          headers=thread["as_starter"])
    assert r.status_code == 200, r.text
    assert r.json()["thread_id"] == tid and "position" in r.json()
    bumped = (await events_of(client, pool))[-1]
    assert (bumped["type"], bumped["data"]["reason"]) == ("thread_bumped", "starter")
    async with appends_nothing(pool):
        r = await client.post(f"/api/threads/{tid}/bump",
                              json={"guest_name": thread["starter"]},
                              headers=thread["as_starter"])
    assert_problem(r, 429)
    assert 0 < int(r.headers["retry-after"]) <= 24 * 3600


async def test_a_member_starter_bumps_with_a_token(client, forum):
    member = await sign_up(client)
    tid = (await client.post(f"/api/forums/{forum}/threads", json={"title": "T", "body": "b"},
                             headers=member)).json()["thread_id"]
    r = await client.post(f"/api/threads/{tid}/bump", headers=member)
    assert r.status_code == 200, r.text


async def test_refused_bumps(client, pool, thread):
    url = f"/api/threads/{thread['thread_id']}/bump"
    await refused(pool, client.post(url, json={"guest_name": "stranger"}), 403, "stranger")
    member = await sign_up(client)
    await refused(pool, client.post(url, headers=member), 403, "member")
    await refused(pool, client.post(url), 401, "no name, no token")
    for payload in [{"guest_name": 3}, {"guest_name": "x", "why": "y"}, {"guest_name": ""},
                    ["x"], {"guest_name": "nul\x00"}]:
        await refused(pool, client.post(url, json=payload), case=payload)
    for thread_id in ["123456789", *HUGE_IDS]:
        await refused(pool, client.post(f"/api/threads/{thread_id}/bump", headers=OPERATOR),
                      404, case=thread_id)


async def test_moderators_bump_any_time(client, pool, thread):
    moderator = await moderator_headers(client)
    before = await log_size(pool)
    for headers in (OPERATOR, OPERATOR, moderator, moderator):
        r = await client.post(f"/api/threads/{thread['thread_id']}/bump", headers=headers)
        assert r.status_code == 200, r.text
    assert await log_size(pool) == before + 4


# -- GET /api/events ------------------------------------------------------------------

async def test_the_event_log_pages_with_after(client, pool, forum):
    for i in range(4):
        r = await client.post(f"/api/forums/{forum}/threads", json={
            "title": f"T{i}", "body": "b", "guest_name": "g"})
        assert r.status_code == 201
    everything = await events_of(client, pool)
    assert len(everything) == 1 + 4 * 2
    positions = [e["position"] for e in everything]
    assert positions == sorted(positions) and len(set(positions)) == len(positions)
    paged, after = [], 0
    while True:
        r = await client.get("/api/events", params={"after": after, "limit": 3},
                             headers=OPERATOR)
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("application/json")
        page = r.json()["events"]
        assert len(page) <= 3
        if not page:
            break
        paged.extend(page)
        after = page[-1]["position"]
    assert paged == everything
    for event in everything:
        assert set(event) >= {"position", "stream", "version", "type", "data", "recorded_at"}
        assert event["recorded_at"].endswith("Z")
    r = await client.get("/api/events", headers=OPERATOR)
    assert r.json()["events"] == everything  # no after: from the start


async def test_the_event_log_hides_password_hashes(client, pool):
    await sign_up(client, unique_name("ann"))
    (registered,) = await events_of(client, pool)
    assert registered["type"] == "member_registered"
    assert "password_hash" not in registered["data"]  # not in the log at all any more
    assert "correct horse" not in json.dumps(registered)


async def test_the_event_log_needs_the_operator_and_sane_queries(client, pool):
    await refused(pool, client.get("/api/events"), 401, "no token")
    await refused(pool, client.get("/api/events", headers=await sign_up(client)), 403,
                  "member")
    await refused(pool, client.get("/api/events", headers=await moderator_headers(client)), 403,
                  "moderator")
    for query in ["after=-1", "after=abc", "limit=0", "limit=-5", "limit=100000",
                  "after=99999999999999999999999999"]:
        await refused(pool, client.get(f"/api/events?{query}", headers=OPERATOR), case=query)


# -- pages and ids in the reads next to the write routes ------------------------------

async def test_bad_pages_and_huge_ids_in_reads_are_4xx_not_500(client, pool, forum, thread,
                                                               project):
    await project()
    for page in ["-1", "0", "abc", "99999999999999999999"]:
        for url in (f"/api/forums/{forum}/threads", f"/api/threads/{thread['thread_id']}",
                    "/api/unanswered"):
            await refused(pool, client.get(f"{url}?page={page}"), case=(url, page))
    for thread_id in HUGE_IDS:
        await refused(pool, client.get(f"/api/threads/{thread_id}"), 404, case=thread_id)
        await refused(pool, client.get(f"/api/posts/{thread_id}"), 404, case=thread_id)


# -- Idempotency-Key ------------------------------------------------------------------

async def test_same_idempotency_key_and_body_answers_the_same_and_appends_once(client, pool,
                                                                              thread):
    url, key = f"/api/threads/{thread['thread_id']}/posts", unique_key()
    payload = {"body": "only once", "guest_name": "y"}
    first = await client.post(url, json=payload, headers={"Idempotency-Key": key})
    assert first.status_code == 201, first.text
    async with appends_nothing(pool):
        again = await client.post(url, json=payload, headers={"Idempotency-Key": key})
    assert again.status_code == first.status_code
    assert again.json() == first.json()
    bodies = [e["data"].get("body") for e in await events_of(client, pool)]
    assert bodies.count("only once") == 1


async def test_same_idempotency_key_with_another_body_is_422(client, pool, thread):
    url, key = f"/api/threads/{thread['thread_id']}/posts", unique_key()
    r = await client.post(url, json={"body": "one", "guest_name": "y"},
                          headers={"Idempotency-Key": key})
    assert r.status_code == 201, r.text
    problem = await refused(pool, client.post(url, json={"body": "two", "guest_name": "y"},
                                              headers={"Idempotency-Key": key}), 422)
    assert "Idempotency-Key" in problem["detail"]


async def test_same_idempotency_key_on_another_route_is_422(client, pool, thread, forum):
    key = unique_key()
    payload = {"body": "one", "guest_name": "y"}
    r = await client.post(f"/api/threads/{thread['thread_id']}/posts", json=payload,
                          headers={"Idempotency-Key": key})
    assert r.status_code == 201, r.text
    await refused(pool, client.post(f"/api/forums/{forum}/threads",
                                    json={"title": "T", **payload},
                                    headers={"Idempotency-Key": key}), 422)


async def test_idempotent_replay_on_every_write_route(client, pool, thread, forum):
    routes = [
        ("/api/forums", {"slug": unique_slug(), "title": "T"}, OPERATOR),
        (f"/api/forums/{forum}/threads", {"title": "T", "body": "b", "guest_name": "g"}, {}),
        (f"/api/threads/{thread['thread_id']}/posts", {"body": "b", "guest_name": "g"}, {}),
        (f"/api/threads/{thread['thread_id']}/bump", {"guest_name": thread["starter"]},
         thread["as_starter"]),
    ]
    for url, payload, headers in routes:
        headers = {**headers, "Idempotency-Key": unique_key()}
        before = await log_size(pool)
        first = await client.post(url, json=payload, headers=headers)
        assert first.status_code in (200, 201), first.text
        middle = await log_size(pool)
        assert middle > before
        again = await client.post(url, json=payload, headers=headers)
        assert (again.status_code, again.json()) == (first.status_code, first.json()), url
        assert again.headers["x-position"] == first.headers["x-position"]
        assert await log_size(pool) == middle, url


async def test_bad_idempotency_keys_are_4xx(client, pool, thread):
    for key in ["", "x" * 256, "tab\there"]:
        await refused(pool, client.post(f"/api/threads/{thread['thread_id']}/posts",
                                        json={"body": "b", "guest_name": "y"},
                                        headers={"Idempotency-Key": key}), case=key)


async def test_the_operator_makes_a_member_a_moderator_who_can_then_lock_threads(client, project):
    await client.post("/api/forums", json={"slug": "mods", "title": "Mods"}, headers=OPERATOR)
    assert (await client.post("/api/users", json={"name": "Mia", "password": "pass-word-1"})
            ).status_code == 201
    started = await client.post("/api/forums/mods/threads",
                                json={"title": "T", "body": "b", "guest_name": "gus"})
    thread = started.json()["thread_id"]

    def bearer(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    async def sign_in() -> str:
        answer = await client.post("/api/sessions", json={"name": "Mia", "password": "pass-word-1"})
        return answer.json()["token"]

    member = await sign_in()
    assert (await client.post(f"/api/threads/{thread}/lock", headers=bearer(member))
            ).status_code == 403
    refused = await client.put("/api/users/Mia/role", json={"role": "moderator"},
                               headers=bearer(member))
    assert refused.status_code == 403
    assert (await client.put("/api/users/Mia/role", json={"role": "king"}, headers=OPERATOR)
            ).status_code == 422
    assert (await client.put("/api/users/nobody/role", json={"role": "moderator"},
                             headers=OPERATOR)).status_code == 404
    promoted = await client.put("/api/users/Mia/role", json={"role": "moderator"},
                                headers=OPERATOR)
    assert promoted.status_code == 200, promoted.text
    assert promoted.json()["role"] == "moderator"

    moderator = await sign_in()
    locked = await client.post(f"/api/threads/{thread}/lock", headers=bearer(moderator))
    assert locked.status_code == 200, locked.text
