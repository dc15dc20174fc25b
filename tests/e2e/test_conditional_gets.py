"""Conditional GETs and caches, in-process on real PostgreSQL and Redis: every read answers
an ETag; naming it in If-None-Match gets 304 with no body while nothing changed, and a new
post changes it. Anonymous pages may be kept by a shared cache (their forms carry the
public token); members' pages, and pages holding a visitor's own form token, never."""

from __future__ import annotations

import re

import pytest
from litestar.testing import AsyncTestClient

from service.app import create_app
from tests.builders import unique_name, unique_slug
from tests.conftest import OPERATOR
from tests.forms import submit

TOKEN_FIELD = re.compile(r'name="_csrf_token"')
GARBAGE_TAGS = ["", "garbage", "W/", '"', 'W/"', ",,,", "W/\"x\" W/\"y\"", b"\x7f\x80\xff",
                "*, *", 'W/"1-0"', "a" * 20_000, ", " * 5_000, '"' * 9_000, "W/" * 7_000]


async def board(client, project) -> dict[str, object]:
    slug = unique_slug()
    r = await client.post("/api/forums", json={"slug": slug, "title": "S"}, headers=OPERATOR)
    assert r.status_code == 201, r.text
    r = await client.post(f"/api/forums/{slug}/threads",
                          json={"title": "T", "body": "first", "guest_name": "ann"})
    assert r.status_code == 201, r.text
    thread, post = r.json()["thread_id"], r.json()["post_id"]
    await project()
    year = (await client.get(f"/api/forums/{slug}/archive")).json()["years"][0]["year"]
    return {"slug": slug, "thread": thread, "post": post, "year": year}


def json_reads(b: dict[str, object]) -> list[str]:
    return ["/api/forums", f"/api/forums/{b['slug']}/threads", f"/api/threads/{b['thread']}",
            f"/api/posts/{b['post']}", "/api/users/ann", "/api/unanswered",
            f"/api/forums/{b['slug']}/archive", f"/api/forums/{b['slug']}/archive/{b['year']}"]


def pages(b: dict[str, object]) -> list[str]:
    return ["/", "/unanswered", f"/forums/{b['slug']}", f"/threads/{b['thread']}",
            f"/forums/{b['slug']}/archive", f"/forums/{b['slug']}/archive/{b['year']}",
            "/login", "/register"]


async def reply(client, b: dict[str, object]) -> None:
    r = await client.post(f"/api/threads/{b['thread']}/posts",
                          json={"body": "a new post", "guest_name": "bob"})
    assert r.status_code == 201, r.text


async def test_every_json_read_answers_304_until_a_new_post(client, project):
    b = await board(client, project)
    tags = {}
    for path in json_reads(b):
        first = await client.get(path)
        assert first.status_code == 200, path
        tag = tags[path] = first.headers["etag"]
        assert re.fullmatch(r'W/"\d+-[0-9a-f]{24}"', tag), (path, tag)
        again = await client.get(path, headers={"If-None-Match": tag})
        assert again.status_code == 304, path
        assert again.content == b""
        assert again.headers["etag"] == tag
        assert again.headers["x-projection-position"] == first.headers["x-projection-position"]
        assert "content-type" not in again.headers
        assert (await client.get(path, headers={"If-None-Match": "*"})).status_code == 304
        listed = await client.get(path, headers={"If-None-Match": f'W/"1-x", {tag}'})
        assert listed.status_code == 304
    await reply(client, b)
    await project()
    for path in json_reads(b):
        changed = await client.get(path, headers={"If-None-Match": tags[path]})
        assert changed.status_code == 200, path
        assert changed.headers["etag"] != tags[path], path


async def test_an_unchanged_read_keeps_its_tag_across_processes_and_a_setting_changes_it(
        client, project, settings):
    import msgspec

    b = await board(client, project)
    path = f"/api/threads/{b['thread']}"
    tag = (await client.get(path)).headers["etag"]
    async with AsyncTestClient(app=create_app(settings)) as other:  # another API process
        assert (await other.get(path, headers={"If-None-Match": tag})).status_code == 304
    paged = msgspec.structs.replace(settings, per_page=7)  # another page size: other bytes
    async with AsyncTestClient(app=create_app(paged)) as other:
        assert (await other.get(path, headers={"If-None-Match": tag})).status_code == 200


