"""The reply and new-thread form pages, and a refused guest's way to sign in without
losing the draft (issue 18), in-process on real PostgreSQL and Redis."""

from __future__ import annotations

import html
import re
from urllib.parse import quote as urlquote

from tests.builders import unique_name
from tests.conftest import OPERATOR
from tests.e2e.test_pages import location, make_section, register, text
from tests.forms import form_fields, form_token, origin, reply, submit

DRAFT = "A long reply, written with care.\nSecond line & <b>markup</b> kept as typed."


def box(page: str, name: str = "body") -> str:
    """What the page's text box named ``name`` (of the last form holding one) says."""
    found = re.findall(rf'<textarea name="{name}"[^>]*>(.*?)</textarea>', page, re.S)
    assert found, f"no textarea {name}"
    return html.unescape(found[-1]).replace("\r\n", "\n")


async def thread_in(client, settle, slug: str | None = None) -> tuple[str, int, int]:
    slug = slug or await make_section(client)
    r = await client.post(f"/api/forums/{slug}/threads",
                          json={"title": "Forms", "body": "Veni, vidi, vici.",
                                "guest_name": "ann"})
    assert r.status_code == 201, r.text
    await settle()
    return slug, r.json()["thread_id"], r.json()["post_id"]


# -- the pages -----------------------------------------------------------------------------

async def test_the_reply_page_holds_the_form_and_prefills_a_quote(client, settle):
    _slug, thread_id, first = await thread_in(client, settle)
    r = await client.get(f"/threads/{thread_id}/reply")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/html")
    assert f'action="/threads/{thread_id}/reply#reply"' in r.text and box(r.text) == ""
    assert "Veni, vidi, vici." in text(r.text)  # the thread around the box
    for path in (f"/threads/{thread_id}/reply?quote={first}",
                 f"/threads/{thread_id}/reply?quote={first}&page=1"):
        r = await client.get(path)
        assert r.status_code == 200, path
        assert box(r.text).strip() == f"[quote=ann post={first}]Veni, vidi, vici.[/quote]", path
    # A quote of nothing in this thread, or garbage: an empty box, not an error.
    for query in ("quote=999999999", "quote=abc", "quote=-1", "quote=" + "9" * 40):
        r = await client.get(f"/threads/{thread_id}/reply?{query}")
        assert r.status_code == 200 and box(r.text) == "", query


async def test_the_reply_page_goes_to_the_last_page(client, settle, store):
    from tests.e2e.test_pages import import_thread, thread_id_by_title

    slug = await make_section(client)
    await import_thread(store, slug, "Long", [
        {"author": "talker", "created_at": f"2011-06-08T10:{n:02d}:00Z", "body": f"post {n}"}
        for n in range(1, 28)])
    await settle()
    thread_id = await thread_id_by_title(client, slug, "Long")
    seen = text((await client.get(f"/threads/{thread_id}/reply")).text)
    assert "#27" in seen and "#25" not in seen
    seen = text((await client.get(f"/threads/{thread_id}/reply?page=1")).text)
    assert "#25" in seen and "#27" not in seen


async def test_the_reply_page_of_a_locked_or_missing_thread(client, settle):
    _slug, thread_id, _ = await thread_in(client, settle)
    assert (await client.post(f"/api/threads/{thread_id}/lock",
                              headers=OPERATOR)).status_code == 200
    await settle()
    r = await client.get(f"/threads/{thread_id}/reply")
    assert r.status_code == 200
    assert "This thread is locked: no new replies." in text(r.text)
    assert "<textarea" not in r.text
    for path in ("/threads/987654321/reply", "/threads/abc/reply", "/threads/0/reply",
                 "/threads/1.5/reply", f"/threads/{thread_id}/reply?page=99",
                 "/forums/no-such-section/new", "/forums/%3Cscript%3E/new"):
        r = await client.get(path)
        assert r.status_code == 404, (path, r.status_code)
        assert r.headers["content-type"].startswith("text/html"), path
        assert "Not found" in text(r.text), path
    r = await client.get(f"/threads/{thread_id}/reply?page=0")
    assert r.status_code == 400 and r.headers["content-type"].startswith("text/html")


