"""Abuse limits through HTTP: bursts cut off with 429 + Retry-After per address, per guest
identity and per member; trusted and untrusted X-Forwarded-For; sign-in back-off;
registrations per address; the HTML forms; FORUM_RATE_LIMITS=off.

The in-process app is reached from chosen TCP peers (tests/e2e/peers.py); one test runs
the real ``forum serve`` behind a "proxy" on 127.0.0.1."""

from __future__ import annotations

import asyncio
import html

import httpx
import msgspec
import pytest

from tests.builders import unique_name, unique_slug
from tests.conftest import OPERATOR, Stack
from tests.e2e.peers import board, problem, retry_after
from tests.forms import form_fields, origin, submit

PROXY = "10.9.9.9"  # the trusted reverse proxy in these tests
NO_OTHER_LIMITS = {  # the one limit a test looks at is set by the test itself
    "limit_thread_guest": "none", "limit_thread": "none", "limit_reply_guest": "none",
    "limit_reply": "none", "limit_bump": "none", "limit_edit": "none", "limit_like": "none",
    "limit_write": "none", "limit_address": "none", "limit_register": "none",
    "limit_signin": "none", "limit_signin_failures_name": "none",
    "limit_signin_failures_address": "none", "limit_search": "none",
}


def limits(**rules: str) -> dict[str, str]:
    return {"rate_limits": "on", "trusted_proxies": PROXY, **NO_OTHER_LIMITS, **rules}


async def thread_in_new_section(client: httpx.AsyncClient) -> int:
    slug = unique_slug()
    r = await client.post("/api/forums", json={"slug": slug, "title": "Limits"},
                          headers=OPERATOR)
    assert r.status_code == 201, r.text
    r = await client.post(f"/api/forums/{slug}/threads", headers=OPERATOR,
                          json={"title": "Limited", "body": "first"})
    assert r.status_code == 201, r.text
    return int(r.json()["thread_id"])


async def member(client: httpx.AsyncClient, name: str | None = None,
                 password: str = "correct horse") -> dict[str, str]:
    name = name or unique_name("mem")
    r = await client.post("/api/users", json={"name": name, "password": password})
    assert r.status_code == 201, r.text
    r = await client.post("/api/sessions", json={"name": name, "password": password})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


def reply(client: httpx.AsyncClient, thread: int, guest: str | None = None,
          **headers: str):  # type: ignore[no-untyped-def]
    body = {"body": "a reply"} | ({"guest_name": guest} if guest else {})
    return client.post(f"/api/threads/{thread}/posts", json=body, headers=headers)


async def test_a_burst_of_guest_replies_from_one_address_is_cut_off_with_429_and_retry_after(
        settings, pool):
    async with board(settings, **limits(limit_reply_guest="3/minute")) as app:
        client = await app.peer("198.51.100.1")
        thread = await thread_in_new_section(client)
        for i in range(3):  # a new guest name each time: the address still counts them all
            assert (await reply(client, thread, f"burst{i}")).status_code == 201
        before = await pool.fetchval("SELECT count(*) FROM events")
        refused = await reply(client, thread, "burst9")
        assert 1 <= retry_after(refused) <= 60
        assert "too many posts" in refused.json()["detail"]
        assert await pool.fetchval("SELECT count(*) FROM events") == before
        # Another address is not cut off.
        other = await app.peer("198.51.100.2")
        assert (await reply(other, thread, "elsewhere")).status_code == 201


async def test_one_guest_name_is_limited_from_every_address(settings):
    async with board(settings, **limits(limit_reply_guest="2/minute")) as app:
        proxy = await app.peer(PROXY)
        thread = await thread_in_new_section(proxy)
        name = unique_name("g")
        for i in range(2):
            answer = await reply(proxy, thread, name, **{"X-Forwarded-For": f"203.0.113.{i}"})
            assert answer.status_code == 201, answer.text
        refused = await reply(proxy, thread, name, **{"X-Forwarded-For": "203.0.113.50"})
        retry_after(refused)
        # Another guest at that fresh address is fine.
        ok = await reply(proxy, thread, unique_name("g"), **{"X-Forwarded-For": "203.0.113.50"})
        assert ok.status_code == 201, ok.text


