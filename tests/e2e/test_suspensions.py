"""Suspensions through HTTP: moderators decide (events in the member's stream), a
suspended member can neither sign in nor write, and a suspension ends by being lifted or
by its end passing."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx
import pytest_asyncio

from tests.conftest import OPERATOR
from tests.e2e import test_sessions
from tests.e2e.test_sessions import (
    PASSWORD,
    register,
    reply,
    set_role,
    sign_in,
)
from tests.forms import submit

thread_id = test_sessions.thread_id  # the fixture: a section with a guest's thread


async def count_events(pool) -> int:  # type: ignore[no-untyped-def]
    return int(await pool.fetchval("SELECT count(*) FROM events"))



@pytest_asyncio.fixture
async def moderator(client: httpx.AsyncClient) -> dict[str, str]:
    name = await register(client)
    await set_role(client, name, "moderator")
    return await sign_in(client, name)


def iso(when: datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")


async def suspend(client: httpx.AsyncClient, name: str, headers: dict[str, str],
                  **body: object) -> httpx.Response:
    return await client.post(f"/api/users/{name}/suspension",
                             json={"reason": "spamming links", **body}, headers=headers)


async def test_a_suspended_member_can_neither_write_nor_sign_in_until_lifted(
        client, pool, thread_id, moderator):
    name = await register(client)
    token = await sign_in(client, name)
    until = datetime.now(UTC).replace(microsecond=0) + timedelta(days=3)
    r = await suspend(client, name, moderator, until=iso(until))
    assert r.status_code == 200, r.text
    assert r.json()["name"] == name and r.json()["suspended"] is True
    assert r.headers["X-Position"]

    before = await count_events(pool)
    r = await reply(client, thread_id, token)
    assert r.status_code == 403, r.text
    detail = r.json()["detail"]
    assert "spamming links" in detail and iso(until) in detail
    r = await client.post("/api/sessions", json={"name": name, "password": PASSWORD})
    assert r.status_code == 403 and "spamming links" in r.json()["detail"]
    r = await client.post("/api/sessions", json={"name": name, "password": "wrong password"})
    assert r.status_code == 401  # without the password, nothing about the suspension
    assert await count_events(pool) == before
    assert (await client.delete("/api/sessions", headers=token)).status_code == 204
    token = None

    r = await client.delete(f"/api/users/{name}/suspension", headers=moderator)
    assert r.status_code == 200 and r.json()["suspended"] is False, r.text
    token = await sign_in(client, name)
    assert (await reply(client, thread_id, token)).status_code == 201
    r = await client.delete(f"/api/users/{name}/suspension", headers=moderator)
    assert r.status_code == 409


async def test_an_open_ended_suspension_says_so_and_a_new_one_replaces_it(
        client, thread_id, moderator):
    name = await register(client)
    token = await sign_in(client, name)
    r = await suspend(client, name, moderator)
    assert r.status_code == 200 and r.json()["until"] is None, r.text
    r = await reply(client, thread_id, token)
    assert r.status_code == 403 and "until it is lifted" in r.json()["detail"]
    r = await suspend(client, name, moderator, reason="second thoughts",
                      until=iso(datetime.now(UTC) + timedelta(hours=1)))
    assert r.status_code == 200, r.text
    r = await reply(client, thread_id, token)
    assert r.status_code == 403 and "second thoughts" in r.json()["detail"]


async def test_a_suspension_whose_end_has_passed_is_over_without_any_event(
        client, pool, thread_id, moderator):
    name = await register(client)
    token = await sign_in(client, name)
    until = datetime.now(UTC) + timedelta(seconds=2)
    assert (await suspend(client, name, moderator, until=iso(until))).status_code == 200
    assert (await reply(client, thread_id, token)).status_code == 403
    listed = (await client.get("/api/suspensions", headers=moderator)).json()["suspensions"]
    assert [s["name"] for s in listed] == [name]
    before = await count_events(pool)
    await asyncio.sleep(max(0.0, (until - datetime.now(UTC)).total_seconds()) + 0.3)
    assert await count_events(pool) == before
    assert (await client.get("/api/suspensions", headers=moderator)).json()["suspensions"] == []
    assert (await reply(client, thread_id, token)).status_code == 201
    await sign_in(client, name)
    r = await client.delete(f"/api/users/{name}/suspension", headers=moderator)
    assert r.status_code == 409, r.text


async def test_who_may_suspend_whom(client, pool, moderator):
    member = await register(client)
    other_moderator = await register(client)
    await set_role(client, other_moderator, "moderator")
    member_token = await sign_in(client, await register(client))
    before = await count_events(pool)
    for headers, target, body, status in [
        ({}, member, {}, 401),
        (member_token, member, {}, 403),
        (moderator, other_moderator, {}, 403),
        (moderator, "operator", {}, 403),
        (moderator, "nobody-here", {}, 404),
        (moderator, member, {"reason": "   "}, 422),
        (moderator, member, {"reason": "x" * 501}, 422),
        (moderator, member, {"reason": "\u0000\u200b\ufeff\n"}, 422),
        (moderator, member, {"reason": 5}, 400),
        (moderator, member, {"until": "2001-01-01T00:00:00Z"}, 422),
        (moderator, member, {"until": "2999-01-01T00:00:00"}, 422),
        (moderator, member, {"until": "tomorrow"}, 400),
        (moderator, member, {"reasons": "typo"}, 400),
    ]:
        r = await suspend(client, target, headers, **body)
        assert r.status_code == status, (target, body, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["detail"]
    for headers, status in [({}, 401), (member_token, 403)]:
        r = await client.delete(f"/api/users/{member}/suspension", headers=headers)
        assert r.status_code == status, r.text
    assert await count_events(pool) == before
    # The operator may suspend a moderator, and only the operator may lift that.
    assert (await suspend(client, other_moderator, OPERATOR)).status_code == 200
    r = await client.delete(f"/api/users/{other_moderator}/suspension", headers=moderator)
    assert r.status_code == 403
    r = await client.delete(f"/api/users/{other_moderator}/suspension", headers=OPERATOR)
    assert r.status_code == 200


async def test_a_suspended_moderator_still_reads_but_cannot_moderate(client, thread_id):
    name = await register(client)
    await set_role(client, name, "moderator")
    token = await sign_in(client, name)
    assert (await suspend(client, name, OPERATOR)).status_code == 200
    r = await client.post(f"/api/threads/{thread_id}/lock", headers=token)
    assert r.status_code == 403 and "spamming links" in r.json()["detail"]
    assert (await suspend(client, await register(client), token)).status_code == 403
    r = await client.get("/api/suspensions", headers=token)
    assert r.status_code == 200 and r.json()["suspensions"][0]["name"] == name


async def test_moderators_list_current_suspensions(client, moderator):
    names = [await register(client) for _ in range(3)]
    until = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
    for name in names:
        assert (await suspend(client, name, moderator, until=iso(until))).status_code == 200
    r = await client.delete(f"/api/users/{names[1]}/suspension", headers=moderator)
    assert r.status_code == 200
    r = await client.get("/api/suspensions", headers=OPERATOR)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["page"], body["pages"]) == (1, 1)
    assert [s["name"] for s in body["suspensions"]] == [names[2], names[0]]
    first = body["suspensions"][0]
    assert set(first) == {"name", "until", "reason", "by", "since"}
    assert first["reason"] == "spamming links" and first["until"] == iso(until)
    assert first["by"] and first["since"].endswith("Z")
    member = await sign_in(client, await register(client))
    assert (await client.get("/api/suspensions", headers=member)).status_code == 403
    assert (await client.get("/api/suspensions")).status_code == 401
    assert (await client.get("/api/suspensions?page=0", headers=OPERATOR)).status_code == 400


async def test_a_suspended_member_is_refused_by_the_html_forms_too(client, thread_id,
                                                                   project):
    name = await register(client)
    await project()
    r = await submit(client, "/login", "/login", follow_redirects=False,
                          data={"name": name, "password": PASSWORD})
    assert r.status_code == 303
    assert (await suspend(client, name, OPERATOR)).status_code == 200
    r = await submit(client, f"/threads/{thread_id}", f"/threads/{thread_id}/reply",
                          follow_redirects=False, data={"body": "let me"})
    assert r.status_code == 403 and "spamming links" in r.text
    r = await submit(client, "/login", "/login", follow_redirects=False,
                          data={"name": name, "password": PASSWORD})
    assert r.status_code == 403 and "spamming links" in r.text