async def test_garbage_if_none_match_is_ignored_never_a_5xx(client, project):
    b = await board(client, project)
    paths = [*json_reads(b), *pages(b), "/feeds/latest.atom", f"/forums/{b['slug']}.atom",
             f"/threads/{b['thread']}.atom", "/api/held", "/nowhere"]
    for path in paths:
        for garbage in GARBAGE_TAGS:
            r = await client.get(path, headers={"If-None-Match": garbage})
            assert r.status_code < 500, (path, garbage[:20], r.status_code)
            if path != "/nowhere" and not path.startswith("/api/held"):
                assert r.status_code == 200, (path, garbage[:20], r.status_code)


async def test_the_held_queue_is_private_and_tagged_by_its_bytes(client, project):
    b = await board(client, project)
    r = await client.post(f"/api/threads/{b['thread']}/posts",
                          json={"body": "see https://spam.example", "guest_name": "sp"})
    assert r.status_code == 202, r.text
    await project()
    first = await client.get("/api/held", headers=OPERATOR)
    assert first.headers["cache-control"] == "private, no-store"
    again = await client.get("/api/held", headers={**OPERATOR,
                                                   "If-None-Match": first.headers["etag"]})
    assert again.status_code == 304


async def test_an_anonymous_page_without_a_form_is_public_and_sets_no_cookie(client, project):
    b = await board(client, project)
    for path in ("/", "/unanswered", f"/forums/{b['slug']}/archive",
                 f"/forums/{b['slug']}/archive/{b['year']}"):
        client.cookies.clear()
        first = await client.get(path)
        assert first.status_code == 200, path
        assert first.headers["cache-control"] == "public, max-age=10", path
        assert first.headers["vary"] == "Cookie"
        assert "set-cookie" not in first.headers, path
        assert not TOKEN_FIELD.search(first.text), path
        again = await client.get(path, headers={"If-None-Match": first.headers["etag"]})
        assert again.status_code == 304 and again.content == b"", path
        assert again.headers["cache-control"] == "public, max-age=10"
        # Every anonymous visitor gets the same bytes and the same tag, cookie or not.
        client.cookies.set("forum_csrf", "whatever")
        client.cookies.set("forum_guest", "whatever")
        other = await client.get(path)
        assert other.content == first.content and other.headers["etag"] == first.headers["etag"]
    client.cookies.clear()


async def test_a_new_post_changes_the_tag_of_every_page_showing_it(client, project):
    b = await board(client, project)
    shows_it = ["/", f"/forums/{b['slug']}", f"/threads/{b['thread']}"]
    tags = {path: (await client.get(path)).headers["etag"] for path in shows_it}
    for path, tag in tags.items():
        assert (await client.get(path, headers={"If-None-Match": tag})).status_code == 304
    await reply(client, b)
    await project()
    for path, tag in tags.items():
        changed = await client.get(path, headers={"If-None-Match": tag})
        assert changed.status_code == 200, path
        assert changed.headers["etag"] != tag


async def test_anonymous_thread_and_section_pages_are_public_and_the_same_for_everyone(
        client, project, settings):
    """Their forms carry the public token (service/web/csrf.py): no cookie is set, and
    two visitors who never met get the same bytes and the same tag."""
    b = await board(client, project)
    for path in (f"/forums/{b['slug']}", f"/threads/{b['thread']}"):
        client.cookies.clear()
        first = await client.get(path)
        assert first.status_code == 200, path
        assert first.headers["cache-control"] == "public, max-age=10", path
        assert first.headers["vary"] == "Cookie", path
        assert "set-cookie" not in first.headers, path
        assert TOKEN_FIELD.search(first.text), path  # the form is there, token and all
        again = await client.get(path, headers={"If-None-Match": first.headers["etag"]})
        assert again.status_code == 304 and again.content == b"", path
        assert again.headers["cache-control"] == "public, max-age=10"
        async with AsyncTestClient(app=create_app(settings)) as other:
            theirs = await other.get(path)
            assert theirs.content == first.content, path
            assert theirs.headers["etag"] == first.headers["etag"], path
            assert "set-cookie" not in theirs.headers, path
    client.cookies.clear()


async def test_the_public_token_changes_every_hour_and_so_does_the_tag(client, project):
    b = await board(client, project)
    path = f"/threads/{b['thread']}"
    public = client.app.state.csrf_public
    public.clock = lambda: 7_200_000.0
    first = await client.get(path)
    public.clock = lambda: 7_200_000.0 + 3600
    later = await client.get(path, headers={"If-None-Match": first.headers["etag"]})
    assert later.status_code == 200 and later.headers["etag"] != first.headers["etag"]
    assert later.text != first.text
    # A page without a form keeps its tag across the hour.
    home = await client.get("/")
    public.clock = lambda: 7_200_000.0 + 7200
    assert (await client.get("/", headers={"If-None-Match": home.headers["etag"]})
            ).status_code == 304