async def test_a_member_is_limited_per_member_and_other_members_are_not(settings):
    async with board(settings, **limits(limit_reply="2/minute")) as app:
        proxy = await app.peer(PROXY)
        thread = await thread_in_new_section(proxy)
        ann, bob = await member(proxy), await member(proxy)
        for i in range(2):
            answer = await reply(proxy, thread, **ann, **{"X-Forwarded-For": f"192.0.2.{i}"})
            assert answer.status_code == 201, answer.text
        retry_after(await reply(proxy, thread, **ann, **{"X-Forwarded-For": "192.0.2.77"}))
        assert (await reply(proxy, thread, **bob)).status_code == 201


async def test_independent_addresses_are_not_cut_off_by_each_other(settings):
    async with board(settings, **limits(limit_reply_guest="2/minute")) as app:
        proxy = await app.peer(PROXY)
        thread = await thread_in_new_section(proxy)
        for j in range(2):
            for i in range(6):
                answer = await reply(proxy, thread, f"crowd{i}x{j}",
                                     **{"X-Forwarded-For": f"203.0.113.{i}"})
                assert answer.status_code == 201, (i, j, answer.text)


async def test_an_untrusted_forwarded_for_is_ignored(settings):
    async with board(settings, **limits(limit_reply_guest="2/minute")) as app:
        client = await app.peer("198.51.100.9")  # not the trusted proxy
        thread = await thread_in_new_section(client)
        for i in range(2):
            answer = await reply(client, thread, f"liar{i}", **{"X-Forwarded-For": f"1.1.1.{i}"})
            assert answer.status_code == 201
        retry_after(await reply(client, thread, "liar9", **{"X-Forwarded-For": "1.1.1.200"}))


async def test_a_trusted_proxy_chain_counts_the_last_untrusted_address(settings):
    """Whatever the client wrote left of the proxies' entries, and garbage, changes
    nothing: the address counted is the one the trusted proxy saw."""
    async with board(settings, **limits(limit_reply_guest="2/minute")) as app:
        proxy = await app.peer(PROXY)
        thread = await thread_in_new_section(proxy)
        forged = ["8.8.8.8", "garbage, 9.9.9.9", "[::1, 300.1.1.1, 7.7.7.7"]
        for i, prefix in enumerate(forged[:2]):
            xff = f"{prefix}, 203.0.113.70, {PROXY}"
            assert (await reply(proxy, thread, f"chain{i}",
                                **{"X-Forwarded-For": xff})).status_code == 201
        xff = f"{forged[2]}, 203.0.113.70, not-an-address"
        retry_after(await reply(proxy, thread, "chain9", **{"X-Forwarded-For": xff}))


async def test_moderators_and_the_operator_are_not_limited(settings):
    async with board(settings, **limits(limit_reply="1/minute", limit_write="1/minute",
                                        limit_address="2/minute")) as app:
        client = await app.peer("198.51.100.3")
        thread = await thread_in_new_section(client)
        name = unique_name("mod")
        await member(client, name)
        r = await client.put(f"/api/users/{name}/role", json={"role": "moderator"},
                             headers=OPERATOR)
        assert r.status_code == 200, r.text
        r = await client.post("/api/sessions", json={"name": name, "password": "correct horse"})
        moderator = {"Authorization": f"Bearer {r.json()['token']}"}
        for who in (OPERATOR, moderator):
            for _ in range(4):
                assert (await reply(client, thread, **who)).status_code == 201
            r = await client.post("/api/forums", headers=who,
                                  json={"slug": unique_slug(), "title": "More"})
            assert r.status_code == 201, r.text


async def test_a_limit_holds_across_api_processes(settings):
    """Two apps (as two API processes) share the counters in Redis."""
    limited = limits(limit_reply_guest="4/minute")
    async with board(settings, **limited) as one, board(settings, **limited) as two:
        first, second = await one.peer("198.51.100.4"), await two.peer("198.51.100.4")
        thread = await thread_in_new_section(first)
        answers = await asyncio.gather(*(reply((first, second)[i % 2], thread, f"p{i}")
                                         for i in range(8)))
        assert sorted(a.status_code for a in answers) == [201] * 4 + [429] * 4


