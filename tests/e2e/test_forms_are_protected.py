"""Cross-site request forgery and browser hardening, through HTTP on the in-process app
(real PostgreSQL and Redis): every state-changing form needs its token and this site's
Origin; every response carries the security headers; nothing loads from another origin."""

from __future__ import annotations

import re

import httpx
import pytest

from service.headers import SECURITY_HEADERS
from tests.builders import unique_name, unique_slug
from tests.conftest import OPERATOR
from tests.forms import any_token, form_token, submit

SITE = "http://testserver.local"  # the in-process client's own origin
FOREIGN = "http://evil.example"


async def count_events(pool) -> int:
    return int(await pool.fetchval("SELECT count(*) FROM events"))


async def section_with_thread(client, project) -> tuple[str, int]:
    slug = unique_slug()
    r = await client.post("/api/forums", json={"slug": slug, "title": "Forms"}, headers=OPERATOR)
    assert r.status_code == 201, r.text
    r = await client.post(f"/api/forums/{slug}/threads",
                          json={"title": "Protected", "body": "first", "guest_name": "ann"})
    assert r.status_code == 201, r.text
    await project()
    return slug, int(r.json()["thread_id"])


async def sign_in(client, name: str) -> None:
    r = await client.post("/api/users", json={"name": name, "password": "correct horse"})
    assert r.status_code == 201, r.text
    r = await submit(client, "/login", "/login", {"name": name, "password": "correct horse"},
                     follow_redirects=False)
    assert r.status_code == 303, r.text


def forms_of(client, slug: str, thread_id: int) -> list[tuple[str, str, dict[str, str]]]:
    """(page that shows the form, action, fields that would succeed) for every form a
    guest can send."""
    return [
        (f"/threads/{thread_id}", f"/threads/{thread_id}/reply",
         {"body": "a reply", "guest_name": unique_name("g")}),
        (f"/forums/{slug}", f"/forums/{slug}/threads",
         {"title": "New", "body": "a thread", "guest_name": unique_name("g")}),
        ("/register", "/register", {"name": unique_name("r"), "password": "long enough now"}),
        ("/login", "/login", {"name": "nobody", "password": "whatever it is"}),
    ]


async def control_forms(client, project) -> list[tuple[str, str, dict[str, str]]]:
    """(page that shows the form, action, fields that would succeed) for every post and
    thread control (service/web/post_controls.py), as a moderator (who may use them all)
    viewing a member's post; the client is left signed in as that moderator."""
    _, thread_id = await section_with_thread(client, project)
    other = unique_slug()
    r = await client.post("/api/forums", json={"slug": other, "title": "Other"},
                          headers=OPERATOR)
    assert r.status_code == 201, r.text
    author = unique_name("a")
    r = await client.post("/api/users", json={"name": author, "password": "correct horse"})
    token = (await client.post("/api/sessions", json={
        "name": author, "password": "correct horse"})).json()["token"]
    r = await client.post(f"/api/threads/{thread_id}/posts", json={"body": "liked"},
                          headers={"Authorization": f"Bearer {token}"})
    post_id = r.json()["post_id"]
    mod = unique_name("mod")
    await sign_in(client, mod)
    r = await client.put(f"/api/users/{mod}/role", json={"role": "moderator"},
                         headers=OPERATOR)
    assert r.status_code == 200, r.text
    await project()
    page = f"/threads/{thread_id}"
    return [
        (page, f"/posts/{post_id}/like", {}),
        (page, f"/posts/{post_id}/unlike", {}),
        (f"/posts/{post_id}/edit", f"/posts/{post_id}/edit", {"body": "edited"}),
        (page, f"{page}/lock", {}),
        (page, f"{page}/unlock", {}),
        (page, f"{page}/move", {"forum": other}),
        (f"/posts/{post_id}/delete", f"/posts/{post_id}/delete", {}),
    ]


