"""The demo data (service/demo.py) loaded into a database as ``forum dev`` loads it: the
reference thread of API.md as its data file lists it, and the threads beside it."""

from __future__ import annotations

import re

from service import demo
from tests.e2e.test_pages import settle, text  # noqa: F401  (settle: a fixture)

AUTHORS = ["Warszawiak", "Kenji_M", "Bletchley_Bob", "Marta.K", "Warszawiak", "Tadeusz_P",
           "Kenji_M", "Bletchley_Bob", "Marta.K", "Warszawiak", "Tadeusz_P", "Kenji_M",
           "Marta.K", "Warszawiak", "Bletchley_Bob", "old_sapper", "Warszawiak", "Kenji_M",
           "northern_lights", "Tadeusz_P", "Warszawiak"]


def test_the_seed_is_the_reference_thread() -> None:
    seed = demo.reference_thread()
    assert seed.forum == "history"
    assert seed.title == "Historic Polish-Japanese intelligence cooperation"
    assert [p.author for p in seed.posts] == AUTHORS
    assert [p.id for p in seed.posts] == list(range(1, 22))
    assert {p.created_at.year for p in seed.posts} == {2011, 2018, 2024}
    assert seed.posts[0].created_at.isoformat() == "2011-06-08T19:42:00+00:00"
    quoting = [p for p in seed.posts if p.body.startswith("[quote=")]
    assert len(quoting) >= 8
    for post in quoting:  # each quotes an earlier post, by its author, with its words
        name, number, words = re.match(r"\[quote=(.+?) post=(\d+)\](.*?)\[/quote\]",
                                       post.body, re.S).groups()
        quoted = seed.posts[int(number) - 1]
        assert int(number) < post.id and quoted.author == name and words in quoted.body


async def test_the_demo_loads_the_reference_thread_as_its_seed_lists_it(client, store,
                                                                       settle):  # noqa: F811
    report = await demo.load(store)
    assert report.imported == len(demo.lines()) and not report.errors
    again = await demo.load(store)  # forum dev runs it at every start: nothing twice
    assert again.imported == 0 and again.skipped == len(demo.lines())
    await settle()
    seed = demo.reference_thread()

    listing = (await client.get("/api/forums/history/threads")).json()["threads"]
    assert listing[0]["title"] == seed.title  # bumped back to the top in 2024
    ref = listing[0]
    assert ref["posts"] == 21 and ref["created_at"].startswith("2011-06-08")
    assert ref["bumped_at"].startswith("2024-05-22")

    posts, page, pages = [], 1, 1
    while page <= pages:
        r = await client.get(f"/api/threads/{ref['id']}?page={page}")
        assert r.status_code == 200, r.text
        posts += r.json()["posts"]
        page, pages = page + 1, r.json()["pages"]
    assert [p["author"]["name"] for p in posts] == AUTHORS
    assert [p["number"] for p in posts] == list(range(1, 22))
    assert [p["created_at"][:16] for p in posts] == [
        p.created_at.strftime("%Y-%m-%dT%H:%M") for p in seed.posts]
    assert [p["author"]["op"] for p in posts] == [a == "Warszawiak" for a in AUTHORS]
    ids = [p["id"] for p in posts]
    for got, want in zip(posts, seed.posts, strict=True):
        quoted = re.findall(r"post=(\d+)", want.body)
        assert [q["post_id"] for q in got["quotes"]] == [ids[int(n) - 1] for n in quoted]

    page = await client.get(f"/threads/{ref['id']}")
    seen = text(page.text)
    assert "posts: 21" in seen and "8 Jun 2011" in seen and "OP Warszawiak" in seen
    assert page.text.count('<blockquote class="quote"') >= 5

    threads = {t["title"]: t
               for slug in ("history", "science", "off-topic")
               for t in (await client.get(f"/api/forums/{slug}/threads")).json()["threads"]}
    assert threads["Board rules: please read before posting"]["locked"]
    long = threads[demo.LONG_TITLE]
    assert long["posts"] == demo.LONG_THREAD_POSTS
    r = await client.get(f"/api/threads/{long['id']}?page=3")
    assert r.status_code == 200 and r.json()["pages"] == 3
    unanswered = (await client.get("/api/unanswered")).json()["threads"]
    assert [t["title"] for t in unanswered] == ["Why is the sky blue?"]


async def test_real_processes_serve_the_demo_as_people_browse_it(stack, store):
    """``forum serve`` and ``forum worker`` as processes, the demo loaded as ``forum dev``
    loads it: the reference thread, its permalinks, a profile, the archives, no dead end."""
    import asyncio
    import time

    import httpx

    await demo.load(store)
    head = str(await store.head())
    async with httpx.AsyncClient(base_url=stack.url, timeout=10) as http:
        deadline = time.monotonic() + 60
        while True:  # the worker catches up with the import
            r = await http.get("/api/forums/history/threads", headers={"X-Min-Position": head})
            if r.status_code == 200:
                break
            assert r.status_code == 503 and time.monotonic() < deadline, r.text
            await asyncio.sleep(0.2)
        ref = r.json()["threads"][0]
        assert ref["title"] == demo.reference_thread().title

        for _ in range(30):  # every read model this page reads has caught up
            page = await http.get(f"/threads/{ref['id']}?after={head}")
            if page.status_code == 200:
                break
        seen = text(page.text)
        assert "posts: 21" in seen and seen.count("OP Warszawiak") == 6
        assert "8 Jun 2011" in seen and "12 Mar 2018" in seen and "22 May 2024" in seen
        quoting = sum(p.body.startswith("[quote=") for p in demo.reference_thread().posts)
        assert page.text.count('<blockquote class="quote"') == quoting
        bottom = page.text[page.text.rindex('<nav class="crumbs"'):].split("</nav>")[0]
        assert text(bottom) == f"Home / History / {ref['title']}"

        last = (await http.get(f"/api/threads/{ref['id']}")).json()["posts"][-1]
        r = await http.get(f"/posts/{last['id']}", follow_redirects=False)
        assert r.status_code == 303
        assert r.headers["location"] == f"/threads/{ref['id']}?page=1#p{last['id']}"

        r = await http.get(f"/users/Warszawiak?after={head}")
        assert r.status_code == 200 and "1 | 6 | 0" in text(r.text)
        assert ref["title"] in text(r.text) and f'href="/posts/{last["id"]}"' in r.text
        r = await http.get(f"/archives?after={head}")
        assert 'href="/forums/history/archive/2011"' in r.text
        for path in ("/nope", "/static/nope.css"):
            r = await http.get(path)
            assert r.status_code == 404 and r.headers["content-type"].startswith("text/html")
        assert (await http.get("/favicon.ico")).status_code == 200
        assert (await http.get("/api/nope")).headers["content-type"].startswith(
            "application/problem+json")
