"""The HTML pages, in-process on real PostgreSQL and Redis: what a person sees and can do
without JavaScript."""

from __future__ import annotations

import asyncio
import html
import re
import time
from urllib.parse import urlsplit

import msgspec
import pytest

from service.importer import Importer
from tests.builders import unique_name, unique_slug
from tests.conftest import OPERATOR
from tests.forms import any_token, form_token, origin, reply, submit
from workers.checkpoints import positions
from workers.projections import PROJECTIONS

BREADCRUMB = '<a href="/">Home</a> / <a href="/forums/{slug}">{title}</a>'
GUEST_TEXT = "To post as Guest, enter a temporary username or login and post as a member."


@pytest.fixture
def settle(project, pool, live):
    """``project``, until every read model holds everything written so far. (The log's
    readable head trails while any transaction in the shared cluster is open, so one
    ``project()`` may stop short of this test's last write.)"""

    async def run() -> None:
        target = await pool.fetchval("SELECT coalesce(max(position), 0) FROM events")
        deadline = time.monotonic() + 60
        while True:
            await project()
            done = await positions(live.redis, live.keys, list(PROJECTIONS))
            if all(p is not None and p >= target for p in done.values()):
                return
            assert time.monotonic() < deadline, "projections did not reach the last write"
            await asyncio.sleep(0.05)

    return run


def text(page: str) -> str:
    """What a reader sees: tags dropped, entities decoded, whitespace collapsed."""
    page = re.sub(r"<script\b.*?</script>", " ", page, flags=re.S)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


async def make_section(client, slug: str | None = None, title: str = "History") -> str:
    slug = slug or unique_slug()
    r = await client.post("/api/forums", json={"slug": slug, "title": title}, headers=OPERATOR)
    assert r.status_code == 201, r.text
    return slug


async def import_thread(store, forum: str, title: str, posts: list[dict]) -> None:
    line = msgspec.json.encode({"forum": forum, "title": title, "posts": posts})
    report = await Importer(store).lines([line])
    assert report.imported == 1, report.errors


async def thread_id_by_title(client, slug: str, title: str) -> int:
    r = await client.get(f"/api/forums/{slug}/threads")
    assert r.status_code == 200, r.text
    return next(t["id"] for t in r.json()["threads"] if t["title"] == title)


async def register(client, name: str, password: str = "correct horse") -> None:
    r = await client.post("/api/users", json={"name": name, "password": password})
    assert r.status_code == 201, r.text


def location(response) -> str:
    """The redirect's target without its fragment, for the next GET."""
    target = response.headers["location"]
    parts = urlsplit(target)
    return parts.path + (f"?{parts.query}" if parts.query else "")


# -- the reference page -----------------------------------------------------------------

async def test_thread_page_shows_the_reference_layout(client, settle, store):
    slug = unique_slug("history")
    ann, bob = unique_name("ann"), unique_name("bob")
    await import_thread(store, slug, "The fall of Rome", [
        {"id": 1, "author": ann, "created_at": "2011-06-08T10:00:00Z",
         "body": "Why did Rome fall?"},
        {"id": 2, "author": bob, "created_at": "2011-06-09T11:00:00Z",
         "body": f"[quote={ann} post=1]Why did Rome fall?[/quote]Lead pipes."},
        {"id": 3, "author": ann, "created_at": "2018-03-01T12:00:00Z",
         "body": "[b]Still[/b] wondering."},
    ])
    await settle()
    thread_id = await thread_id_by_title(client, slug, "The fall of Rome")

    r = await client.get(f"/threads/{thread_id}")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/html")
    page, seen = r.text, text(r.text)

    assert "Forum" in seen and 'href="/unanswered"' in page and ">Archives<" in page
    assert f'href="/forums/{slug}/archive"' in page
    assert "Account: Guest" in seen
    assert "<h1" in page and "The fall of Rome" in seen
    assert "posts: 3" in seen
    crumb = BREADCRUMB.format(slug=slug, title=html.escape(slug.replace("-", " ").title()))
    assert page.count(crumb) == 2
    for number in ("#1", "#2", "#3"):
        assert number in seen
    # OP before the starter's name on every one of their posts, never on others'.
    assert seen.count(f"OP {ann}") == 2
    assert f"OP {bob}" not in seen
    # Live counters: threads started | posts written.
    assert "1 | 2" in seen and "0 | 1" in seen
    # Dates like the reference: 8 Jun 2011.
    assert "8 Jun 2011" in seen and "9 Jun 2011" in seen and "1 Mar 2018" in seen
    # The quote is a block above the reply's own words.
    block = re.search(r'<blockquote class="quote".*?</blockquote>Lead pipes\.', page, re.S)
    assert block and f"{ann} wrote:" in block.group(0)
    assert "<strong>Still</strong> wondering." in page
    # Anchors per post, numbers linking to them; a reply box with its buttons.
    posts = (await client.get(f"/api/threads/{thread_id}")).json()["posts"]
    for post in posts:
        assert f'id="p{post["id"]}"' in page
    assert "<textarea" in page and ">Bold<" in page and ">Italic<" in page
    assert ">[quote]<" in page
    assert GUEST_TEXT in seen
    assert 'href="/login?next=' in page and 'name="guest_name"' in page
    # The breadcrumb and the reply box come after the last post.
    assert page.rindex(crumb) > page.index(f'id="p{posts[-1]["id"]}"')
    assert page.index('id="reply"') > page.rindex(crumb)


