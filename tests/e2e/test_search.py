"""Search through HTTP (in-process app, real PostgreSQL and Redis, the search model projected
as a worker projects it): words, phrases and prefixes find the right posts, titles rank
above bodies, edits, deletions, moves and holds are followed, snippets are safe, and the
page at /search says the same for people (API.md, "Search, feeds and caching")."""

from __future__ import annotations

from typing import Any

import httpx
import pytest_asyncio

from tests.builders import unique_slug
from tests.conftest import OPERATOR
from tests.e2e.test_api_writes import assert_problem, moderator_headers, sign_up

Client = httpx.AsyncClient


async def search(client: Client, q: str, **params: Any) -> dict[str, Any]:
    r = await client.get("/api/search", params={"q": q, **params})
    assert r.status_code == 200, r.text
    assert int(r.headers["x-projection-position"]) >= 0
    answer: dict[str, Any] = r.json()
    return answer


async def found(client: Client, q: str, **params: Any) -> list[int]:
    return [hit["post_id"] for hit in (await search(client, q, **params))["results"]]


async def section(client: Client, title: str = "Talk") -> str:
    slug = unique_slug()
    r = await client.post("/api/forums", json={"slug": slug, "title": title},
                          headers=OPERATOR)
    assert r.status_code == 201, r.text
    return slug


async def start(client: Client, slug: str, title: str, body: str,
                headers: dict[str, str] | None = None) -> dict[str, Any]:
    json = {"title": title, "body": body} | ({} if headers else {"guest_name": "gus"})
    r = await client.post(f"/api/forums/{slug}/threads", json=json, headers=headers or {})
    assert r.status_code == 201, r.text
    answer: dict[str, Any] = r.json()
    return answer


async def reply(client: Client, thread_id: int, body: str,
                headers: dict[str, str] | None = None) -> dict[str, Any]:
    json = {"body": body} | ({} if headers else {"guest_name": "gus"})
    r = await client.post(f"/api/threads/{thread_id}/posts", json=json,
                          headers=headers or {})
    assert r.status_code == 201, r.text
    answer: dict[str, Any] = r.json()
    return answer


@pytest_asyncio.fixture
async def board(client: Client, project: Any) -> dict[str, Any]:
    slug = await section(client)
    zoo = await start(client, slug, "Visiting the zoo", "We saw a red zebra and two lions.")
    tid = zoo["thread_id"]
    plain = await reply(client, tid, "A zebra is striped; zebras are herbivores.")
    red = await reply(client, tid, "The zebra was red? I thought red panda.")
    other = await start(client, slug, "Zebra crossings", "Cars must stop.")
    await project()
    return {"slug": slug, "zoo": zoo, "plain": plain, "red": red, "other": other,
            "thread": tid}


async def test_a_word_a_phrase_and_a_prefix_find_the_right_posts(client, board):
    zoo_first, plain, red = board["zoo"]["post_id"], board["plain"]["post_id"], \
        board["red"]["post_id"]
    crossing = board["other"]["post_id"]
    assert set(await found(client, "zebra")) == {zoo_first, plain, red, crossing}
    assert set(await found(client, "ZEBRA  lions")) == {zoo_first}  # every word required
    assert set(await found(client, '"red zebra"')) == {zoo_first}  # next to each other
    assert set(await found(client, '"zebra red"')) == set()
    assert set(await found(client, "zebras")) == {plain}  # no stemming: the word itself
    assert set(await found(client, "zebr*")) == {zoo_first, plain, red, crossing}
    assert set(await found(client, "herbi*")) == {plain}
    assert set(await found(client, "herbi")) == set()  # without the star, a whole word
    assert set(await found(client, "pand* red")) == {red}


async def test_titles_rank_above_bodies(client, board):
    answer = await search(client, "zebra")
    ranked = [hit["post_id"] for hit in answer["results"]]
    # The thread titled with the word comes first, though its post never says it.
    assert ranked[0] == board["other"]["post_id"]
    assert answer["results"][0]["thread"] == {
        "id": board["other"]["thread_id"], "title": "Zebra crossings", "forum": board["slug"]}
    assert answer["total"] == 4 and answer["page"] == 1 and answer["pages"] == 1
    assert set(await found(client, "visiting")) == {board["zoo"]["post_id"]}  # title only
    assert set(await found(client, "crossings")) == {board["other"]["post_id"]}


