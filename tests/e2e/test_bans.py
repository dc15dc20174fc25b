"""Address bans through HTTP: made, listed and lifted by moderators and the operator; a
banned address cannot write, sign in or register (403 with the reason and the end) until
the ban ends or is lifted; reading stays open."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx

from tests.builders import unique_name, unique_slug
from tests.conftest import OPERATOR
from tests.e2e.peers import board, problem
from tests.forms import submit

PROXY = "10.9.9.9"


async def section_and_thread(client: httpx.AsyncClient) -> tuple[str, int]:
    slug = unique_slug()
    r = await client.post("/api/forums", json={"slug": slug, "title": "Bans"}, headers=OPERATOR)
    assert r.status_code == 201, r.text
    r = await client.post(f"/api/forums/{slug}/threads", headers=OPERATOR,
                          json={"title": "Banned?", "body": "first"})
    assert r.status_code == 201, r.text
    return slug, int(r.json()["thread_id"])


async def ban(client: httpx.AsyncClient, cidr: str, reason: str = "spam run",
              until: datetime | None = None) -> dict:  # type: ignore[type-arg]
    body: dict[str, object] = {"cidr": cidr, "reason": reason}
    if until is not None:
        body["until"] = until.isoformat().replace("+00:00", "Z")
    r = await client.post("/api/bans", json=body, headers=OPERATOR)
    assert r.status_code == 201, r.text
    made: dict = r.json()  # type: ignore[type-arg]
    assert r.headers["location"] == f"/api/bans/{made['id']}"
    return made


def reply(client: httpx.AsyncClient, thread: int, **headers: str):  # type: ignore[no-untyped-def]
    return client.post(f"/api/threads/{thread}/posts", headers=headers,
                       json={"body": "hello", "guest_name": unique_name("g")})


async def test_a_ban_refuses_writes_sign_in_and_registration_until_it_is_lifted(
        settings, pool, project):
    async with board(settings) as app:
        staff = await app.peer("192.0.2.200")
        slug, thread = await section_and_thread(staff)
        name = unique_name("ann")
        r = await staff.post("/api/users", json={"name": name, "password": "correct horse"})
        assert r.status_code == 201
        made = await ban(staff, "203.0.113.0/24", "spam run")
        assert made["cidr"] == "203.0.113.0/24" and made["until"] is None
        assert made["reason"] == "spam run" and made["created_by"] == "operator"
        assert made["created_at"].endswith("Z")

        banned = await app.peer("203.0.113.77")
        before = await pool.fetchval("SELECT count(*) FROM events")
        for answer in (
            await reply(banned, thread),
            await banned.post(f"/api/forums/{slug}/threads",
                              json={"title": "t", "body": "b", "guest_name": "gg"}),
            await banned.post("/api/sessions", json={"name": name, "password": "correct horse"}),
            await banned.post("/api/users", json={"name": unique_name("n"),
                                                  "password": "correct horse"}),
        ):
            detail = problem(answer, 403)["detail"]
            assert "banned" in detail and "spam run" in detail and "no end" in detail
        assert await pool.fetchval("SELECT count(*) FROM events") == before
        # Reading is open; other addresses write.
        await project()
        assert (await banned.get(f"/api/threads/{thread}")).status_code == 200
        assert (await reply(await app.peer("198.51.100.1"), thread)).status_code == 201

        # The HTML reply form: a 403 page with the reason.
        page = await submit(banned, f"/threads/{thread}", f"/threads/{thread}/reply",
                            {"body": "hi", "guest_name": "formguest"})
        assert page.status_code == 403 and "text/html" in page.headers["content-type"]
        assert "spam run" in page.text

        listed = (await staff.get("/api/bans", headers=OPERATOR)).json()
        assert listed["page"] == 1 and listed["pages"] == 1
        assert [b["id"] for b in listed["bans"]] == [made["id"]]

        lifted = await staff.delete(f"/api/bans/{made['id']}", headers=OPERATOR)
        assert lifted.status_code == 200 and lifted.json()["id"] == made["id"]
        assert (await reply(banned, thread)).status_code == 201
        r = await banned.post("/api/sessions", json={"name": name, "password": "correct horse"})
        assert r.status_code == 200
        problem(await staff.delete(f"/api/bans/{made['id']}", headers=OPERATOR), 404)
        assert (await staff.get("/api/bans", headers=OPERATOR)).json()["bans"] == []


async def test_a_ban_ends_by_itself(settings):
    async with board(settings) as app:
        staff = await app.peer("192.0.2.200")
        _, thread = await section_and_thread(staff)
        until = datetime.now(UTC) + timedelta(seconds=2)
        made = await ban(staff, "198.51.100.9", "cool off", until)
        assert made["cidr"] == "198.51.100.9/32"
        banned = await app.peer("198.51.100.9")
        detail = problem(await reply(banned, thread), 403)["detail"]
        assert "until " in detail and "cool off" in detail
        await asyncio.sleep(max(0.0, (until - datetime.now(UTC)).total_seconds()) + 0.3)
        assert (await reply(banned, thread)).status_code == 201
        assert (await staff.get("/api/bans", headers=OPERATOR)).json()["bans"] == []


async def test_a_ban_applies_to_the_forwarded_address_behind_a_trusted_proxy(settings):
    async with board(settings, trusted_proxies=PROXY) as app:
        proxy = await app.peer(PROXY)
        _, thread = await section_and_thread(proxy)
        await ban(proxy, "2001:db8:bad::/48", "v6 spam")
        refused = await reply(proxy, thread, **{"X-Forwarded-For": "2001:db8:bad::5"})
        assert "v6 spam" in problem(refused, 403)["detail"]
        assert (await reply(proxy, thread, **{"X-Forwarded-For": "2001:db8:900d::5"})
                ).status_code == 201
        # An untrusted peer's header is no way around a ban of the peer.
        await ban(proxy, "198.51.100.0/24")
        liar = await app.peer("198.51.100.3")
        problem(await reply(liar, thread, **{"X-Forwarded-For": "192.0.2.1"}), 403)


async def test_bans_are_for_moderators_and_the_operator_only(settings):
    async with board(settings) as app:
        client = await app.peer("192.0.2.10")
        name = unique_name("mem")
        await client.post("/api/users", json={"name": name, "password": "correct horse"})
        token = (await client.post("/api/sessions", json={
            "name": name, "password": "correct horse"})).json()["token"]
        member = {"Authorization": f"Bearer {token}"}
        body = {"cidr": "203.0.113.0/24", "reason": "x"}
        problem(await client.post("/api/bans", json=body), 401)
        problem(await client.post("/api/bans", json=body, headers=member), 403)
        problem(await client.get("/api/bans"), 401)
        problem(await client.get("/api/bans", headers=member), 403)
        problem(await client.delete("/api/bans/1", headers=member), 403)

        assert (await client.put(f"/api/users/{name}/role", json={"role": "moderator"},
                                 headers=OPERATOR)).status_code == 200
        token = (await client.post("/api/sessions", json={
            "name": name, "password": "correct horse"})).json()["token"]
        moderator = {"Authorization": f"Bearer {token}"}
        r = await client.post("/api/bans", json=body, headers=moderator)
        assert r.status_code == 201 and r.json()["created_by"] == name
        # Even from a banned address the moderator can lift the ban.
        inside = await app.peer("203.0.113.4")
        r = await inside.delete(f"/api/bans/{r.json()['id']}", headers=moderator)
        assert r.status_code == 200, r.text


async def test_ban_requests_that_make_no_sense_are_refused_with_a_reason(settings):
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    async with board(settings) as app:
        client = await app.peer("192.0.2.11")
        for body in (
            {"cidr": "not-a-network", "reason": "x"}, {"cidr": "10.0.0.0/33", "reason": "x"},
            {"cidr": "10.0.0.0/8", "reason": "   "}, {"cidr": "10.0.0.0/8", "reason": "y" * 501},
            {"cidr": "10.0.0.0/8", "reason": "x", "until": past},
            {"cidr": "10.0.0.0/8", "reason": "x", "until": "2999-01-01T00:00:00"},
        ):
            problem(await client.post("/api/bans", json=body, headers=OPERATOR), 422)
        for body in ({"cidr": "10.0.0.0/8"}, {"cidr": 1, "reason": "x"},
                     {"cidr": "10.0.0.0/8", "reason": "x", "extra": 1},
                     {"cidr": "10.0.0.0/8", "reason": "x", "until": "tomorrow"}):
            problem(await client.post("/api/bans", json=body, headers=OPERATOR), 400)
        problem(await client.get("/api/bans?page=2", headers=OPERATOR), 404)
        problem(await client.get("/api/bans?page=0", headers=OPERATOR), 400)
        problem(await client.delete("/api/bans/999999", headers=OPERATOR), 404)
        problem(await client.delete("/api/bans/0", headers=OPERATOR), 404)
        # Host bits are cleared; the list pages.
        made = await ban(client, "10.1.2.3/8")
        assert made["cidr"] == "10.0.0.0/8"
        for i in range(25):
            await ban(client, f"198.18.{i}.0/24")
        second = (await client.get("/api/bans?page=2", headers=OPERATOR)).json()
        assert second["pages"] == 2 and [b["id"] for b in second["bans"]] == [made["id"]]