async def test_quote_link_prefills_the_reply_box_without_javascript(client, settle, store):
    slug = unique_slug()
    ann = unique_name("ann")
    await import_thread(store, slug, "Quotes", [
        {"author": ann, "created_at": "2011-06-08T10:00:00Z", "body": "Veni, vidi, vici."},
    ])
    await settle()
    thread_id = await thread_id_by_title(client, slug, "Quotes")
    post_id = (await client.get(f"/api/threads/{thread_id}")).json()["posts"][0]["id"]

    page = (await client.get(f"/threads/{thread_id}")).text
    assert f'quote={post_id}#reply"' in page
    r = await client.get(f"/threads/{thread_id}?quote={post_id}")
    assert r.status_code == 200
    box = re.search(r"<textarea[^>]*>(.*?)</textarea>", r.text, re.S)
    assert box and html.unescape(box.group(1)).strip() == (
        f"[quote={ann} post={post_id}]Veni, vidi, vici.[/quote]"
    )
    # A quote of something that is not in this thread leaves the box empty.
    r = await client.get(f"/threads/{thread_id}?quote=999999999")
    box = re.search(r"<textarea[^>]*>(.*?)</textarea>", r.text, re.S)
    assert r.status_code == 200 and box and box.group(1).strip() == ""


async def test_edited_deleted_and_locked_posts(client, settle):
    slug = await make_section(client)
    r = await client.post(f"/api/forums/{slug}/threads",
                          json={"title": "Edits", "body": "first", "guest_name": "gus"})
    thread_id, first = r.json()["thread_id"], r.json()["post_id"]
    r = await client.post(f"/api/threads/{thread_id}/posts",
                          json={"body": "secret words", "guest_name": "gil"})
    second = r.json()["post_id"]
    assert (await client.patch(f"/api/posts/{first}", json={"body": "first, fixed"},
                               headers=OPERATOR)).status_code == 200
    assert (await client.delete(f"/api/posts/{second}", headers=OPERATOR)).status_code == 200
    await settle()

    seen = text((await client.get(f"/threads/{thread_id}")).text)
    assert "first, fixed" in seen and "edited" in seen
    assert "This post was deleted." in seen and "secret words" not in seen
    assert "#2" in seen

    assert (await client.post(f"/api/threads/{thread_id}/lock",
                              headers=OPERATOR)).status_code == 200
    await settle()
    page = (await client.get(f"/threads/{thread_id}")).text
    assert "locked" in text(page) and "<textarea" not in page
    r = await client.post(f"/threads/{thread_id}/reply",
                          data={"body": "let me in", "guest_name": "gus",
                                "_csrf_token": await any_token(client)},
                          follow_redirects=False)
    assert r.status_code == 409 and "locked" in text(r.text).lower()