async def test_the_new_thread_page(client, settle):
    slug = await make_section(client, title="History")
    await settle()
    r = await client.get(f"/forums/{slug}/new")
    assert r.status_code == 200, r.text
    assert "New thread in History" in text(r.text)
    assert f'action="/forums/{slug}/threads#new"' in r.text and 'name="title"' in r.text
    assert r.headers["cache-control"].startswith("public")  # the same for every guest
    r = await submit(client, f"/forums/{slug}/new", f"/forums/{slug}/threads",
                     {"title": "From its page", "body": "hello", "guest_name": "neo"},
                     follow_redirects=False)
    assert r.status_code == 303, r.text


# -- refused, then signed in: the draft is kept -----------------------------------------

async def test_a_refused_guest_reply_signs_in_and_finds_the_draft_in_the_box(client, settle,
                                                                            pool):
    _slug, thread_id, _ = await thread_in(client, settle)
    member = unique_name("mem")
    await register(client, member, "a good password")
    before = await pool.fetchval("SELECT count(*) FROM events")

    r = await reply(client, thread_id, {"body": DRAFT, "guest_name": member, "page": "1"},
                    follow_redirects=False)
    assert r.status_code == 409, r.text
    assert "belongs to a member" in text(r.text) and box(r.text) == DRAFT
    assert "set-cookie" in r.headers and r.headers["cache-control"].startswith("private")
    # "Login" in the header returns to the reply page (a GET), not to the form's POST.
    assert f'href="/login?next={urlquote(f"/threads/{thread_id}/reply?page=1", safe="")}"' \
        in r.text
    sign_in = form_fields(r.text, f"/threads/{thread_id}/sign-in")
    assert sign_in["body"].replace("\r\n", "\n") == DRAFT and sign_in["name"] == member

    # A wrong password: refused, the draft still there, and the form to try again.
    wrong = await client.post(f"/threads/{thread_id}/sign-in", follow_redirects=False,
                              data={**sign_in, "password": "not it"},
                              headers={"Origin": origin(client)})
    assert wrong.status_code == 400 and "Wrong name or password" in text(wrong.text)
    assert box(wrong.text) == DRAFT and "Account: Guest" in text(wrong.text)
    sign_in = form_fields(wrong.text, f"/threads/{thread_id}/sign-in")

    r = await client.post(f"/threads/{thread_id}/sign-in", follow_redirects=False,
                          data={**sign_in, "password": "a good password"},
                          headers={"Origin": origin(client)})
    assert r.status_code == 200, r.text
    assert f"Account: {member}" in text(r.text) and box(r.text) == DRAFT
    assert "Forms" in text(r.text) and 'name="guest_name"' not in r.text
    assert r.headers["cache-control"].startswith("private")
    assert await pool.fetchval("SELECT count(*) FROM events") == before  # nothing posted yet
    # Still signed in afterwards, and the box posts as the member.
    fields = form_fields(r.text, f"/threads/{thread_id}/reply")
    r = await client.post(f"/threads/{thread_id}/reply", data=fields, follow_redirects=False,
                          headers={"Origin": origin(client)})
    assert r.status_code == 303, r.text
    await settle()
    posts = (await client.get(f"/api/threads/{thread_id}")).json()["posts"]
    assert posts[-1]["author"]["name"] == member
    assert posts[-1]["body"].replace("\r\n", "\n") == DRAFT