def refused_page(r: httpx.Response) -> None:
    assert r.status_code == 403, (r.status_code, r.text[:300])
    assert r.headers["content-type"].startswith("text/html")
    assert "Error 403" in r.text
    assert "set-cookie" not in r.headers or "forum_token=" not in r.headers["set-cookie"]


# -- the token ------------------------------------------------------------------------

async def test_every_form_without_its_token_is_refused_and_writes_nothing(
        client, project, pool):
    slug, thread_id = await section_with_thread(client, project)
    for page, action, fields in forms_of(client, slug, thread_id):
        await client.get(page)  # the visitor has the cookie; only the field is missing
        before = await count_events(pool)
        refused_page(await client.post(action, data=fields, follow_redirects=False))
        refused_page(await client.post(action, data={**fields, "_csrf_token": ""},
                                       follow_redirects=False))
        refused_page(await client.post(action, data={**fields, "_csrf_token": "f" * 128},
                                       follow_redirects=False))
        assert await count_events(pool) == before, action


async def test_every_form_with_its_token_from_this_site_works(client, project, pool):
    slug, thread_id = await section_with_thread(client, project)
    for page, action, fields in forms_of(client, slug, thread_id):
        r = await submit(client, page, action, fields, follow_redirects=False,
                         headers={"Origin": SITE, "Referer": f"{SITE}{page}"})
        expected = 400 if action == "/login" else 303  # no such member: a bad form
        assert r.status_code == expected, (action, r.status_code, r.text[:300])
    # The registration signed this client in: signing out is a form too.
    r = await submit(client, "/", "/logout", {}, follow_redirects=False,
                     headers={"Origin": SITE})
    assert r.status_code == 303
    assert "Account: Guest" in (await client.get("/")).text


async def test_every_control_form_needs_its_token_and_works_with_it(client, project, pool):
    for page, action, fields in await control_forms(client, project):
        await client.get(page)
        before = await count_events(pool)
        refused_page(await client.post(action, data=fields, follow_redirects=False))
        refused_page(await client.post(action, data={**fields, "_csrf_token": "f" * 128},
                                       follow_redirects=False))
        assert await count_events(pool) == before, action
        r = await submit(client, page, action, fields, follow_redirects=False,
                         headers={"Origin": SITE, "Referer": f"{SITE}{page}"})
        assert r.status_code == 303, (action, r.status_code, r.text[:300])
        assert await count_events(pool) == before + 1, action
        await project()


async def test_sign_out_without_the_token_keeps_the_member_signed_in(client):
    name = unique_name("mem")
    await sign_in(client, name)
    refused_page(await client.post("/logout", follow_redirects=False))
    assert f"Account: {name}" in (await client.get("/")).text


async def test_a_visitors_token_only_counts_with_the_cookie_it_was_issued_with(
        client, project, settings):
    _slug, thread_id = await section_with_thread(client, project)
    token = await any_token(client)  # the sign-in form's: this visitor's own
    fields = {"body": "forged", "guest_name": "mallory", "_csrf_token": token}

    # Someone else's token (an attacker's own, fetched from the site) is not this one.
    from litestar.testing import AsyncTestClient

    from service.app import create_app

    async with AsyncTestClient(app=create_app(settings)) as other:
        await other.get("/login")
        refused_page(await other.post(f"/threads/{thread_id}/reply", data=fields,
                                      follow_redirects=False, headers={"Origin": SITE}))
        # Without any cookie at all.
        other.cookies.clear()
        refused_page(await other.post(f"/threads/{thread_id}/reply", data=fields,
                                      follow_redirects=False, headers={"Origin": SITE}))