async def test_sign_in_failures_back_off_then_refuse_for_a_while(settings):
    rules = limits(limit_signin_failures_name="2/2 seconds;3/minute")
    async with board(settings, **rules) as app:
        client = await app.peer("198.51.100.5")
        name = unique_name("ann")
        await member(client, name)

        def attempt(password: str):  # type: ignore[no-untyped-def]
            return client.post("/api/sessions", json={"name": name, "password": password})

        for _ in range(2):
            problem(await attempt("wrong"), 401)
        first_wait = retry_after(await attempt("correct horse"))  # even the right password
        assert first_wait <= 2
        assert "failed sign-ins" in (await attempt("wrong")).json()["detail"]
        await asyncio.sleep(first_wait + 0.2)
        problem(await attempt("wrong"), 401)  # allowed again, and wrong: the third failure
        second_wait = retry_after(await attempt("correct horse"))
        assert second_wait > first_wait and second_wait > 30  # it grew: refused for a while
        # Another name from the same address is not concerned.
        other = unique_name("bob")
        await member(client, other)


async def test_a_successful_sign_in_forgives_the_name_but_not_the_address(settings):
    rules = limits(limit_signin_failures_name="2/minute",
                   limit_signin_failures_address="3/minute")
    async with board(settings, **rules) as app:
        client = await app.peer("198.51.100.6")
        ann, bob = unique_name("ann"), unique_name("bob")
        await member(client, ann)  # signs in once: a success
        await member(client, bob)

        def attempt(name: str, password: str):  # type: ignore[no-untyped-def]
            return client.post("/api/sessions", json={"name": name, "password": password})

        problem(await attempt(ann, "wrong"), 401)
        assert (await attempt(ann, "correct horse")).status_code == 200  # forgives ann
        problem(await attempt(ann, "wrong"), 401)  # 1 for ann, 2 for the address
        problem(await attempt(bob, "wrong"), 401)  # 3 for the address
        retry_after(await attempt(bob, "correct horse"))
        retry_after(await attempt(ann, "correct horse"))
        # From another address ann is fine: her own count is 1.
        elsewhere = await app.peer("198.51.100.66")
        assert (await elsewhere.post("/api/sessions", json={
            "name": ann, "password": "correct horse"})).status_code == 200


async def test_registrations_are_limited_per_address(settings):
    async with board(settings, **limits(limit_register="2/hour")) as app:
        client = await app.peer("198.51.100.7")
        for _ in range(2):
            r = await client.post("/api/users", json={"name": unique_name("r"),
                                                      "password": "correct horse"})
            assert r.status_code == 201, r.text
        refused = await client.post("/api/users", json={"name": unique_name("r"),
                                                        "password": "correct horse"})
        assert retry_after(refused) > 3000
        assert "too many registrations" in refused.json()["detail"]
        # The HTML form says the same and keeps the name.
        name = unique_name("form")
        page = await submit(client, "/register", "/register",
                            {"name": name, "password": "correct horse"})
        assert page.status_code == 429 and "too many registrations" in page.text.lower()
        assert f'value="{name}"' in page.text
        other = await app.peer("198.51.100.8")
        r = await other.post("/api/users", json={"name": unique_name("r"),
                                                 "password": "correct horse"})
        assert r.status_code == 201, r.text