async def test_a_hit_says_where_it_is_and_marks_the_match_safely(client, board, project):
    r = await reply(client, board["thread"],
                    "<script>alert(1)</script> the okapi & <b>friends</b>")
    await project()
    answer = await search(client, "okapi")
    [hit] = answer["results"]
    assert hit["post_id"] == r["post_id"] and hit["number"] == 4
    assert hit["author"] == "gus" and hit["guest"] is True and hit["created_at"]
    snippet = hit["snippet"]
    assert "<mark>okapi</mark>" in snippet
    assert "<script" not in snippet and "<b>" not in snippet  # only <mark> is markup
    assert snippet.replace("<mark>", "").replace("</mark>", "").count("<") == 0


async def test_bbcode_tags_and_quoted_words_are_not_searched(client, board, project):
    first = board["zoo"]["post_id"]
    r = await reply(client, board["thread"],
                    f"[quote=gus post={first}]We saw a red zebra[/quote]\n[b]gira[/b]ffes too")
    await project()
    assert await found(client, "giraffes") == [r["post_id"]]  # as the page shows it
    assert r["post_id"] not in await found(client, '"red zebra"')  # found where it was said
    assert await found(client, "quote") == []


async def test_an_edited_away_or_deleted_word_is_no_longer_found(client, board, project):
    headers = await sign_up(client)
    mine = await reply(client, board["thread"], "I love the quagga", headers)
    await project()
    assert await found(client, "quagga") == [mine["post_id"]]
    r = await client.patch(f"/api/posts/{mine['post_id']}", json={"body": "I love the tapir"},
                           headers=headers)
    assert r.status_code == 200, r.text
    await project()
    assert await found(client, "quagga") == []
    assert await found(client, "tapir") == [mine["post_id"]]
    r = await client.delete(f"/api/posts/{mine['post_id']}", headers=headers)
    assert r.status_code == 200, r.text
    await project()
    assert await found(client, "tapir") == []


async def test_a_moved_thread_is_found_under_its_new_section(client, board, project):
    elsewhere = await section(client, "Elsewhere")
    zoo_first = board["zoo"]["post_id"]
    assert set(await found(client, "zebra", forum=board["slug"])) >= {zoo_first}
    assert await found(client, "zebra", forum=elsewhere) == []
    mod = await moderator_headers(client)
    r = await client.post(f"/api/threads/{board['thread']}/move", json={"forum": elsewhere},
                          headers=mod)
    assert r.status_code == 200, r.text
    await project()
    moved = {zoo_first, board["plain"]["post_id"], board["red"]["post_id"]}
    assert set(await found(client, "zebra", forum=elsewhere)) == moved
    assert set(await found(client, "zebra", forum=board["slug"])) == {
        board["other"]["post_id"]}
    hits = (await search(client, "lions"))["results"]
    assert hits[0]["thread"]["forum"] == elsewhere


async def test_the_author_filter(client, board, project):
    headers = await sign_up(client, "Wanda")
    mine = await reply(client, board["thread"], "another zebra sighting", headers)
    await project()
    assert await found(client, "zebra", author="wanda") == [mine["post_id"]]
    assert await found(client, "zebra", author="nobody") == []
    assert await found(client, "zebra", author="x\u0000y") == []


async def test_held_posts_are_found_only_once_approved(client, board, project):
    r = await client.post(f"/api/threads/{board['thread']}/posts", json={
        "body": "buy narwhal pills at https://spam.example", "guest_name": "spammer"})
    assert r.status_code == 202, r.text
    held = r.json()["held_id"]
    r = await client.post(f"/api/forums/{board['slug']}/threads", json={
        "title": "Narwhal deals", "body": "see https://spam.example", "guest_name": "sp2"})
    assert r.status_code == 202, r.text
    await project()
    assert await found(client, "narwhal") == []
    r = await client.post(f"/api/held/{held}/approve", headers=OPERATOR)
    assert r.status_code == 200, r.text
    await project()
    assert await found(client, "narwhal") == [r.json()["post_id"]]