async def test_every_api_process_accepts_the_forms_of_every_other(client, project, settings):
    """The secret comes from PostgreSQL, not from the process: a form served by one API
    process posts to another (two apps on one database stand for two processes), with
    the public token of an anonymous page as with a visitor's own."""
    from litestar.testing import AsyncTestClient

    from service.app import create_app

    _slug, thread_id = await section_with_thread(client, project)
    page = (await client.get(f"/threads/{thread_id}")).text
    public = form_token(page, f"/threads/{thread_id}/reply")
    own = await any_token(client)
    async with AsyncTestClient(app=create_app(settings)) as second:
        second.cookies.update(client.cookies)
        for token in (public, own):
            r = await second.post(f"/threads/{thread_id}/reply", follow_redirects=False,
                                  data={"body": "via the other process", "guest_name": "gus",
                                        "_csrf_token": token}, headers={"Origin": SITE})
            assert r.status_code == 303, r.text


# -- the public token of anonymous pages ------------------------------------------------

async def public_token(client, thread_id: int) -> str:
    client.cookies.clear()
    r = await client.get(f"/threads/{thread_id}")
    assert "set-cookie" not in r.headers and r.headers["cache-control"].startswith("public")
    return form_token(r.text, f"/threads/{thread_id}/reply")


async def test_a_guest_posts_with_the_public_token_from_this_site(client, project, pool):
    """The same token for every anonymous visitor; no cookie; Origin, or failing that
    Referer, naming this site."""
    slug, thread_id = await section_with_thread(client, project)
    token = await public_token(client, thread_id)
    assert token == form_token((await client.get(f"/forums/{slug}")).text,
                               f"/forums/{slug}/threads")
    for headers in ({"Origin": SITE}, {"Referer": f"{SITE}/threads/{thread_id}"}):
        client.cookies.clear()
        r = await client.post(f"/threads/{thread_id}/reply", headers=headers,
                              follow_redirects=False,
                              data={"body": "a guest's reply", "guest_name": unique_name("g"),
                                    "_csrf_token": token})
        assert r.status_code == 303, (headers, r.text[:300])
    client.cookies.clear()
    r = await client.post(f"/forums/{slug}/threads", headers={"Origin": SITE},
                          follow_redirects=False,
                          data={"title": "By a guest", "body": "hello", "guest_name": "gil",
                                "_csrf_token": token})
    assert r.status_code == 303, r.text


@pytest.mark.parametrize(("headers", "cookies", "says"), [
    ({"Origin": FOREIGN}, {}, "sent from another site"),
    ({"Referer": f"{FOREIGN}/page"}, {}, "sent from another site"),
    ({"Origin": "null"}, {}, "sent from another site"),
    ({}, {}, "did not say which site"),
    ({"Referer": ""}, {}, "did not say which site"),
    ({"Origin": SITE}, {"forum_token": "anything"}, "signed in after this page"),
], ids=["foreign-origin", "foreign-referer", "null-origin", "no-origin", "empty-referer",
        "with-a-session-cookie"])
async def test_the_public_token_is_refused_without_this_sites_origin_or_with_a_session(
        client, project, pool, headers, cookies, says):
    slug, thread_id = await section_with_thread(client, project)
    token = await public_token(client, thread_id)
    client.cookies.update(cookies)
    before = await count_events(pool)
    for action, fields in ((f"/threads/{thread_id}/reply", {"body": "x", "guest_name": "g"}),
                           (f"/forums/{slug}/threads",
                            {"title": "t", "body": "x", "guest_name": "g"})):
        r = await client.post(action, headers=headers, follow_redirects=False,
                              data={**fields, "_csrf_token": token})
        refused_page(r)
        assert says in r.text, (action, r.text[:500])
    assert await count_events(pool) == before


async def test_a_members_session_with_the_public_token_is_refused(client, project, pool):
    """A real session, not merely a cookie: the public token never acts for a member."""
    _slug, thread_id = await section_with_thread(client, project)
    token = await public_token(client, thread_id)
    await sign_in(client, unique_name("mem"))
    before = await count_events(pool)
    refused_page(await client.post(f"/threads/{thread_id}/reply", headers={"Origin": SITE},
                                   data={"body": "as the member?", "_csrf_token": token}))
    refused_page(await client.post("/logout", headers={"Origin": SITE},
                                   data={"_csrf_token": token}))
    assert await count_events(pool) == before
    assert "Account: Guest" not in (await client.get("/")).text


