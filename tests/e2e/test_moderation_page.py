"""The moderation page's suspensions and bans, through its forms (the held queue's forms
are in test_held_pages.py)."""

from __future__ import annotations

from tests.e2e import test_pages
from tests.e2e.test_held_pages import sign_in_as
from tests.e2e.test_pages import text
from tests.forms import any_token, submit

settle = test_pages.settle  # the fixture: project until every read model has caught up


async def test_a_moderator_suspends_and_lifts_a_member_from_the_moderation_page(
        client, settle):
    await settle()
    await sign_in_as(client, "Bea", "member")
    await sign_in_as(client, "Mod", "moderator")
    r = await submit(client, "/moderation", "/moderation/suspensions",
                     {"name": "Bea", "reason": "flooding the board", "days": "3"},
                     follow_redirects=False)
    assert r.status_code == 303, r.text
    await settle()
    page = text((await client.get("/moderation")).text)
    assert "flooding the board" in page and "Bea" in page
    r = await client.post("/api/sessions", json={"name": "Bea", "password": "correct horse"})
    assert r.status_code == 403 and "flooding the board" in r.json()["detail"]

    r = await submit(client, "/moderation", "/moderation/suspensions/Bea/lift", {},
                     follow_redirects=False)
    assert r.status_code == 303
    await settle()
    assert "Nobody is suspended." in text((await client.get("/moderation")).text)
    r = await client.post("/api/sessions", json={"name": "Bea", "password": "correct horse"})
    assert r.status_code == 200


async def test_a_refused_suspension_keeps_what_the_moderator_typed(client, settle):
    await settle()
    await sign_in_as(client, "Mod", "moderator")
    r = await submit(client, "/moderation", "/moderation/suspensions",
                     {"name": "Nobody Here", "reason": "a reason to keep", "days": "x"})
    assert r.status_code == 422
    assert "Days must be a whole number" in text(r.text)
    assert 'value="a reason to keep"' in r.text


async def test_a_moderator_bans_and_unbans_an_address_from_the_moderation_page(
        client, settle):
    await settle()
    await sign_in_as(client, "Mod", "moderator")
    r = await submit(client, "/moderation", "/moderation/bans",
                     {"cidr": "203.0.113.0/24", "reason": "a spam network", "days": ""},
                     follow_redirects=True)
    assert r.status_code == 200, r.text
    assert "203.0.113.0/24" in text(r.text) and "a spam network" in text(r.text)
    ban_id = (await client.get("/api/bans", headers={
        "Authorization": f"Bearer {client.cookies['forum_token']}"})).json()["bans"][0]["id"]
    r = await submit(client, "/moderation", f"/moderation/bans/{ban_id}/remove", {},
                     follow_redirects=True)
    assert r.status_code == 200 and "No address is banned." in text(r.text)


async def test_only_moderators_may_suspend_or_ban_from_the_page(client, settle):
    await settle()
    await sign_in_as(client, "Plain", "member")
    token = await any_token(client)
    for action, data in (("/moderation/suspensions", {"name": "Plain", "reason": "r"}),
                         ("/moderation/bans", {"cidr": "198.51.100.1", "reason": "r"}),
                         ("/moderation/bans/1/remove", {}),
                         ("/moderation/suspensions/Plain/lift", {})):
        r = await client.post(action, data={**data, "_csrf_token": token},
                              follow_redirects=False)
        assert r.status_code == 403, (action, r.status_code)
    r = await client.post("/api/sessions", json={"name": "Plain", "password": "correct horse"})
    assert r.status_code == 200
