"""The Atom feeds, in-process on real PostgreSQL and Redis: each parses as Atom 1.0 with a
feed library, says what the board holds, is linked from its page, and answers 304 while
nothing changed."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import feedparser
import msgspec
from litestar.testing import AsyncTestClient

from service.app import create_app
from tests.builders import unique_slug
from tests.conftest import OPERATOR

A = "{http://www.w3.org/2005/Atom}"
BASE = "http://testserver.local"  # the in-process client's own address


async def board(client, project, threads: int = 3, replies: int = 0) -> tuple[str, list[int]]:
    slug = unique_slug()
    r = await client.post("/api/forums", json={"slug": slug, "title": "Tea & <Cakes>"},
                          headers=OPERATOR)
    assert r.status_code == 201, r.text
    ids = []
    for n in range(threads):
        r = await client.post(f"/api/forums/{slug}/threads", json={
            "title": f"Thread {n} <&>", "body": f"[b]first[/b] of {n}", "guest_name": "ann"})
        assert r.status_code == 201, r.text
        ids.append(r.json()["thread_id"])
    for n in range(replies):
        r = await client.post(f"/api/threads/{ids[0]}/posts",
                              json={"body": f"reply {n}", "guest_name": "bob"})
        assert r.status_code == 201, r.text
    await project()
    return slug, ids


def atom(response) -> feedparser.FeedParserDict:
    """The feed, checked to be Atom 1.0 both by feedparser and by a strict XML parser
    with the elements RFC 4287 requires."""
    assert response.status_code == 200, response.text[:300]
    assert response.headers["content-type"] == "application/atom+xml; charset=utf-8"
    parsed = feedparser.parse(response.content)
    assert not parsed.bozo, parsed.bozo_exception
    assert parsed.version == "atom10"
    root = ET.fromstring(response.content)
    for element in ("id", "title", "updated"):
        assert root.find(A + element) is not None, element
    assert root.find(A + "link[@rel='self']") is not None
    for entry in root.findall(A + "entry"):
        for element in ("id", "title", "updated", f"author/{A}name",
                        "link[@rel='alternate']", "content[@type='html']"):
            assert entry.find(A + element) is not None, element
    return parsed


async def test_the_latest_feed_lists_new_threads_newest_first_with_their_first_post(
        client, project):
    _slug, ids = await board(client, project)
    feed = atom(await client.get("/feeds/latest.atom"))
    assert feed.feed.title == "Forum: new threads"
    assert feed.feed.id == f"{BASE}/feeds/latest.atom"
    assert [e.id for e in feed.entries] == [f"{BASE}/threads/{i}" for i in reversed(ids)]
    newest = feed.entries[0]
    assert newest.title == "Thread 2 <&>"
    assert newest.link == f"{BASE}/threads/{ids[2]}"
    assert newest.author == "ann"
    assert newest.content[0].value == "<strong>first</strong> of 2"  # the post's own HTML


async def test_the_latest_feed_is_bounded_and_its_entries_are_threads_of_every_section(
        client, project, settings):
    small = msgspec.structs.replace(settings, feed_entries=2)
    async with AsyncTestClient(app=create_app(small)) as bounded:
        _slug, ids = await board(bounded, project, threads=3)
        _other, more = await board(bounded, project, threads=1)
        feed = atom(await bounded.get("/feeds/latest.atom"))
        assert [e.id.rsplit("/", 1)[1] for e in feed.entries] == [str(more[0]), str(ids[2])]


async def test_a_section_feed_lists_its_threads_by_activity(client, project):
    slug, ids = await board(client, project, threads=3, replies=1)
    feed = atom(await client.get(f"/forums/{slug}.atom"))
    assert feed.feed.title == "Forum: Tea & <Cakes>"
    assert feed.feed.id == f"{BASE}/forums/{slug}.atom"
    # The first thread was replied to last: it leads, as on the section's page.
    assert [e.id for e in feed.entries] == [
        f"{BASE}/threads/{i}" for i in (ids[0], ids[2], ids[1])]


async def test_a_thread_feed_lists_its_newest_posts_across_pages(client, project, settings):
    small = msgspec.structs.replace(settings, feed_entries=4, per_page=3)
    async with AsyncTestClient(app=create_app(small)) as paged:
        _slug, ids = await board(paged, project, threads=1, replies=9)  # posts 1..10
        r = await paged.post(f"/api/threads/{ids[0]}/posts", json={
            "body": "soon gone", "guest_name": "bob"})
        gone = r.json()["post_id"]
        r = await paged.request("DELETE", f"/api/posts/{gone}", headers=OPERATOR)
        assert r.status_code in (200, 204), r.text
        await project()
        feed = atom(await paged.get(f"/threads/{ids[0]}.atom"))
        assert feed.feed.title == "Forum: Thread 0 <&>"
        numbers = [int(e.title.rsplit("#", 1)[1]) for e in feed.entries]
        assert numbers == [10, 9, 8]  # the newest four, the deleted eleventh left out
        post = feed.entries[0]
        assert post.author == "bob"
        assert post.content[0].value == "reply 8"
        assert re.fullmatch(rf"{BASE}/threads/{ids[0]}\?page=4#p\d+", post.link)
        assert post.id == f"{BASE}/threads/{ids[0]}#p{post.link.rsplit('#p', 1)[1]}"


async def test_feeds_use_the_public_address_when_set(client, project, settings):
    public = msgspec.structs.replace(settings, public_url="https://forum.example/")
    async with AsyncTestClient(app=create_app(public)) as app:
        _slug, ids = await board(app, project, threads=1)
        feed = atom(await app.get("/feeds/latest.atom", headers={"Host": "evil.example"}))
        assert feed.feed.id == "https://forum.example/feeds/latest.atom"
        assert feed.entries[0].link == f"https://forum.example/threads/{ids[0]}"


async def test_pages_link_their_feeds(client, project):
    slug, ids = await board(client, project, threads=1)
    for page, feed in (("/", "/feeds/latest.atom"), (f"/forums/{slug}", f"/forums/{slug}.atom"),
                       (f"/threads/{ids[0]}", f"/threads/{ids[0]}.atom")):
        text = (await client.get(page)).text
        assert re.search(r'<link rel="alternate" type="application/atom\+xml" title="[^"]+" '
                         rf'href="{re.escape(feed)}">', text), page
        assert f'<a href="{feed}" class="feed">' in text, page
        atom(await client.get(feed))


async def test_feeds_answer_304_until_something_changes(client, project):
    slug, ids = await board(client, project, threads=1)
    paths = ("/feeds/latest.atom", f"/forums/{slug}.atom", f"/threads/{ids[0]}.atom")
    tags = {}
    for path in paths:
        first = await client.get(path)
        tags[path] = first.headers["etag"]
        assert first.headers["cache-control"] == "public, max-age=10"
        assert "set-cookie" not in first.headers
        again = await client.get(path, headers={"If-None-Match": tags[path]})
        assert again.status_code == 304 and again.content == b"", path
        assert again.headers["etag"] == tags[path]
        assert again.headers["cache-control"] == "public, max-age=10"
    r = await client.post(f"/api/threads/{ids[0]}/posts", json={"body": "r", "guest_name": "cy"})
    assert r.status_code == 201, r.text
    await project()
    for path in paths:  # a reply: the thread's feed has it, and the section's moved
        changed = await client.get(path, headers={"If-None-Match": tags[path]})
        assert changed.status_code == 200, path
        assert changed.headers["etag"] != tags[path]
    thread_feed = feedparser.parse((await client.get(paths[2])).content)
    assert thread_feed.entries[0].content[0].value == "r"


async def test_a_feed_of_nothing_is_404_and_an_empty_board_has_an_empty_feed(client, project):
    await project()
    empty = atom(await client.get("/feeds/latest.atom"))
    assert empty.entries == []
    for path in ("/forums/nope.atom", "/threads/999999.atom", "/threads/0.atom",
                 "/threads/x.atom", "/threads/-1.atom", "/forums/A%20B.atom",
                 f"/threads/{'9' * 40}.atom", "/threads/.atom", "/forums/.atom"):
        r = await client.get(path)
        assert r.status_code == 404, (path, r.status_code)
