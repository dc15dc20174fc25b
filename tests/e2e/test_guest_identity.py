"""Guest identity through HTTP: the guest_token, OP marks and the starter's bump follow
the guest that started a thread, not a typed name; guest names held by returning guests.

Decided (README "Guests and names"): a guest's first write is issued a token; a guest
*holds* its name once it writes with its token sent back, until the name goes unused for
FORUM_GUEST_NAME_DAYS; another identity typing a look-alike of a held name gets 409. A
guest that never sends its token back holds nothing, and others may type the same name,
but never get its OP mark or its bump.
"""

from __future__ import annotations

from typing import Any

import asyncpg
import httpx

from service.guests import GUEST_COOKIE, guest_id
from tests.builders import unique_key, unique_name
from tests.conftest import OPERATOR
from tests.e2e import test_api_writes
from tests.forms import any_token

forum = test_api_writes.forum  # the fixture: a section

Client = httpx.AsyncClient


async def log_size(pool: asyncpg.Pool) -> int:
    return int(await pool.fetchval("SELECT count(*) FROM events"))


async def last_events(pool: asyncpg.Pool, n: int) -> list[dict[str, Any]]:
    import json

    rows = await pool.fetch("SELECT type, data FROM events ORDER BY position DESC LIMIT $1", n)
    return [{"type": r["type"], **json.loads(r["data"])} for r in reversed(rows)]


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["detail"]
    return body


def as_guest(token: str) -> dict[str, str]:
    return {"X-Guest-Token": token}



async def start(client: Client, forum: str, name: str, headers: dict[str, str] | None = None
                ) -> dict[str, Any]:
    r = await client.post(f"/api/forums/{forum}/threads",
                          json={"title": "Rome", "body": "Who built it?", "guest_name": name},
                          headers=headers or {})
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


# -- the token ---------------------------------------------------------------------------

async def test_a_guests_first_write_answers_a_token_whose_digest_is_in_the_log(
        client, pool, forum):
    started = await start(client, forum, unique_name("ann"))
    token = started["guest_token"]
    assert isinstance(token, str) and len(token) == 43
    thread_started, post_added = await last_events(pool, 2)
    assert thread_started["guest_id"] == post_added["guest_id"] == guest_id(token)
    dump = await pool.fetchval("SELECT string_agg(data::text || metadata::text, ' ') FROM events")
    assert token not in dump
    stored = await pool.fetchval("SELECT count(*) FROM idempotency WHERE response::text LIKE $1",
                                 f"%{token}%")
    assert stored == 0


async def test_a_write_that_sends_its_token_is_not_issued_another(client, forum):
    started = await start(client, forum, unique_name("ann"))
    r = await client.post(f"/api/threads/{started['thread_id']}/posts",
                          json={"body": "again", "guest_name": "someone"},
                          headers=as_guest(started["guest_token"]))
    assert r.status_code == 201, r.text
    assert "guest_token" not in r.json()


