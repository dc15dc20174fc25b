"""The post and thread controls on the pages, in-process on real PostgreSQL and Redis:
edit (and the history readers see), delete, like and unlike (the author's reputation),
a moderator's lock, unlock and move; nobody gets a control they may not use, and a
forged form is refused by the same rules as the API."""

from __future__ import annotations

import re

from tests.builders import unique_name, unique_slug
from tests.conftest import OPERATOR
from tests.e2e import test_pages
from tests.e2e.test_pages import location, make_section, text
from tests.forms import any_token, form_token, submit

settle = test_pages.settle  # the fixture: every read model holds every write


async def member(client, role: str = "member") -> tuple[str, str]:
    """A new member (a moderator if asked) and a session token for them."""
    name = unique_name("m")
    r = await client.post("/api/users", json={"name": name, "password": "correct horse"})
    assert r.status_code == 201, r.text
    if role != "member":
        r = await client.put(f"/api/users/{name}/role", json={"role": role},
                             headers=OPERATOR)
        assert r.status_code == 200, r.text
    r = await client.post("/api/sessions", json={"name": name, "password": "correct horse"})
    return name, r.json()["token"]


def be(client, token: str | None) -> None:
    """View the pages as the member holding ``token`` (None: a guest)."""
    if token is None:
        client.cookies.delete("forum_token")
    else:
        client.cookies.set("forum_token", token)