async def test_titles_bodies_and_names_are_escaped(client, settle):
    slug = await make_section(client, title="<b>Sec</b>")
    r = await client.post(f"/api/forums/{slug}/threads", json={
        "title": "<script>alert(1)</script>", "body": "<script>alert(2)</script><img src=x>",
        "guest_name": "mallory",
    })
    assert r.status_code == 201, r.text
    thread_id = r.json()["thread_id"]
    await settle()

    for path in (f"/threads/{thread_id}", f"/forums/{slug}", "/unanswered", "/"):
        page = (await client.get(path)).text
        assert "<script>alert(" not in page, path
        assert "<b>Sec</b>" not in page and "<img src=x>" not in page, path
    page = (await client.get(f"/threads/{thread_id}")).text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in page

    # A hostile guest name is refused, and echoed back only escaped.
    r = await reply(client, thread_id, follow_redirects=False,
                    data={"body": "hi", "guest_name": '"><script>alert(3)</script>'})
    assert 400 <= r.status_code < 500
    assert "<script>alert(3)" not in r.text
    assert "&lt;script&gt;alert(3)" in r.text


# -- writing through forms ---------------------------------------------------------------

async def test_reply_form_redirects_to_the_new_post_which_then_shows(client, settle):
    slug = await make_section(client)
    r = await client.post(f"/api/forums/{slug}/threads",
                          json={"title": "Forms", "body": "first", "guest_name": "ann"})
    thread_id = r.json()["thread_id"]
    await settle()

    r = await reply(client, thread_id, follow_redirects=False,
                    data={"body": "Hello [i]from[/i] a form", "guest_name": "carol",
                          "page": "1"})
    assert r.status_code == 303, r.text
    target = r.headers["location"]
    assert target.startswith(f"/threads/{thread_id}?page=1&after=")
    assert re.search(r"#p\d+$", target)
    await settle()

    r = await client.get(location(r))
    assert r.status_code == 200
    assert "Hello <em>from</em> a form" in r.text
    assert f'id="{target.rsplit("#", 1)[1]}"' in r.text
    seen = text(r.text)
    assert "posts: 2" in seen and "#2" in seen and "carol" in seen


async def test_after_waits_for_the_projection_then_answers_503(client, settle):
    slug = await make_section(client)
    r = await client.post(f"/api/forums/{slug}/threads",
                          json={"title": "Waiting", "body": "first", "guest_name": "ann"})
    thread_id = r.json()["thread_id"]
    await settle()
    r = await reply(client, thread_id, follow_redirects=False,
                    data={"body": "not projected yet", "guest_name": "bea"})
    assert r.status_code == 303
    # Nobody runs the projections: after the wait, a friendly 503 that says when to retry.
    r = await client.get(location(r))
    assert r.status_code == 503
    assert r.headers["retry-after"]
    assert r.headers["content-type"].startswith("text/html")
    assert "try again" in text(r.text).lower()


async def test_refused_forms_keep_the_text_and_show_why(client, settle):
    slug = await make_section(client)
    r = await client.post(f"/api/forums/{slug}/threads",
                          json={"title": "Refusals", "body": "first", "guest_name": "ann"})
    thread_id = r.json()["thread_id"]
    member_name = unique_name("mem")
    await register(client, member_name)
    await settle()

    # An empty body: 422, the reason shown, the guest name kept.
    r = await reply(client, thread_id, follow_redirects=False,
                    data={"body": "   ", "guest_name": "keepme"})
    assert r.status_code == 422
    assert "Please write something before posting." in text(r.text)  # words for people
    assert 'value="keepme"' in r.text and 'role="alert"' in r.text

    # A guest taking a member's name: 409, the body kept.
    words = "My long <carefully> written reply"
    r = await reply(client, thread_id, follow_redirects=False,
                    data={"body": words, "guest_name": member_name})
    assert r.status_code == 409
    assert "That name belongs to a member." in text(r.text)
    assert html.escape(words, quote=False) in r.text

    # No guest name at all: 400, still the text kept.
    r = await reply(client, thread_id, follow_redirects=False,
                    data={"body": "nameless"})
    assert r.status_code == 400 and ">nameless</textarea>" in r.text

    # A new thread without a title: the section page again, with the body kept.
    r = await submit(client, f"/forums/{slug}", f"/forums/{slug}/threads", follow_redirects=False,
                     data={"title": "", "body": "thread body kept", "guest_name": "g1"})
    assert r.status_code == 422
    assert "Please give your thread a title." in text(r.text)
    assert "thread body kept</textarea>" in r.text
    # Nothing refused was written.
    await settle()
    assert (await client.get(f"/api/threads/{thread_id}")).json()["thread"]["posts"] == 1