async def test_a_stale_or_forged_public_token_is_refused(client, project, pool):
    _slug, thread_id = await section_with_thread(client, project)
    public = client.app.state.csrf_public
    now = public.clock()
    current = await public_token(client, thread_id)
    public.clock = lambda: now - 2 * public.period  # the token of two hours ago
    stale = public.current()
    public.clock = lambda: now - public.period  # an hour ago: still accepted
    last_hour = public.current()
    public.clock = lambda: now
    assert len({current, stale, last_hour}) == 3
    before = await count_events(pool)
    for forged in (stale, "p" + "0" * 64, current[:-1] + ("0" if current[-1] != "0" else "1"),
                   "p", current + "0", "p\u00e9" + current[3:]):
        client.cookies.clear()
        refused_page(await client.post(f"/threads/{thread_id}/reply", headers={"Origin": SITE},
                                       data={"body": "x", "guest_name": "g",
                                             "_csrf_token": forged}))
    assert await count_events(pool) == before
    r = await client.post(f"/threads/{thread_id}/reply", headers={"Origin": SITE},
                          follow_redirects=False,
                          data={"body": "x", "guest_name": "g", "_csrf_token": last_hour})
    assert r.status_code == 303, r.text


async def test_sign_in_and_registration_never_take_the_public_token(client, project):
    """Login CSRF: those forms keep the visitor's own token."""
    _slug, thread_id = await section_with_thread(client, project)
    name = unique_name("mem")
    r = await client.post("/api/users", json={"name": name, "password": "correct horse"})
    assert r.status_code == 201, r.text
    token = await public_token(client, thread_id)
    for action, fields in (("/login", {"name": name, "password": "correct horse"}),
                           ("/register", {"name": unique_name("r"),
                                          "password": "long enough now"})):
        client.cookies.clear()
        refused_page(await client.post(action, headers={"Origin": SITE},
                                       data={**fields, "_csrf_token": token}))
    assert "Account: Guest" in (await client.get("/")).text
    login = (await client.get("/login")).text
    assert form_token(login, "/login") == client.cookies["forum_csrf"] != token


async def test_the_token_cookie_is_httponly_samesite_and_replaced_when_not_ours(client):
    r = await client.get("/login")
    cookie = r.headers["set-cookie"]
    assert cookie.startswith("forum_csrf=") and "HttpOnly" in cookie
    assert "samesite=lax" in cookie.lower()
    # Once set, pages do not set it again, and the forms carry its value.
    again = await client.get("/register")
    assert "set-cookie" not in again.headers
    assert form_token(again.text, "/register") == client.cookies["forum_csrf"]

    # A value this site did not sign (planted by someone, or from an old secret) is
    # replaced, so that the visitor's forms work again.
    client.cookies.clear()
    r = await client.get("/register", headers={"Cookie": f"forum_csrf={'0' * 128}"})
    fresh = form_token(r.text, "/register")
    assert fresh != "0" * 128
    assert r.headers["set-cookie"].startswith(f"forum_csrf={fresh};")


async def test_the_json_api_health_and_static_files_set_no_token_cookie(client, project):
    await project()
    for path in ("/api/forums", "/health", "/static/forum.css", "/static/forum.js",
                 "/api/schema"):
        r = await client.get(path)
        assert r.status_code == 200, path
        assert "set-cookie" not in r.headers, path
    # The JSON API takes no form token: it authenticates by headers, never cookies.
    r = await client.post("/api/users", json={"name": unique_name("api"),
                                              "password": "long enough now"})
    assert r.status_code == 201, r.text


# -- the origin -----------------------------------------------------------------------