async def test_sign_in_pages_and_a_stale_session_get_the_visitors_own_token(
        client, project, settings):
    b = await board(client, project)
    for path, cookies in (("/login", {}), ("/register", {}),
                          (f"/threads/{b['thread']}", {"forum_token": "revoked.or.expired"}),
                          (f"/forums/{b['slug']}", {"forum_token": "revoked.or.expired"})):
        client.cookies.clear()
        client.cookies.update(cookies)
        first = await client.get(path)
        assert first.status_code == 200, path
        assert first.headers["cache-control"] == "private, no-cache", path
        assert first.headers["set-cookie"].startswith("forum_csrf="), path
        tag = first.headers["etag"]
        # The same visitor (its cookie now sent) asking again: nothing changed.
        again = await client.get(path, headers={"If-None-Match": tag})
        assert again.status_code == 304, path
        assert "set-cookie" not in again.headers
        # Another visitor's page holds another token: never the first one's tag.
        async with AsyncTestClient(app=create_app(settings)) as other:
            other.cookies.update(cookies)
            theirs = await other.get(path, headers={"If-None-Match": tag})
            assert theirs.status_code == 200, path
            assert theirs.headers["etag"] != tag
    client.cookies.clear()


async def test_member_pages_are_never_public_and_never_a_guests(client, project):
    b = await board(client, project)
    guest_tags = {path: (await client.get(path)).headers["etag"] for path in pages(b)[:6]}
    name = unique_name("m")
    r = await client.post("/api/users", json={"name": name, "password": "correct horse"})
    assert r.status_code == 201, r.text
    r = await submit(client, "/login", "/login", {"name": name, "password": "correct horse"},
                     follow_redirects=False)
    assert r.status_code == 303, r.text
    for path in pages(b)[:6]:
        mine = await client.get(path)
        assert mine.status_code == 200, path
        assert mine.headers["cache-control"] == "private, no-cache", path
        assert f"Account: {name}" in mine.text
        assert (await client.get(path, headers={"If-None-Match": mine.headers["etag"]})
                ).status_code == 304, path
        assert mine.headers["etag"] != guest_tags[path], path
        assert "public" not in mine.headers["cache-control"], path
        kept = await client.get(path, headers={"If-None-Match": guest_tags[path]})
        assert kept.status_code == 200 and f"Account: {name}" in kept.text, path


@pytest.mark.parametrize("max_age", [0, 30])
async def test_the_shared_cache_lifetime_is_a_setting(client, project, settings, max_age):
    import msgspec

    await board(client, project)
    tuned = msgspec.structs.replace(settings, public_max_age=max_age)
    async with AsyncTestClient(app=create_app(tuned)) as app:
        r = await app.get("/")
        expected = "private, no-cache" if max_age == 0 else f"public, max-age={max_age}"
        assert r.headers["cache-control"] == expected
        assert (await app.get("/feeds/latest.atom")).headers["cache-control"] == (
            "no-cache" if max_age == 0 else f"public, max-age={max_age}")


async def test_the_schema_documents_every_conditional_read(client):
    schema = (await client.get("/api/schema/openapi.json")).json()
    conditional = {}
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if method == "get" and "304" in operation["responses"]:
                conditional[operation["operationId"]] = (path, operation)
    assert set(conditional) == {"getThread", "listUnanswered", "listForums", "listThreads",
                                "archiveYears", "archiveYear", "getPost", "getUser",
                                "listHeld"}
    for path, operation in conditional.values():
        assert {"name": "If-None-Match", "in": "header"}.items() <= next(
            p for p in operation["parameters"] if p["name"] == "If-None-Match").items(), path
        assert operation["responses"]["200"]["headers"]["ETag"]["required"] is True
        assert "content" not in operation["responses"]["304"]


async def test_a_rebuilt_read_model_changes_the_tag_at_the_same_checkpoint(
        client, project, settings):
    """A rebuild (as after an erasure, whose rewritten log a new namespace replays up to
    the same checkpoints) is another state: never a 304 for the old copy."""
    from service.operations import replay

    await board(client, project)
    before = {path: (await client.get(path)).headers["etag"] for path in ("/", "/api/forums")}
    await replay(settings, ["thread_list"], jobs=1)
    for path, tag in before.items():
        new = await client.get(path, headers={"If-None-Match": tag})
        assert new.status_code == 200, path
        assert new.headers["etag"] != tag
        # The same position: only the namespace tells the states apart.
        assert new.headers["etag"].split("-")[0] == tag.split("-")[0], path