async def thread_by(client, slug: str, token: str, body: str = "the first words"
                    ) -> tuple[int, int]:
    r = await client.post(f"/api/forums/{slug}/threads", json={"title": "Controls", "body": body},
                          headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 201, r.text
    return r.json()["thread_id"], r.json()["post_id"]


def post_block(page: str, post_id: int) -> str:
    found = re.search(rf'<article [^>]*id="p{post_id}".*?</article>', page, re.S)
    assert found, f"no post {post_id} on the page"
    return found.group(0)


async def test_an_edit_shows_edited_and_readers_see_the_earlier_version(client, settle):
    slug = await make_section(client)
    _, token = await member(client)
    thread_id, post_id = await thread_by(client, slug, token, "[b]first[/b] draft")
    await settle()

    be(client, token)
    page = (await client.get(f"/threads/{thread_id}")).text
    assert f'href="/posts/{post_id}/edit"' in post_block(page, post_id)
    form = await client.get(f"/posts/{post_id}/edit")
    assert form.status_code == 200 and "[b]first[/b] draft</textarea>" in form.text
    r = await submit(client, f"/posts/{post_id}/edit", f"/posts/{post_id}/edit",
                     {"body": "second thoughts"}, follow_redirects=False)
    assert r.status_code == 303, r.text
    assert r.headers["location"].endswith(f"#p{post_id}") and "after=" in r.headers["location"]
    await settle()

    be(client, None)  # a reader
    post = post_block((await client.get(location(r))).text, post_id)
    assert "second thoughts" in post and "edited" in text(post)
    assert f'href="/posts/{post_id}/revisions"' in post
    history = await client.get(f"/posts/{post_id}/revisions")
    assert history.status_code == 200
    seen = text(history.text)
    assert "second thoughts" in seen and "first draft" in seen and "Written" in seen
    assert "<strong>first</strong> draft" in history.text  # rendered, not the source

    # A refused edit keeps the text and says why, as a page.
    be(client, token)
    r = await submit(client, f"/posts/{post_id}/edit", f"/posts/{post_id}/edit",
                     {"body": "   "}, follow_redirects=False)
    assert r.status_code == 422 and r.headers["content-type"].startswith("text/html")
    assert 'role="alert"' in r.text


async def test_a_like_raises_the_authors_reputation_and_unlike_takes_it_back(client, settle):
    slug = await make_section(client)
    _, ann_token = await member(client)
    _, bob_token = await member(client)
    thread_id, post_id = await thread_by(client, slug, ann_token)
    await settle()

    be(client, ann_token)  # no like on one's own post
    own = post_block((await client.get(f"/threads/{thread_id}")).text, post_id)
    assert "/like" not in own and "reputation 0" in text(own)

    be(client, bob_token)
    page = f"/threads/{thread_id}"
    r = await submit(client, page, f"/posts/{post_id}/like", {}, follow_redirects=False)
    assert r.status_code == 303, r.text
    await settle()
    post = post_block((await client.get(location(r))).text, post_id)
    assert "reputation 1" in text(post) and "1 like" in text(post)
    assert f'action="/posts/{post_id}/unlike"' in post and "/like\"" not in post
    # A second click (a stale page) changes nothing and is no error.
    r = await client.post(f"/posts/{post_id}/like", follow_redirects=False,
                          data={"_csrf_token": await any_token(client)})
    assert r.status_code == 303

    r = await submit(client, page, f"/posts/{post_id}/unlike", {}, follow_redirects=False)
    assert r.status_code == 303, r.text
    await settle()
    assert "reputation 0" in text(post_block((await client.get(location(r))).text, post_id))

    # Liking one's own post by a forged form is refused as the API refuses it.
    be(client, ann_token)
    r = await client.post(f"/posts/{post_id}/like", follow_redirects=False,
                          data={"_csrf_token": await any_token(client)})
    assert r.status_code == 403 and "cannot like your own post" in text(r.text)


async def test_someone_elses_post_shows_no_edit_or_delete_and_a_forged_edit_is_refused(
        client, settle, pool):
    slug = await make_section(client)
    _, ann_token = await member(client)
    _, bob_token = await member(client)
    thread_id, post_id = await thread_by(client, slug, ann_token)
    await settle()

    for token in (bob_token, None):
        be(client, token)
        post = post_block((await client.get(f"/threads/{thread_id}")).text, post_id)
        assert "/edit" not in post and "/delete" not in post
    be(client, bob_token)
    assert (await client.get(f"/posts/{post_id}/edit")).status_code == 403
    before = await pool.fetchval("SELECT count(*) FROM events")
    token = await any_token(client)
    for action in ("edit", "delete"):
        r = await client.post(f"/posts/{post_id}/{action}", follow_redirects=False,
                              data={"body": "mine now", "_csrf_token": token})
        assert r.status_code == 403, (action, r.status_code)
        assert r.headers["content-type"].startswith("text/html")
    be(client, None)  # a guest is sent to sign in first, and refused a form
    r = await client.get(f"/posts/{post_id}/edit", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login?next=")
    r = await client.post(f"/posts/{post_id}/delete", follow_redirects=False,
                          data={"_csrf_token": await any_token(client)})
    assert r.status_code == 401 and "Sign in" in r.text
    assert await pool.fetchval("SELECT count(*) FROM events") == before


async def test_the_author_deletes_through_the_confirming_page(client, settle):
    slug = await make_section(client)
    _, token = await member(client)
    _, post_id = await thread_by(client, slug, token, "regrettable")
    await settle()
    be(client, token)
    confirm = await client.get(f"/posts/{post_id}/delete")
    assert confirm.status_code == 200 and "regrettable" in confirm.text
    r = await submit(client, f"/posts/{post_id}/delete", f"/posts/{post_id}/delete", {},
                     follow_redirects=False)
    assert r.status_code == 303, r.text
    await settle()
    post = post_block((await client.get(location(r))).text, post_id)
    assert "This post was deleted." in post and "regrettable" not in post
    assert "/edit" not in post and "/delete" not in post
    # Its history is not shown.
    assert (await client.get(f"/posts/{post_id}/revisions")).status_code == 404


async def test_a_moderator_locks_unlocks_and_moves_a_thread(client, settle):
    slug = await make_section(client)
    other = await make_section(client, unique_slug(), "Elsewhere")
    _, ann_token = await member(client)
    _, mod_token = await member(client, "moderator")
    thread_id, _ = await thread_by(client, slug, ann_token)
    await settle()
    page = f"/threads/{thread_id}"

    be(client, mod_token)
    shown = (await client.get(page)).text
    assert 'href="/moderation"' in shown and f'action="{page}/move"' in shown
    r = await submit(client, page, f"{page}/lock", {}, follow_redirects=False)
    assert r.status_code == 303, r.text
    await settle()
    shown = (await client.get(location(r))).text
    assert "<textarea" not in shown and f'action="{page}/unlock"' in shown

    be(client, ann_token)  # a member sees the lock: no reply box
    shown = (await client.get(page)).text
    assert "<textarea" not in shown and "This thread is locked" in shown

    be(client, mod_token)
    r = await submit(client, page, f"{page}/unlock", {}, follow_redirects=False)
    assert r.status_code == 303, r.text
    await settle()
    assert "<textarea" in (await client.get(location(r))).text

    r = await submit(client, page, f"{page}/move", {"forum": other}, follow_redirects=False)
    assert r.status_code == 303, r.text
    await settle()
    shown = (await client.get(location(r))).text
    assert f'href="/forums/{other}"' in shown
    r = await submit(client, page, f"{page}/move", {"forum": "no-such-section"},
                     follow_redirects=False)
    assert r.status_code == 422 and "choose one of the board" in text(r.text).lower()


async def test_a_member_gets_no_thread_controls_and_a_forged_lock_is_refused(
        client, settle, pool):
    slug = await make_section(client)
    _, ann_token = await member(client)
    thread_id, _ = await thread_by(client, slug, ann_token)
    await settle()
    page = f"/threads/{thread_id}"
    for token in (ann_token, None):
        be(client, token)
        shown = (await client.get(page)).text
        assert f"{page}/lock" not in shown and f"{page}/move" not in shown
        assert 'href="/moderation"' not in shown
    be(client, ann_token)
    before = await pool.fetchval("SELECT count(*) FROM events")
    token = await any_token(client)
    for action, data in (("lock", {}), ("unlock", {}), ("move", {"forum": slug})):
        r = await client.post(f"{page}/{action}", follow_redirects=False,
                              data={**data, "_csrf_token": token})
        assert r.status_code == 403, (action, r.status_code)
        assert "Error 403" in r.text
    assert await pool.fetchval("SELECT count(*) FROM events") == before
    # Without the form's token, even a moderator's is refused (CSRF).
    _, mod_token = await member(client, "moderator")
    be(client, mod_token)
    r = await client.post(f"{page}/lock", follow_redirects=False, data={})
    assert r.status_code == 403
    assert form_token((await client.get(page)).text, f"{page}/lock")