async def test_pages_of_results(client, board, project):
    for n in range(30):
        await reply(client, board["thread"], f"wombat number {n}")
    await project()
    first = await search(client, "wombat")
    assert first["total"] == 30 and first["pages"] == 2 and len(first["results"]) == 25
    second = await search(client, "wombat", page=2)
    assert len(second["results"]) == 5
    assert not {h["post_id"] for h in first["results"]} & {
        h["post_id"] for h in second["results"]}
    # Equal ranks: newest first.
    numbers = [h["number"] for h in first["results"] + second["results"]]
    assert numbers == sorted(numbers, reverse=True)
    assert_problem(await client.get("/api/search", params={"q": "wombat", "page": 3}), 404)
    assert (await search(client, "nothingmatches"))["pages"] == 1


async def test_reading_your_own_writes(client, board):
    r = await reply(client, board["thread"], "a pangolin appears")
    position = r["position"]
    # Nothing projects it: the read waits, then says the model is behind.
    answer = await client.get("/api/search", params={"q": "pangolin"},
                              headers={"X-Min-Position": str(position)})
    assert answer.status_code == 503 and answer.headers["retry-after"], answer.text
    beyond = await client.get("/api/search", params={"q": "pangolin"},
                              headers={"X-Min-Position": str(position * 2)})
    assert_problem(beyond, 400)


async def test_questions_it_refuses(client, board):
    for params, status in [
        ({}, 400), ({"q": ""}, 400), ({"q": "x" * 201}, 400),
        ({"q": " ".join(f"w{i}" for i in range(17))}, 422),
        ({"q": "zebra", "page": 0}, 400), ({"q": "zebra", "page": "x"}, 400),
        ({"q": "zebra", "forum": "<script>"}, 400), ({"q": "zebra", "author": "a" * 65}, 400),
    ]:
        assert_problem(await client.get("/api/search", params=params), status)


async def test_tsquery_syntax_and_odd_input_is_just_text(client, board):
    first = board["zoo"]["post_id"]
    for q in ["zebra & !lions", "zebra | (lions", "'zebra'", "zebra:*", "zebra:A",
              "\\zebra\\", "zebra <-> lions", "zebra\u0000\u0001\u202e", '"zebra', '""',
              "*", "**", "a*", "'; DROP TABLE events; --", "zebra'' lions",
              "<script>alert(1)</script>", "😀 zebra"]:
        r = await client.get("/api/search", params={"q": q})
        assert r.status_code == 200, (q, r.text)
    for raw in ("%ED%A0%80zebra", "%FF%FE", "zebra%C0"):  # not UTF-8: a lone surrogate...
        r = await client.get(f"/api/search?q={raw}")
        assert 200 <= r.status_code < 500, (raw, r.text)
    assert first in await found(client, "zebra & !lions")  # & and ! are no operators
    assert await found(client, "!") == []


async def test_the_search_page_and_the_box_on_every_page(client, board):
    r = await client.get("/")
    assert r.status_code == 200
    assert 'action="/search"' in r.text and 'name="q"' in r.text
    r = await client.get("/search", params={"q": "zebra <b>"})
    assert r.status_code == 200, r.text
    assert "Zebra crossings" in r.text and "<mark>" in r.text
    assert f'href="/threads/{board["thread"]}?page=1#p{board["red"]["post_id"]}"' in r.text
    assert "zebra &lt;b&gt;" in r.text  # what was asked, kept in the box, escaped
    r = await client.get("/search")
    assert r.status_code == 200 and "<mark>" not in r.text
    r = await client.get("/search", params={"q": "zebra", "forum": board["slug"]})
    assert r.status_code == 200 and "Zebra crossings" in r.text
    r = await client.get("/search", params={"q": " ".join(f"w{i}" for i in range(17))})
    assert r.status_code == 422 and "at most 16" in r.text