async def test_members_are_issued_no_guest_token(client, pool, forum):
    name = unique_name("mem")
    assert (await client.post("/api/users", json={"name": name, "password": "pass-word-1"})
            ).status_code == 201
    token = (await client.post("/api/sessions", json={"name": name, "password": "pass-word-1"})
             ).json()["token"]
    r = await client.post(f"/api/forums/{forum}/threads", json={"title": "T", "body": "b"},
                          headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 201 and "guest_token" not in r.json()
    started, added = await last_events(pool, 2)
    assert started.get("guest_id") is None and added.get("guest_id") is None


async def test_malformed_guest_tokens_are_refused_and_append_nothing(client, pool, forum):
    before = await log_size(pool)
    for bad in ["", "short", "x" * 44, "!" * 43, "é" * 43]:
        try:
            headers = as_guest(bad)
            r = await client.post(f"/api/forums/{forum}/threads",
                                  json={"title": "T", "body": "b", "guest_name": "gus"},
                                  headers=headers)
        except UnicodeEncodeError:  # httpx refuses to send non-ASCII headers itself
            continue
        assert r.status_code in (400, 422), (bad, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
    assert await log_size(pool) == before


async def test_an_idempotent_replay_answers_the_same_token(client, forum):
    key = unique_key()
    payload = {"title": "T", "body": "b", "guest_name": unique_name("g")}
    first = await client.post(f"/api/forums/{forum}/threads", json=payload,
                              headers={"Idempotency-Key": key})
    again = await client.post(f"/api/forums/{forum}/threads", json=payload,
                              headers={"Idempotency-Key": key})
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and "guest_token" in first.json()


async def test_another_guest_replaying_a_guests_idempotency_key_is_refused(client, forum):
    mine = (await start(client, forum, unique_name("a")))["guest_token"]
    theirs = (await start(client, forum, unique_name("b")))["guest_token"]
    key = unique_key()
    payload = {"title": "T", "body": "b", "guest_name": unique_name("c")}
    r = await client.post(f"/api/forums/{forum}/threads", json=payload,
                          headers={"Idempotency-Key": key, **as_guest(mine)})
    assert r.status_code == 201, r.text
    r = await client.post(f"/api/forums/{forum}/threads", json=payload,
                          headers={"Idempotency-Key": key, **as_guest(theirs)})
    # Refused (the name is held by the first guest, and the request is not the first's),
    # never answered with the first guest's result.
    assert r.status_code in (409, 422), r.text
    assert "thread_id" not in r.json()


# -- OP and the starter's bump follow the identity ----------------------------------------

async def test_the_starting_guest_with_its_token_is_op_and_may_bump(client, pool, forum):
    name = unique_name("ann")
    started = await start(client, forum, name)
    me = as_guest(started["guest_token"])
    tid = started["thread_id"]
    r = await client.post(f"/api/threads/{tid}/posts", json={"body": "me", "guest_name": name},
                          headers=me)
    assert r.status_code == 201, r.text
    added, _ = await last_events(pool, 2)
    assert added["op"] is True
    r = await client.post(f"/api/threads/{tid}/bump", json={"guest_name": name}, headers=me)
    assert r.status_code == 200, r.text
    (bumped,) = await last_events(pool, 1)
    assert (bumped["type"], bumped["reason"]) == ("thread_bumped", "starter")


async def test_a_guest_typing_the_starters_name_is_not_op_and_may_not_bump(client, pool, forum):
    name = unique_name("ann")
    started = await start(client, forum, name)  # the starter never sends its token back
    other = await start(client, forum, unique_name("other"))
    tid = started["thread_id"]
    for headers in ({}, as_guest(other["guest_token"])):  # no token; another guest's token
        r = await client.post(f"/api/threads/{tid}/posts",
                              json={"body": "it is me, honest", "guest_name": name},
                              headers=headers)
        assert r.status_code == 201, r.text
        added, _ = await last_events(pool, 2)
        assert added["op"] is False
        before = await log_size(pool)
        r = await client.post(f"/api/threads/{tid}/bump", json={"guest_name": name},
                              headers=headers)
        problem(r, 403)
        assert await log_size(pool) == before


async def test_the_thread_page_marks_only_the_starters_posts_op(client, project, forum):
    name = unique_name("ann")
    started = await start(client, forum, name)
    tid = started["thread_id"]
    await client.post(f"/api/threads/{tid}/posts", json={"body": "impostor", "guest_name": name})
    await client.post(f"/api/threads/{tid}/posts", json={"body": "real", "guest_name": name},
                      headers=as_guest(started["guest_token"]))
    await project()
    posts = (await client.get(f"/api/threads/{tid}")).json()["posts"]
    assert [(p["body"], p["author"]["op"]) for p in posts] == [
        ("Who built it?", True), ("impostor", False), ("real", True)]


# -- guest names held by returning guests --------------------------------------------------

async def test_a_returning_guest_holds_its_name_against_look_alikes(client, pool, forum):
    name = unique_name("ann")
    started = await start(client, forum, name)
    me = as_guest(started["guest_token"])
    tid = started["thread_id"]
    r = await client.post(f"/api/threads/{tid}/posts", json={"body": "me", "guest_name": name},
                          headers=me)
    assert r.status_code == 201, r.text
    other = (await start(client, forum, unique_name("bob")))["guest_token"]
    before = await log_size(pool)
    for typed, headers in [(name, {}), (name.upper(), as_guest(other)),
                           (name.replace("a", "\u0430", 1), {})]:  # Cyrillic a: 422 (mixed)
        r = await client.post(f"/api/threads/{tid}/posts",
                              json={"body": "me too", "guest_name": typed}, headers=headers)
        assert r.status_code in (409, 422), (typed, r.text)
        if typed != name.replace("a", "\u0430", 1):
            assert "in use" in problem(r, 409)["detail"]
    assert await log_size(pool) == before
    r = await client.post(f"/api/threads/{tid}/posts", json={"body": "still me",
                                                             "guest_name": name.upper()},
                          headers=me)
    assert r.status_code == 201, r.text


async def test_a_guests_hold_lapses_after_the_configured_time(client, pool, forum):
    name = unique_name("ann")
    started = await start(client, forum, name)
    tid = started["thread_id"]
    me = as_guest(started["guest_token"])
    assert (await client.post(f"/api/threads/{tid}/posts",
                              json={"body": "me", "guest_name": name}, headers=me)
            ).status_code == 201
    await pool.execute("UPDATE guest_names SET last_used = now() - interval '31 days'")
    r = await client.post(f"/api/threads/{tid}/posts", json={"body": "mine now",
                                                             "guest_name": name})
    assert r.status_code == 201, r.text


# -- names that look like others ----------------------------------------------------------

async def register(client: Client, name: str) -> httpx.Response:
    return await client.post("/api/users", json={"name": name, "password": "pass-word-1"})


async def test_look_alikes_of_members_and_reserved_names_are_refused(client, pool, forum):
    for member in ("alice", "bob", "llse", "cop"):
        assert (await register(client, member)).status_code == 201
    before = await log_size(pool)
    cases = {
        "\u0430lice": (409, 422),  # Cyrillic a beside member alice
        "al\u0131ce": (409,),  # dotless i
        "b\u03bfb": (409, 422),  # Greek omicron beside bob
        "\u043eperator": (409, 422),  # Cyrillic o: reserved
        "Ilse": (409,),  # capital I beside member llse
        "ALICE": (409,),
        "0perator": (409,),
        "\u0441\u043e\u0440": (409,),  # all Cyrillic, reads as member cop
    }
    for name, statuses in cases.items():
        r = await register(client, name)
        assert r.status_code in statuses, (name, r.text)
        r = await client.post(f"/api/forums/{forum}/threads",
                              json={"title": "T", "body": "b", "guest_name": name})
        assert r.status_code in statuses, (name, r.text)
    assert await log_size(pool) == before


async def test_names_mixing_scripts_are_422(client):
    for name in ("\u0430lice", "b\u03bfb", "pay\u0440al", "Ad\u043cin"):
        problem(await register(client, name), 422)


async def test_a_cyrillic_name_works_end_to_end(client, project, forum):
    name = "Дмитрий"
    key = unique_key()
    first = await client.post("/api/users", json={"name": name, "password": "pass-word-1"},
                              headers={"Idempotency-Key": key})
    assert first.status_code == 201, first.text
    location = first.headers["location"]
    assert location == "/api/users/%D0%94%D0%BC%D0%B8%D1%82%D1%80%D0%B8%D0%B9"
    assert location.isascii()
    again = await client.post("/api/users", json={"name": name, "password": "pass-word-1"},
                              headers={"Idempotency-Key": key})
    assert (again.status_code, again.headers["location"]) == (201, location)
    r = await client.post("/api/sessions", json={"name": name, "password": "pass-word-1"})
    assert r.status_code == 200, r.text
    token = r.json()["token"]
    r = await client.post(f"/api/forums/{forum}/threads", json={"title": "Привет", "body": "да"},
                          headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 201, r.text
    await project()
    profile = await client.get(location)
    assert profile.status_code == 200, profile.text
    assert (profile.json()["name"], profile.json()["threads"]) == (name, 1)


async def test_greek_and_japanese_names_register(client):
    for name in ("Αλέξανδρος", "山田太郎", "田中さん", "タナカ", "Tanaka 田中"):
        r = await register(client, name)
        assert r.status_code == 201, (name, r.text)


# -- invisible text ------------------------------------------------------------------------

INVISIBLE = ["\u200b", "\u2060\ufeff", "\u200d\u200c", "\u202e\u202c", "\u00ad", "\u3164",
             "\u115f\u1160", "\u0301", " \u200b \u2800 "]


async def test_invisible_only_titles_bodies_and_names_are_422(client, pool, forum):
    before = await log_size(pool)
    for blank in INVISIBLE:
        for payload in ({"title": blank, "body": "b", "guest_name": "gus"},
                        {"title": "T", "body": blank, "guest_name": "gus"},
                        {"title": "T", "body": "b", "guest_name": blank}):
            r = await client.post(f"/api/forums/{forum}/threads", json=payload)
            problem(r, 422)
        problem(await register(client, blank), 422)
    assert await log_size(pool) == before


async def test_zero_width_joiners_inside_real_text_are_kept(client, pool, forum):
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"
    persian = "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645"
    r = await client.post(f"/api/forums/{forum}/threads",
                          json={"title": f"Family {family}", "body": f"{family} {persian}",
                                "guest_name": "gus"})
    assert r.status_code == 201, r.text
    _, added = await last_events(pool, 2)
    assert added["body"] == f"{family} {persian}"
    problem(await client.post(f"/api/forums/{forum}/threads",
                              json={"title": "T", "body": "\u200d", "guest_name": "gus"}), 422)


# -- HTML forms ----------------------------------------------------------------------------

async def test_the_form_keeps_the_guest_in_an_httponly_cookie(client, pool, project, forum):
    name = unique_name("ann")
    r = await client.post(f"/forums/{forum}/threads",
                          data={"title": "T", "body": "b", "guest_name": name,
                                "_csrf_token": await any_token(client)},
                          follow_redirects=False)
    assert r.status_code == 303, r.text
    cookie = next(h for h in r.headers.get_list("set-cookie") if h.startswith(GUEST_COOKIE))
    assert "httponly" in cookie.lower() and "samesite=lax" in cookie.lower()
    token = cookie.split("=", 1)[1].split(";", 1)[0]
    started, _ = await last_events(pool, 2)
    assert started["guest_id"] == guest_id(token)
    tid = started["thread_id"]
    assert client.cookies.get(GUEST_COOKIE) == token  # the browser sends it back from now on
    r = await client.post(f"/threads/{tid}/reply",
                          data={"body": "mine", "guest_name": name,
                                "_csrf_token": await any_token(client)},
                          follow_redirects=False)
    assert r.status_code == 303, r.text
    added, _ = await last_events(pool, 2)
    assert added["op"] is True
    client.cookies.delete(GUEST_COOKIE)
    await project()  # a refused form re-renders the thread page
    r = await client.post(f"/threads/{tid}/reply",
                          data={"body": "not", "guest_name": name,
                                "_csrf_token": await any_token(client)},
                          follow_redirects=False)
    assert r.status_code == 409  # the cookie's guest came back with it: the name is held
    assert "in use" in r.text


# -- held for review -------------------------------------------------------------------------

async def test_a_guest_sees_its_own_held_post_by_its_token_and_nobody_else_does(
        client, pool, project, forum):
    name = unique_name("ann")
    started = await start(client, forum, name)
    me = as_guest(started["guest_token"])
    r = await client.post(f"/api/threads/{started['thread_id']}/posts",
                          json={"body": "see https://spam.example", "guest_name": name},
                          headers=me)
    assert r.status_code == 202, r.text
    held_id = r.json()["held_id"]
    (held,) = await last_events(pool, 1)
    assert (held["type"], held["guest_id"], held["op"]) == (
        "post_held", guest_id(started["guest_token"]), True)
    await project()
    mine = await client.get("/api/held", headers=me)
    assert mine.status_code == 200, mine.text
    assert [h["id"] for h in mine.json()["held"]] == [held_id]
    other = (await start(client, forum, unique_name("bob")))["guest_token"]
    await project()
    theirs = await client.get("/api/held", headers=as_guest(other))
    assert theirs.status_code == 200 and theirs.json()["held"] == []
    assert (await client.get("/api/held")).status_code == 401


async def test_a_held_first_write_answers_its_guest_token(client, pool, forum):
    r = await client.post(f"/api/forums/{forum}/threads", json={
        "title": "Deals", "body": "http://spam.example", "guest_name": unique_name("sp")})
    assert r.status_code == 202, r.text
    token = r.json()["guest_token"]
    (held,) = await last_events(pool, 1)
    assert (held["type"], held["guest_id"]) == ("thread_held", guest_id(token))


async def test_an_approved_held_thread_keeps_its_starters_identity(client, pool, forum):
    name = unique_name("sp")
    r = await client.post(f"/api/forums/{forum}/threads", json={
        "title": "Deals", "body": "http://ok.example", "guest_name": name})
    token, held_id = r.json()["guest_token"], r.json()["held_id"]
    mod_name = unique_name("mod")
    assert (await client.post("/api/users", json={"name": mod_name, "password": "pass-word-1"})
            ).status_code == 201
    assert (await client.put(f"/api/users/{mod_name}/role", json={"role": "moderator"},
                             headers=OPERATOR)).status_code == 200
    session = (await client.post("/api/sessions", json={"name": mod_name,
                                                        "password": "pass-word-1"})).json()
    approved = await client.post(f"/api/held/{held_id}/approve",
                                 headers={"Authorization": f"Bearer {session['token']}"})
    assert approved.status_code == 200, approved.text
    started, added = await last_events(pool, 2)
    assert started["type"] == "thread_started" and started["guest_id"] == guest_id(token)
    assert added["guest_id"] == guest_id(token)
    tid = started["thread_id"]
    r = await client.post(f"/api/threads/{tid}/posts", json={"body": "mine",
                                                             "guest_name": name},
                          headers=as_guest(token))
    assert r.status_code == 201, r.text
    added, _ = await last_events(pool, 2)
    assert added["op"] is True