async def test_new_thread_form_and_section_listing(client, settle, store):
    slug = unique_slug()
    await import_thread(store, slug, "Old thread", [
        {"author": "oldie", "created_at": "2011-06-08T10:00:00Z", "body": "from 2011"},
    ])
    await settle()
    r = await submit(client, f"/forums/{slug}", f"/forums/{slug}/threads", follow_redirects=False,
                     data={"title": "Brand new", "body": "hello", "guest_name": "neo"})
    assert r.status_code == 303, r.text
    assert re.fullmatch(r"/threads/\d+\?after=\d+#p\d+", r.headers["location"])
    await settle()
    page = (await client.get(location(r))).text
    assert "Brand new" in text(page) and "OP neo" in text(page)

    page = (await client.get(f"/forums/{slug}")).text
    seen = text(page)
    assert seen.index("Brand new") < seen.index("Old thread")  # most recently bumped first
    assert "oldie" in seen and "8 Jun 2011" in seen
    assert 'action="/forums/' in page and 'name="title"' in page and 'name="guest_name"' in page

    # A reply bumps the old thread back to the top.
    old_id = await thread_id_by_title(client, slug, "Old thread")
    r = await reply(client, old_id, follow_redirects=False,
                    data={"body": "bump", "guest_name": "neo"})
    assert r.status_code == 303
    await settle()
    seen = text((await client.get(f"/forums/{slug}")).text)
    assert seen.index("Old thread") < seen.index("Brand new")

    # The board index, unanswered, and the archives.
    seen = text((await client.get("/")).text)
    assert slug.replace("-", " ").title() in seen
    page = (await client.get("/")).text
    assert f'href="/forums/{slug}/archive"' in page
    seen = text((await client.get("/unanswered")).text)
    assert "Brand new" in seen and "Old thread" not in seen
    page = (await client.get(f"/forums/{slug}/archive")).text
    assert f'href="/forums/{slug}/archive/2011"' in page
    this_year = (await client.get(f"/api/threads/{old_id}")).json()["thread"]["bumped_at"][:4]
    assert f'href="/forums/{slug}/archive/{this_year}"' in page
    seen = text((await client.get(f"/forums/{slug}/archive/2011")).text)
    assert "Old thread" in seen and "Brand new" not in seen


async def test_pages_of_a_long_thread_and_missing_things(client, settle, store):
    slug = unique_slug()
    await import_thread(store, slug, "Long", [
        {"author": "talker", "created_at": f"2011-06-08T10:{n:02d}:00Z", "body": f"post {n}"}
        for n in range(1, 28)
    ])
    await settle()
    thread_id = await thread_id_by_title(client, slug, "Long")

    page = (await client.get(f"/threads/{thread_id}")).text
    assert "posts: 27" in text(page) and "#25" in text(page) and "#26" not in text(page)
    assert f'href="/threads/{thread_id}?page=2"' in page
    page = (await client.get(f"/threads/{thread_id}?page=2")).text
    assert "#26" in text(page) and "#27" in text(page)

    for path in (f"/threads/{thread_id}?page=3", "/threads/987654321", "/forums/nope-nope",
                 f"/forums/{slug}/archive/1999", f"/forums/{slug}?page=9"):
        r = await client.get(path)
        assert r.status_code == 404, path
        assert r.headers["content-type"].startswith("text/html"), path
        assert "Not found" in text(r.text) and "Account: Guest" in text(r.text)
    r = await client.get(f"/threads/{thread_id}?page=0")
    assert r.status_code == 400 and r.headers["content-type"].startswith("text/html")
    # Odd tokens in after/quote are ignored, not errors.
    for query in ("after=%C2%B9", "after=-1", "quote=abc", "quote=99999999999999999999999"):
        r = await client.get(f"/threads/{thread_id}?{query}")
        assert r.status_code == 200, query


# -- members --------------------------------------------------------------------------