@pytest.mark.parametrize("headers", [
    {"Origin": FOREIGN},
    {"Origin": "https://testserver.local.evil.example"},
    {"Origin": "http://testserver.local:8080"},
    {"Origin": "null"},
    {"Referer": f"{FOREIGN}/forged.html"},
    {"Origin": FOREIGN, "Referer": f"{SITE}/login"},
], ids=["foreign", "look-alike", "other-port", "null", "foreign-referer", "origin-wins"])
async def test_a_form_sent_from_another_origin_is_refused_even_with_the_token(
        client, project, pool, headers):
    slug, thread_id = await section_with_thread(client, project)
    for page, action, fields in forms_of(client, slug, thread_id):
        before = await count_events(pool)
        refused_page(await submit(client, page, action, fields, follow_redirects=False,
                                  headers=headers))
        assert await count_events(pool) == before, action
    r = await client.post("/logout", headers=headers, follow_redirects=False,
                          data={"_csrf_token": client.cookies["forum_csrf"]})
    refused_page(r)


async def test_the_refusal_says_why(client):
    await client.get("/login")
    r = await client.post("/login", data={"name": "x", "password": "y"})
    assert "expired or did not come from this site" in r.text
    r = await submit(client, "/login", "/login", {"name": "x", "password": "y"},
                     headers={"Origin": FOREIGN})
    assert "sent from another site" in r.text


# -- headers and origins ----------------------------------------------------------------

def assert_security_headers(r: httpx.Response, what: str) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert r.headers.get(name) == value, (what, name, r.headers.get(name))
    csp = r.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert not re.search(r"https?:|\*", csp), csp


async def site_pages(client, project) -> list[str]:
    slug, thread_id = await section_with_thread(client, project)
    return ["/", "/unanswered", f"/forums/{slug}", f"/forums/{slug}/archive",
            f"/threads/{thread_id}", f"/threads/{thread_id}?quote=1", "/login", "/register",
            "/threads/987654321"]


async def test_security_headers_on_pages_json_errors_and_static_files(client, project):
    for path in [*await site_pages(client, project), "/api/forums", "/api/schema", "/health",
                 "/api/threads/987654321", "/no/such/path", "/static/forum.css"]:
        assert_security_headers(await client.get(path), path)
    assert_security_headers(await client.post("/login", data={}), "refused form")
    assert_security_headers(await client.post("/api/users", json={}), "refused JSON")


_ASSET = re.compile(r"<(script|link|img|iframe|source|embed|object|form)\b[^>]*>", re.I)
_URL = re.compile(r'\b(?:src|href|action|data|srcset)\s*=\s*"([^"]*)"', re.I)


async def test_nothing_on_the_site_loads_from_another_origin(client, project):
    checked = 0
    pages = await site_pages(client, project)
    for path in pages:
        page = (await client.get(path)).text
        # No inline script, no inline style, no inline event handler: the CSP forbids them.
        assert not re.search(r"<script\b(?![^>]*\bsrc=)", page, re.I), path
        assert not re.search(r"<style\b|\sstyle\s*=|\son[a-z]+\s*=", page, re.I), path
        for tag in _ASSET.finditer(page):
            for url in _URL.findall(tag.group(0)):
                assert not re.match(r"\s*(?:[a-z][a-z0-9+.-]*:)?//", url, re.I), (path, tag)
                checked += 1
    assert checked > 2 * len(pages)  # the stylesheet, the script, the forms: all looked at
    # Nor do the static files pull anything in from elsewhere.
    for static in ("/static/forum.css", "/static/forum.js"):
        body = (await client.get(static)).text
        assert not re.search(r"url\(\s*['\"]?\s*(?:[a-z]+:)?//|@import|https?://", body,
                             re.I), static


async def test_the_api_schema_is_json_and_no_documentation_ui_loads_from_a_cdn(client):
    for path in ("/api/schema", "/api/schema/openapi.json"):
        r = await client.get(path)
        assert r.status_code == 200, path
        assert r.json()["openapi"].startswith("3."), path
    for path in ("/api/schema/swagger", "/api/schema/redoc", "/api/schema/elements",
                 "/api/schema/rapidoc", "/api/schema/scalar"):
        r = await client.get(path)
        assert r.status_code == 404, path
        assert "cdn" not in r.text.lower()