async def test_html_forms_refused_with_429_show_the_message_and_keep_the_draft(settings,
                                                                               project):
    rules = limits(limit_reply_guest="1/minute", limit_thread_guest="1/minute",
                   limit_signin_failures_name="1/minute")
    async with board(settings, **rules) as app:
        client = await app.peer("198.51.100.10")
        thread = await thread_in_new_section(client)
        await project()  # a refused form shows its page again: the read models must be there
        r = await submit(client, f"/threads/{thread}", f"/threads/{thread}/reply",
                         {"body": "first words", "guest_name": "writer"})
        assert r.status_code == 303, r.text
        draft = "My second <long> reply, typed with care"
        r = await submit(client, f"/threads/{thread}", f"/threads/{thread}/reply",
                         {"body": draft, "guest_name": "writer"})
        assert r.status_code == 429
        assert "Too many posts in a short time" in html.unescape(r.text)
        assert html.escape(draft, quote=False) in r.text and 'value="writer"' in r.text

        slug = (await client.get(f"/api/threads/{thread}")).json()["thread"]["forum"]
        for expected in (303, 429):
            r = await submit(client, f"/forums/{slug}", f"/forums/{slug}/threads",
                             {"title": "Kept title", "body": "kept body",
                              "guest_name": "writer2"})
            assert r.status_code == expected, r.text
        assert "kept body</textarea>" in r.text and "Kept title" in r.text

        name = unique_name("ann")
        await member(client, name)
        r = await submit(client, "/login", "/login", {"name": name, "password": "wrong"})
        assert r.status_code == 400
        r = await submit(client, "/login", "/login",
                         {"name": name, "password": "correct horse"})
        assert r.status_code == 429 and r.headers["retry-after"].isdigit()
        assert "failed sign-ins" in html.unescape(r.text) and f'value="{name}"' in r.text


async def test_signing_in_from_a_refused_post_counts_as_any_sign_in(settings, project):
    """The sign-in that keeps a refused guest's draft (/threads/{id}/sign-in) is limited
    and counts failures with /login: refused, it shows the draft again with Retry-After."""
    rules = limits(limit_signin_failures_name="1/minute")
    async with board(settings, **rules) as app:
        client = await app.peer("198.51.100.11")
        thread = await thread_in_new_section(client)
        name = unique_name("ann")
        await member(client, name)
        await project()
        draft = "A reply worth <keeping>"
        r = await submit(client, f"/threads/{thread}", f"/threads/{thread}/reply",
                         {"body": draft, "guest_name": name})
        assert r.status_code == 409, r.text
        sign_in = form_fields(r.text, f"/threads/{thread}/sign-in")  # the draft rides along
        r = await submit(client, "/login", "/login", {"name": name, "password": "wrong"})
        assert r.status_code == 400
        r = await client.post(f"/threads/{thread}/sign-in", headers={"Origin": origin(client)},
                              data={**sign_in, "password": "correct horse"})
        assert r.status_code == 429 and r.headers["retry-after"].isdigit(), r.text
        assert "failed sign-ins" in html.unescape(r.text)
        assert html.escape(draft, quote=False) in r.text and "Account: Guest" in r.text


async def test_rate_limits_off_turns_every_limit_off(settings):
    tiny = {k: "1/hour" for k in NO_OTHER_LIMITS}
    async with board(settings, rate_limits="off", **tiny) as app:
        client = await app.peer("198.51.100.11")
        thread = await thread_in_new_section(client)
        for i in range(5):
            assert (await reply(client, thread, "sameguest")).status_code == 201, i
        for _ in range(3):
            problem(await client.post("/api/sessions", json={"name": "nobody",
                                                             "password": "x"}), 401)


async def test_bad_limit_settings_stop_the_app_from_starting(settings):
    from service.app import create_app

    for bad in ({"rate_limits": "maybe"}, {"limit_reply": "lots"},
                {"trusted_proxies": "10.0.0.0/33"}):
        with pytest.raises(Exception) as raised:
            async with create_app(msgspec.structs.replace(settings, **bad)).lifespan():
                pass
        assert f"FORUM_{next(iter(bad)).upper()}" in repr(raised.value), repr(raised.value)


@pytest.mark.e2e
async def test_a_served_api_counts_the_forwarded_address_of_a_trusted_proxy(
        stack_settings, tmp_path):
    """The real ``forum serve``: 127.0.0.1 is a trusted proxy here; uvicorn itself does
    not rewrite the peer, so the app sees and counts the forwarded address."""
    settings = msgspec.structs.replace(stack_settings, **{
        **limits(limit_reply_guest="2/minute"), "trusted_proxies": "127.0.0.1"})
    stack = Stack(settings, tmp_path)
    stack.start_api()
    try:
        async with httpx.AsyncClient(base_url=stack.url, timeout=10) as client:
            thread = await thread_in_new_section(client)
            for i in range(2):
                answer = await reply(client, thread, f"s{i}", **{"X-Forwarded-For": "203.0.113.1"})
                assert answer.status_code == 201, answer.text
            retry_after(await reply(client, thread, "s9", **{"X-Forwarded-For": "203.0.113.1"}))
            answer = await reply(client, thread, "s10", **{"X-Forwarded-For": "203.0.113.2"})
            assert answer.status_code == 201, answer.text
    finally:
        stack.stop()


