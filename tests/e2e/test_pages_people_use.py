"""Issue 18's pages, in-process on real PostgreSQL and Redis: member and guest profiles,
stable permalinks, the board-wide archives page, and no dead ends (HTML for every path
people open, problem+json for the API)."""

from __future__ import annotations

import html
import re
from urllib.parse import quote

from tests.builders import unique_name, unique_slug
from tests.e2e.peers import board
from tests.e2e.test_pages import (  # noqa: F401  (settle: a fixture)
    import_thread,
    location,
    make_section,
    register,
    settle,
    text,
    thread_id_by_title,
)
from tests.e2e.test_rate_limits import limits
from tests.forms import reply, submit


def is_html(response, status: int) -> bool:
    return (response.status_code == status
            and response.headers["content-type"].startswith("text/html"))


async def sign_in(client, name: str, password: str = "correct horse") -> dict[str, str]:
    r = await client.post("/api/sessions", json={"name": name, "password": password})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


# -- permalinks ---------------------------------------------------------------------------

async def test_a_permalink_leads_to_the_page_and_anchor_of_its_post(client, settle, store):  # noqa: F811
    slug = await make_section(client)
    await import_thread(store, slug, "Long one", [
        {"author": f"w{i % 3}", "created_at": f"2011-06-{1 + i // 2:02d}T1{i % 2}:00:00Z",
         "body": f"post {i + 1}"} for i in range(30)])
    await settle()
    tid = await thread_id_by_title(client, slug, "Long one")
    posts = (await client.get(f"/api/threads/{tid}?page=2")).json()["posts"]
    p27 = next(p for p in posts if p["number"] == 27)

    r = await client.get(f"/posts/{p27['id']}", follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == f"/threads/{tid}?page=2#p{p27['id']}"
    page = await client.get(location(r))
    assert page.status_code == 200 and f'id="p{p27["id"]}"' in page.text
    # The thread page's #N links are the permalinks, whatever page they are shown on.
    assert f'<a class="number" href="/posts/{p27["id"]}">#27</a>' in page.text
    first = (await client.get(f"/api/threads/{tid}")).json()["posts"][0]
    r = await client.get(f"/posts/{first['id']}", follow_redirects=False)
    assert r.headers["location"] == f"/threads/{tid}?page=1#p{first['id']}"

    for missing in ("999999999", "0", "abc", "-1", "1e3", "9" * 30, "%00"):
        r = await client.get(f"/posts/{missing}", follow_redirects=False)
        assert is_html(r, 404), (missing, r.status_code, r.text[:200])
        assert "Not found" in text(r.text)


# -- profiles -----------------------------------------------------------------------------

async def test_a_member_profile_shows_counters_joined_and_recent_activity(client, settle):  # noqa: F811
    slug = await make_section(client)
    ann, bob = unique_name("ann"), unique_name("bob")
    await register(client, ann)
    await register(client, bob)
    as_ann, as_bob = await sign_in(client, ann), await sign_in(client, bob)
    r = await client.post(f"/api/forums/{slug}/threads", headers=as_ann,
                          json={"title": "Ann's <first> thread", "body": "hello"})
    tid = r.json()["thread_id"]
    r = await client.post(f"/api/threads/{tid}/posts", headers=as_ann, json={"body": "more"})
    second = r.json()["post_id"]
    r = await client.post(f"/api/threads/{tid}/posts", headers=as_bob, json={"body": "hi"})
    await client.post(f"/api/posts/{second}/likes", headers=as_bob)
    await settle()

    r = await client.get(f"/users/{ann}")
    assert is_html(r, 200), r.text
    seen = text(r.text)
    assert ann in seen and "1 | 2 | 1" in seen and "Joined" in seen
    assert "Ann's <first> thread" in seen and "<first>" not in r.text  # escaped
    assert f'href="/posts/{second}"' in r.text and "#2 in Ann's <first> thread" in seen
    assert r.headers["etag"]
    again = await client.get(f"/users/{ann}", headers={"If-None-Match": r.headers["etag"]})
    assert again.status_code == 304
    # Names on thread pages lead to the profiles.
    page = await client.get(f"/threads/{tid}")
    assert f'href="/users/{quote(ann, safe="")}"' in page.text

    # A deleted post leaves the recent list; the counters count what was written.
    await client.delete(f"/api/posts/{second}", headers=as_ann)
    await settle()
    r = await client.get(f"/users/{ann}")
    assert f'href="/posts/{second}"' not in r.text

    r = await client.get(f"/users/{bob}")
    assert "0 | 1 | 0" in text(r.text) and "No threads started yet." in text(r.text)


async def test_guest_profiles_and_unknown_names(client, settle, store):  # noqa: F811
    slug = unique_slug("history")
    guest = unique_name("Old Sapper")
    await import_thread(store, slug, "Bumped", [
        {"author": guest, "created_at": "2011-06-08T10:00:00Z", "body": "start"},
        {"author": guest, "created_at": "2018-03-11T14:20:00Z", "body": "bump"}])
    await settle()
    r = await client.get(f"/users/{quote(guest)}")
    assert is_html(r, 200), r.text
    seen = text(r.text)
    assert "guest" in seen and "1 | 2 | 0" in seen and "First post 8 Jun 2011" in seen
    assert "Bumped" in seen
    # The same name, cased otherwise, is the same guest.
    assert is_html(await client.get(f"/users/{quote(guest.upper())}"), 200)

    for unknown in (unique_name("nobody"), "x" * 200, "%00", "a%0Ab", "%20"):
        r = await client.get(f"/users/{unknown}")
        assert is_html(r, 404), (unknown, r.status_code, r.text[:200])


# -- archives and breadcrumbs -------------------------------------------------------------

async def test_the_archives_page_lists_every_section_by_year(client, settle, store):  # noqa: F811
    history, science = unique_slug("history"), unique_slug("science")
    await import_thread(store, history, "Old", [
        {"author": "ann", "created_at": "2011-06-08T10:00:00Z", "body": "x"}])
    await import_thread(store, history, "Newer", [
        {"author": "ann", "created_at": "2018-06-08T10:00:00Z", "body": "x"}])
    await import_thread(store, science, "Sky", [
        {"author": "bob", "created_at": "2023-01-10T10:00:00Z", "body": "x"}])
    await settle()
    r = await client.get("/archives")
    assert is_html(r, 200)
    for slug, year in ((history, 2011), (history, 2018), (science, 2023)):
        assert f'href="/forums/{slug}/archive/{year}"' in r.text
        assert (await client.get(f"/forums/{slug}/archive/{year}")).status_code == 200
    assert f'href="/forums/{history}/archive"' in r.text
    assert r.headers["etag"]
    assert (await client.get("/archives", headers={"If-None-Match": r.headers["etag"]})
            ).status_code == 304
    assert r.headers["cache-control"].startswith("public")  # no form for a guest
    # The header's "Archives" leads here from the index; in a section, to its archive.
    assert 'href="/archives">Archives<' in (await client.get("/")).text

    tid = await thread_id_by_title(client, history, "Old")
    page = (await client.get(f"/threads/{tid}")).text
    bottom = page[page.rindex('<nav class="crumbs"'):]
    assert text(bottom.split("</nav>")[0]).endswith("/ Old")


# -- no dead ends -------------------------------------------------------------------------

async def test_every_path_people_open_answers_html(client, settle):  # noqa: F811
    for path in ("/nope", "/threads/1/nope", "/static/missing.css", "/forums/x/y/z"):
        r = await client.get(path)
        assert is_html(r, 404), (path, r.status_code, r.text[:200])
        assert "There is nothing at this address." in text(r.text)
    r = await client.get("/favicon.ico")
    assert r.status_code == 200 and r.headers["content-type"] == "image/x-icon"
    assert r.content[:4] == b"\x00\x00\x01\x00" and "max-age" in r.headers["cache-control"]
    assert (await client.get("/favicon.ico", headers={"If-None-Match": r.headers["etag"]})
            ).status_code == 304
    r = await client.get("/robots.txt")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    assert "User-agent: *" in r.text and "Disallow: /api/" in r.text

    slug = await make_section(client)
    r = await client.post(f"/api/forums/{slug}/threads",
                          json={"title": "T", "body": "b", "guest_name": "gus"})
    tid = r.json()["thread_id"]
    await settle()
    r = await client.get(f"/threads/{tid}/lock")  # a POST-only page route, visited
    assert is_html(r, 405), r.text
    assert f'href="/threads/{tid}"' in r.text and "form" in text(r.text)
    # The API keeps problem+json.
    for path in ("/api/nope", f"/api/threads/{tid}/posts"):
        r = await client.get(path)
        assert r.status_code in (404, 405)
        assert r.headers["content-type"].startswith("application/problem+json"), path


async def test_a_page_waiting_for_a_write_says_so_in_plain_words(client, settle):  # noqa: F811
    slug = await make_section(client)
    r = await client.post(f"/api/forums/{slug}/threads",
                          json={"title": "Waiting", "body": "first", "guest_name": "ann"})
    tid = r.json()["thread_id"]
    await settle()
    r = await reply(client, tid, follow_redirects=False,
                    data={"body": "not projected yet", "guest_name": "bea"})
    target = location(r)
    r = await client.get(target)  # nobody projects: the wait ends in 503
    assert is_html(r, 503) and r.headers["retry-after"]
    seen = text(r.text)
    assert "Your post was saved" in seen and "position" not in seen
    assert f'href="{html.escape(target)}"' in r.text and "Reload this page" in seen
    assert f"reload by itself in {r.headers['retry-after']} second" in seen


async def test_form_refusals_are_worded_for_people(client, settle):  # noqa: F811
    slug = await make_section(client)
    r = await client.post(f"/api/forums/{slug}/threads",
                          json={"title": "T", "body": "b", "guest_name": "gus"})
    tid = r.json()["thread_id"]
    name = unique_name("ALICE_NEW")
    await register(client, name)
    await settle()
    r = await client.post("/api/users", json={"name": name, "password": "long enough"})
    assert "is taken" in r.json()["detail"]  # the API's words stay
    r = await submit(client, "/register", "/register",
                     {"name": name, "password": "long enough"})
    assert r.status_code == 409
    assert "That name is already taken. Please choose another." in text(r.text)
    r = await reply(client, tid, data={"body": "x" * 60_000, "guest_name": "g"})
    assert "Your text is too long" in text(r.text)
    r = await reply(client, tid, data={"body": "hi", "guest_name": "a\u200bb"})
    assert "A name cannot contain invisible characters." in text(r.text)


async def test_a_throttled_page_says_when_to_try_again(settings):
    async with board(settings, **limits(limit_search="1/minute")) as app:
        client = await app.peer("198.51.100.9")
        await client.get("/search", params={"q": "rome"})
        r = await client.get("/search", params={"q": "rome"})
        assert is_html(r, 429)
        wait = r.headers["retry-after"]
        assert f"Please wait {wait} second" in text(r.text) and "try again" in text(r.text)


async def test_a_profile_shows_the_last_ten_posts_newest_first(client, settle, store):  # noqa: F811
    slug, guest = unique_slug(), unique_name("prolific")
    await import_thread(store, slug, "Many", [
        {"author": guest, "created_at": f"2020-01-{1 + i:02d}T10:00:00Z", "body": f"p{i}"}
        for i in range(25)])
    await settle()
    r = await client.get(f"/users/{guest}")
    shown = [int(n) for n in re.findall(r"#(\d+) in Many", text(r.text))]
    assert shown == list(range(25, 15, -1))
    assert "1 | 25 | 0" in text(r.text)
