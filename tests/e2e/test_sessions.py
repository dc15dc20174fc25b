"""Sessions through HTTP: authority is the member's current role and status (invariant 7),
tokens are revocable and expire, and password hashing never stalls the event loop."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest_asyncio

from service.settings import Settings
from tests.builders import unique_name, unique_slug
from tests.conftest import OPERATOR
from tests.forms import submit

PASSWORD = "correct horse"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def register(client: httpx.AsyncClient, name: str | None = None) -> str:
    name = name or unique_name("m")
    r = await client.post("/api/users", json={"name": name, "password": PASSWORD})
    assert r.status_code == 201, r.text
    return name


async def sign_in(client: httpx.AsyncClient, name: str) -> dict[str, str]:
    r = await client.post("/api/sessions", json={"name": name, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return bearer(r.json()["token"])


async def set_role(client: httpx.AsyncClient, name: str, role: str) -> None:
    r = await client.put(f"/api/users/{name}/role", json={"role": role}, headers=OPERATOR)
    assert r.status_code == 200, r.text


@pytest_asyncio.fixture
async def thread_id(client: httpx.AsyncClient) -> int:
    slug = unique_slug()
    r = await client.post("/api/forums", json={"slug": slug, "title": "S"}, headers=OPERATOR)
    assert r.status_code == 201, r.text
    r = await client.post(f"/api/forums/{slug}/threads",
                          json={"title": "T", "body": "b", "guest_name": "gus"})
    assert r.status_code == 201, r.text
    return int(r.json()["thread_id"])


async def lock(client: httpx.AsyncClient, thread: int, headers: dict[str, str]) -> int:
    r = await client.post(f"/api/threads/{thread}/lock", headers=headers)
    if r.status_code == 200:
        await client.post(f"/api/threads/{thread}/unlock", headers=OPERATOR)
    return r.status_code


async def reply(client: httpx.AsyncClient, thread: int, headers: dict[str, str]
                ) -> httpx.Response:
    return await client.post(f"/api/threads/{thread}/posts", json={"body": "hello"},
                             headers=headers)


# -- current role -------------------------------------------------------------------------

async def test_a_demoted_moderator_is_refused_moderation_on_the_very_next_request(
        client, thread_id):
    name = await register(client)
    await set_role(client, name, "moderator")
    token = await sign_in(client, name)
    assert await lock(client, thread_id, token) == 200
    await set_role(client, name, "member")
    assert await lock(client, thread_id, token) == 403
    r = await reply(client, thread_id, token)  # still a member's token
    assert r.status_code == 201, r.text


async def test_a_promoted_member_moderates_with_the_token_they_already_hold(client, thread_id):
    name = await register(client)
    token = await sign_in(client, name)
    assert await lock(client, thread_id, token) == 403
    await set_role(client, name, "moderator")
    assert await lock(client, thread_id, token) == 200


async def test_a_demotion_through_one_api_process_holds_in_another_at_once(
        client, settings, thread_id):
    """Each process keeps folded members; the version read per request keeps them honest."""
    from litestar.testing import AsyncTestClient

    from service.app import create_app

    name = await register(client)
    await set_role(client, name, "moderator")
    token = await sign_in(client, name)
    async with AsyncTestClient(app=create_app(settings)) as other:
        assert await lock(other, thread_id, token) == 200  # other now holds the moderator
        await set_role(client, name, "member")
        assert await lock(other, thread_id, token) == 403
        await set_role(client, name, "moderator")
        assert await lock(other, thread_id, token) == 200


# -- revocation ---------------------------------------------------------------------------

async def test_signing_out_revokes_the_token_it_is_sent_with_and_no_other(client, thread_id):
    name = await register(client)
    first, second = await sign_in(client, name), await sign_in(client, name)
    r = await client.delete("/api/sessions", headers=first)
    assert r.status_code == 204, r.text
    r = await reply(client, thread_id, first)
    assert r.status_code == 401 and "signed out" in r.json()["detail"]
    assert (await client.delete("/api/sessions", headers=first)).status_code == 401
    assert (await reply(client, thread_id, second)).status_code == 201
    assert (await client.delete("/api/sessions")).status_code == 401
    assert (await client.delete("/api/sessions", headers=OPERATOR)).status_code == 403


async def test_revoking_all_of_a_members_sessions(client, thread_id):
    name = await register(client)
    tokens = [await sign_in(client, name) for _ in range(3)]
    other = await sign_in(client, await register(client))
    moderator = await register(client)
    await set_role(client, moderator, "moderator")

    r = await client.delete(f"/api/users/{name}/sessions", headers=other)
    assert r.status_code == 403, r.text
    r = await client.delete(f"/api/users/{name}/sessions",
                            headers=await sign_in(client, moderator))
    assert r.status_code == 403, r.text
    assert (await client.delete(f"/api/users/{name}/sessions")).status_code == 401
    r = await client.delete(f"/api/users/{name.upper()}/sessions", headers=tokens[0])
    assert r.status_code == 200 and r.json()["revoked"] == 3, r.text
    for token in tokens:
        assert (await reply(client, thread_id, token)).status_code == 401
    assert (await reply(client, thread_id, other)).status_code == 201

    again = await sign_in(client, name)
    r = await client.delete(f"/api/users/{name}/sessions", headers=OPERATOR)
    assert r.status_code == 200 and r.json()["revoked"] == 1, r.text
    assert (await reply(client, thread_id, again)).status_code == 401
    r = await client.delete("/api/users/nobody-at-all/sessions", headers=OPERATOR)
    assert r.status_code == 404


async def test_logout_revokes_the_pages_session(client, thread_id, project):
    name = await register(client)
    await project()
    r = await submit(client, "/login", "/login", follow_redirects=False,
                          data={"name": name, "password": PASSWORD})
    assert r.status_code == 303, r.text
    token = client.cookies["forum_token"]
    assert (await reply(client, thread_id, bearer(token))).status_code == 201
    r = await submit(client, "/", "/logout", {}, follow_redirects=False)
    assert r.status_code == 303
    assert "forum_token" not in client.cookies
    r = await reply(client, thread_id, bearer(token))
    assert r.status_code == 401, r.text
    client.cookies.set("forum_token", token)  # a kept copy of the cookie is a guest now
    assert f"Account: {name}" not in (await client.get("/")).text


async def test_the_register_form_signs_in_with_a_session(client, pool):
    name = unique_name("reg")
    r = await submit(client, "/register", "/register", follow_redirects=False,
                          data={"name": name, "password": PASSWORD})
    assert r.status_code == 303, r.text
    token = client.cookies["forum_token"]
    row = await pool.fetchrow("SELECT member FROM sessions WHERE token_hash = $1",
                              hashlib.sha256(token.encode()).digest())
    assert row is not None and row["member"] == f"member-{name.casefold()}"


# -- what is refused ----------------------------------------------------------------------

async def insert_session(pool: asyncpg.Pool, member: str, *, created: str = "now()",
                         expires: str = "now() + interval '1 day'") -> dict[str, str]:
    token = secrets.token_urlsafe(32)
    await pool.execute(
        f"INSERT INTO sessions (token_hash, member, created_at, expires_at)"
        f" VALUES ($1, $2, {created}, {expires})",
        hashlib.sha256(token.encode()).digest(), member)
    return bearer(token)


async def test_expired_unknown_future_and_forged_tokens_are_401(client, pool, settings,
                                                                 thread_id):
    name = await register(client)
    token = await sign_in(client, name)
    row = await pool.fetchrow("SELECT created_at, expires_at FROM sessions")
    assert (row["expires_at"] - row["created_at"]).total_seconds() == settings.session_ttl
    await pool.execute("UPDATE sessions SET expires_at = now() - interval '1 second'")
    r = await reply(client, thread_id, token)
    assert r.status_code == 401 and "expired" in r.json()["detail"]

    ghost = await insert_session(pool, "member-nobody-here")
    r = await reply(client, thread_id, ghost)
    assert r.status_code == 401 and "does not exist" in r.json()["detail"]
    future = await insert_session(pool, f"member-{name.casefold()}",
                                  created="now() + interval '1 hour'",
                                  expires="now() + interval '2 days'")
    assert (await reply(client, thread_id, future)).status_code == 401
    fine = await insert_session(pool, f"member-{name.casefold()}")
    assert (await reply(client, thread_id, fine)).status_code == 201

    # Forged: random tokens, and tokens of the old signed format.
    for forged in (secrets.token_urlsafe(32), "YW5u.moderator.1700000000.c2lnbmF0dXJl",
                   "x" * 5000, "a.b.c"):
        r = await reply(client, thread_id, bearer(forged))
        assert r.status_code == 401, forged
        assert r.headers["content-type"].startswith("application/problem+json")


async def test_only_a_hash_of_each_token_is_stored(client, pool):
    name = await register(client)
    token = (await sign_in(client, name))["Authorization"].split()[1]
    rows = await pool.fetch("SELECT * FROM sessions")
    assert len(rows) == 1
    assert bytes(rows[0]["token_hash"]) == hashlib.sha256(token.encode()).digest()
    assert token not in repr([dict(r) for r in rows])


# -- hashing off the event loop -----------------------------------------------------------

@pytest_asyncio.fixture
async def same_loop_client(settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, Any]]:
    """The app on this test's own event loop (the test client runs it on another thread,
    one request at a time), so requests really run concurrently in one loop."""
    from service.app import create_app
    from service.lifespan import services

    app = create_app(settings)
    async with services(settings) as svc:
        app.state.services = svc
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            yield http, svc


async def test_sign_ins_hash_off_the_loop_a_few_at_a_time_while_health_answers(
        same_loop_client):
    http, svc = same_loop_client
    name = await register(http)
    real = svc.handlers.verify_password
    running, most = 0, 0
    guard = threading.Lock()

    def slow_verify(stored: str | None, given: str) -> bool:
        """Blocks its thread for 1 s: on the event loop it would stall every request."""
        nonlocal running, most
        with guard:
            running += 1
            most = max(most, running)
        time.sleep(1.0)
        with guard:
            running -= 1
        result: bool = real(stored, given)
        return result

    svc.handlers.verify_password = slow_verify
    started = time.monotonic()
    sign_ins = [asyncio.create_task(http.post(
        "/api/sessions", json={"name": name if i % 2 else "nobody", "password": PASSWORD}))
        for i in range(6)]
    await asyncio.sleep(0.1)  # the sign-ins are hashing now
    health = await http.get("/health")
    took = time.monotonic() - started - 0.1
    answers = await asyncio.gather(*sign_ins)
    assert health.status_code == 200
    assert took < 0.6, f"/health took {took:.2f} s while passwords were hashed"
    assert sorted(a.status_code for a in answers) == [200] * 3 + [401] * 3
    assert 1 <= most <= 2  # bounded: the rest wait their turn


async def test_pages_with_a_cookie_still_read_while_postgresql_is_away(
        client, thread_id, project, monkeypatch):
    from events import StoreUnavailableError

    name = await register(client)
    await project()
    r = await submit(client, "/login", "/login", follow_redirects=False,
                          data={"name": name, "password": PASSWORD})
    assert r.status_code == 303
    sessions = client.app.state.services.auth.sessions

    async def away(token: str) -> None:
        raise StoreUnavailableError("connection refused")

    monkeypatch.setattr(sessions, "resolve", away)
    r = await client.get("/")
    assert r.status_code == 200 and "Account: Guest" in r.text
    r = await submit(client, f"/threads/{thread_id}", f"/threads/{thread_id}/reply",
                          follow_redirects=False, data={"body": "now"})
    assert r.status_code == 503
    r = await reply(client, thread_id, bearer(client.cookies["forum_token"]))
    assert r.status_code == 503 and r.headers["content-type"].startswith(
        "application/problem+json")