async def test_ipv6_clients_are_counted_by_their_64_prefix(settings):
    async with board(settings, **limits(limit_reply_guest="2/minute")) as app:
        first = await app.peer("2001:db8:1:2::1")
        thread = await thread_in_new_section(first)
        assert (await reply(first, thread, "v6a")).status_code == 201
        assert (await reply(await app.peer("2001:db8:1:2::ffff"), thread, "v6b")
                ).status_code == 201
        retry_after(await reply(await app.peer("2001:db8:1:2:abcd::9"), thread, "v6c"))
        assert (await reply(await app.peer("2001:db8:1:3::1"), thread, "v6d")).status_code == 201


async def test_writes_go_through_when_the_counters_cannot_be_reached(settings, pool):
    """Redis down: the limits let writes through (they go to PostgreSQL) instead of
    failing them; reads degrade as they always do."""
    from tests.conftest import free_port

    down = f"redis://127.0.0.1:{free_port()}/0"
    async with board(settings, **limits(limit_thread_guest="1/minute"), redis_url=down) as app:
        client = await app.peer("198.51.100.12")
        slug = unique_slug()
        r = await client.post("/api/forums", json={"slug": slug, "title": "Down"},
                              headers=OPERATOR)
        assert r.status_code == 201, r.text
        for i in range(3):
            r = await client.post(f"/api/forums/{slug}/threads",
                                  json={"title": "t", "body": "b", "guest_name": f"d{i}"})
            assert r.status_code == 201, r.text


async def test_searches_from_one_address_are_limited_in_the_api_and_on_the_page(settings):
    async with board(settings, **limits(limit_search="2/minute")) as app:
        client = await app.peer("198.51.100.7")
        for _ in range(2):  # 503: no worker built the search model here; still counted
            assert (await client.get("/api/search", params={"q": "rome"})).status_code \
                in (200, 503)
        refused = await client.get("/api/search", params={"q": "rome"})
        assert 1 <= retry_after(refused) <= 60
        assert "too many searches" in refused.json()["detail"]
        page = await client.get("/search", params={"q": "rome"})
        assert page.status_code == 429 and "text/html" in page.headers["content-type"]
        assert (await client.get("/search")).status_code == 200  # an empty box is free
        other = await app.peer("198.51.100.8")
        assert (await other.get("/api/search", params={"q": "rome"})).status_code \
            in (200, 503)


async def test_the_post_controls_are_limited_as_their_api_routes(settings, project):
    """Edits (and deletions) and likes from the pages count against FORUM_LIMIT_EDIT and
    FORUM_LIMIT_LIKE, as the JSON routes do; a refused edit keeps its text."""
    async with board(settings, **limits(limit_edit="1/minute", limit_like="1/minute")) as app:
        client = await app.peer("198.51.100.11")
        thread = await thread_in_new_section(client)
        author = await member(client)
        r = await client.post(f"/api/threads/{thread}/posts", json={"body": "mine"},
                              headers=author)
        post = r.json()["post_id"]
        await project()
        client.cookies.set("forum_token", author["Authorization"].removeprefix("Bearer "))
        edit = f"/posts/{post}/edit"
        r = await submit(client, edit, edit, {"body": "better"})
        assert r.status_code == 303, r.text
        r = await submit(client, edit, edit, {"body": "best <draft>"})
        assert r.status_code == 429 and "best &lt;draft&gt;</textarea>" in r.text

        liker = await member(client)
        client.cookies.set("forum_token", liker["Authorization"].removeprefix("Bearer "))
        for action, expected in (("like", 303), ("unlike", 429)):
            r = await submit(client, f"/threads/{thread}", f"/posts/{post}/{action}", {})
            assert r.status_code == expected, (action, r.text[:300])
            await project()
        assert r.headers["content-type"].startswith("text/html")