async def test_login_post_as_member_and_logout(client, settle):
    name = unique_name("mem")
    await register(client, name, "a good password")
    slug = await make_section(client)
    r = await client.post(f"/api/forums/{slug}/threads",
                          json={"title": "Members", "body": "first", "guest_name": "ann"})
    thread_id = r.json()["thread_id"]
    await settle()

    r = await client.get("/login")
    assert r.status_code == 200 and 'name="password"' in r.text
    r = await submit(client, "/login", "/login", follow_redirects=False,
                     data={"name": name, "password": "wrong password"})
    assert r.status_code == 400 and "Wrong name or password" in text(r.text)
    assert f'value="{name}"' in r.text

    r = await submit(client, "/login", "/login", follow_redirects=False,
                     data={"name": name, "password": "a good password"})
    assert r.status_code == 303 and r.headers["location"] == "/"
    cookie = r.headers["set-cookie"]
    assert cookie.startswith("forum_token=") and "HttpOnly" in cookie
    assert "samesite=lax" in cookie.lower()

    page = (await client.get(f"/threads/{thread_id}")).text
    assert f"Account: {name}" in text(page) and "Account: Guest" not in text(page)
    assert 'action="/logout"' in page
    assert GUEST_TEXT not in text(page) and 'name="guest_name"' not in page

    r = await reply(client, thread_id, follow_redirects=False,
                    data={"body": "as a member"})
    assert r.status_code == 303, r.text
    await settle()
    seen = text((await client.get(location(r))).text)
    assert "as a member" in seen and f"{name} member 0 | 1" in seen

    # The login form sends people back where they came from, never to another site.
    for target, expected in (("/threads/7?page=2", "/threads/7?page=2"), ("//evil.example", "/"),
                             ("https://evil.example/", "/"), ("/\\evil.example", "/")):
        r = await submit(client, "/login", "/login", follow_redirects=False, data={
            "name": name, "password": "a good password", "next": target})
        assert r.status_code == 303 and r.headers["location"] == expected, target

    r = await submit(client, "/", "/logout", {}, follow_redirects=False)
    assert r.status_code == 303
    assert "Account: Guest" in text((await client.get("/")).text)


async def test_register_form_signs_in_and_a_bad_cookie_is_a_guest(client, settle):
    name = unique_name("new")
    r = await client.get("/register")
    assert r.status_code == 200
    r = await submit(client, "/register", "/register", follow_redirects=False,
                     data={"name": name, "password": "short"})
    assert r.status_code == 422 and "password must be" in text(r.text)
    r = await submit(client, "/register", "/register", follow_redirects=False,
                     data={"name": name, "password": "long enough now"})
    assert r.status_code == 303, r.text
    await settle()
    assert f"Account: {name}" in text((await client.get("/")).text)
    r = await submit(client, "/register", "/register", follow_redirects=False,
                     data={"name": name, "password": "long enough now"})
    assert r.status_code == 409

    client.cookies.set("forum_token", "not.a.real.token")
    r = await client.get("/")
    assert r.status_code == 200 and "Account: Guest" in text(r.text)


async def test_a_kept_page_gives_guests_the_public_token_and_members_their_own(client, settle):
    """A thread page is rendered once per read-model state and kept (service/web/kept.py):
    every anonymous viewer gets the same page with the public form token, which works;
    each member gets their own token in the same kept page; a new post shows."""
    slug = await make_section(client)
    r = await client.post(f"/api/forums/{slug}/threads",
                          json={"title": "Kept", "body": "first", "guest_name": "ann"})
    thread_id = r.json()["thread_id"]
    await settle()
    action = f"/threads/{thread_id}/reply"
    pages = []
    for _ in range(2):  # two viewers: the same client without the first one's cookies
        client.cookies.clear()
        pages.append((await client.get(f"/threads/{thread_id}")).text)
    assert pages[0] == pages[1] and "\x00" not in pages[1]
    token = form_token(pages[1], action)
    r = await client.post(action, data={"body": "from the second viewer", "guest_name": "bea",
                                        "_csrf_token": token}, follow_redirects=False,
                          headers={"Origin": origin(client)})
    assert r.status_code == 303, r.text
    await settle()
    r = await client.get(f"/threads/{thread_id}")
    assert "from the second viewer" in r.text and "posts: 2" in text(r.text)

    members = []
    for _ in range(2):
        client.cookies.clear()
        name = unique_name("mem")
        await register(client, name)
        r = await submit(client, "/login", "/login", {"name": name, "password": "correct horse"},
                         follow_redirects=False)
        assert r.status_code == 303
        members.append((await client.get(f"/threads/{thread_id}")).text)
    tokens = [form_token(page, action) for page in members]
    assert len({token, *tokens}) == 3 and tokens[1] == client.cookies["forum_csrf"]
    client.cookies.clear()