async def test_a_refused_guest_thread_signs_in_and_finds_the_draft(client, settle):
    slug = await make_section(client)
    member = unique_name("mem")
    await register(client, member, "a good password")
    await settle()
    r = await submit(client, f"/forums/{slug}", f"/forums/{slug}/threads",
                     {"title": "My title", "body": DRAFT, "guest_name": member.upper()},
                     follow_redirects=False)
    assert r.status_code == 409, r.text
    assert "New thread in" in text(r.text) and box(r.text) == DRAFT
    assert 'value="My title"' in r.text
    assert f'href="/login?next={urlquote(f"/forums/{slug}/new", safe="")}"' in r.text
    sign_in = form_fields(r.text, f"/forums/{slug}/sign-in")
    assert sign_in["title"] == "My title"
    r = await client.post(f"/forums/{slug}/sign-in", follow_redirects=False,
                          data={**sign_in, "name": member, "password": "a good password"},
                          headers={"Origin": origin(client)})
    assert r.status_code == 200, r.text
    assert f"Account: {member}" in text(r.text)
    assert box(r.text) == DRAFT and 'value="My title"' in r.text
    fields = form_fields(r.text, f"/forums/{slug}/threads")
    r = await client.post(f"/forums/{slug}/threads", data=fields, follow_redirects=False,
                          headers={"Origin": origin(client)})
    assert r.status_code == 303, r.text
    await settle()
    page = text((await client.get(location(r))).text)
    assert "My title" in page and f"OP {member}" in page


async def test_signing_in_from_a_refused_page_needs_the_visitors_own_token(client, settle):
    """The sign-in forms never take the public token (login CSRF), even with this
    site's Origin; the refused page gives the visitor a token of its own."""
    slug, thread_id, _ = await thread_in(client, settle)
    member = unique_name("mem")
    await register(client, member, "a good password")
    client.cookies.clear()
    public = form_token((await client.get(f"/threads/{thread_id}")).text,
                        f"/threads/{thread_id}/reply")
    for action in (f"/threads/{thread_id}/sign-in", f"/forums/{slug}/sign-in"):
        r = await client.post(action, headers={"Origin": origin(client)},
                              data={"name": member, "password": "a good password",
                                    "body": "x", "_csrf_token": public})
        assert r.status_code == 403, (action, r.status_code)
    assert "Account: Guest" in text((await client.get("/")).text)


async def test_the_login_next_is_a_path_of_this_site_only(client, settle):
    member = unique_name("mem")
    await register(client, member, "a good password")
    for target, expected in (
            ("/threads/7/reply?page=2", "/threads/7/reply?page=2"),
            ("/forums/s/new", "/forums/s/new"),
            ("//evil.example", "/"), ("///evil.example", "/"),
            ("https://evil.example/", "/"), ("http:evil.example", "/"),
            ("/\\evil.example", "/"), ("\\\\evil.example", "/"),
            ("/\t/evil.example", "/"), ("/ /evil.example", "/"),
            ("/\r\nLocation: https://evil.example", "/"), ("javascript:alert(1)", "/"),
            ("/é", "/"), ("", "/"), ("evil.example", "/")):
        r = await client.get("/login", params={"next": target})
        assert r.status_code == 200
        assert f'name="next" value="{html.escape(expected)}"' in r.text, target
        r = await submit(client, "/login", "/login", follow_redirects=False, data={
            "name": member, "password": "a good password", "next": target})
        assert r.status_code == 303 and r.headers["location"] == expected, target


async def test_signing_in_for_a_missing_thread_or_section_opens_no_session(client, settle,
                                                                          pool):
    from tests.forms import any_token

    member = unique_name("mem")
    await register(client, member, "a good password")
    await settle()
    token = await any_token(client)
    before = await pool.fetchval("SELECT count(*) FROM sessions")
    for path in ("/threads/987654321/sign-in", "/forums/no-such-section/sign-in"):
        r = await client.post(path, headers={"Origin": origin(client)},
                              data={"name": member, "password": "a good password",
                                    "body": "draft", "_csrf_token": token})
        assert r.status_code == 404 and "Not found" in text(r.text), path
        assert "forum_token=" not in r.headers.get("set-cookie", ""), path
    assert await pool.fetchval("SELECT count(*) FROM sessions") == before
