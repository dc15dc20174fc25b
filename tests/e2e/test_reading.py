"""Acceptance: reading the board through real ``forum serve`` and ``forum worker`` processes.

Every write answers with its log position; reads pass it back as ``X-Min-Position`` so they
see their own writes as soon as the worker has projected them (the worker is a separate
process fed by the Redis broker and its periodic tick).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from datetime import UTC, datetime

import httpx
import pytest

from tests.conftest import FORUM, OPERATOR, ROOT

pytestmark = pytest.mark.e2e




def at(position: int | str) -> dict[str, str]:
    return {"X-Min-Position": str(position)}


async def create_forum(http: httpx.AsyncClient, slug: str, title: str) -> int:
    r = await http.post("/api/forums", json={"slug": slug, "title": title}, headers=OPERATOR)
    assert r.status_code == 201, r.text
    return r.json()["position"]


# Each guest keeps the guest_token its first write answered and sends it back, as a client
# does: the OP mark follows the guest that started a thread, not the name it types.
_TOKENS: dict[tuple[int, str], str] = {}


def _as(http: httpx.AsyncClient, guest: str) -> dict[str, str]:
    token = _TOKENS.get((id(http), guest))
    return {"X-Guest-Token": token} if token else {}


def _keep(http: httpx.AsyncClient, guest: str, answer: dict) -> dict:
    if "guest_token" in answer:
        _TOKENS[(id(http), guest)] = answer["guest_token"]
    return answer


async def start(http: httpx.AsyncClient, slug: str, title: str, body: str, guest: str
                ) -> dict:
    r = await http.post(f"/api/forums/{slug}/threads",
                        json={"title": title, "body": body, "guest_name": guest},
                        headers=_as(http, guest))
    assert r.status_code == 201, r.text
    return _keep(http, guest, r.json())


async def reply(http: httpx.AsyncClient, thread_id: int, body: str, guest: str) -> dict:
    r = await http.post(f"/api/threads/{thread_id}/posts",
                        json={"body": body, "guest_name": guest}, headers=_as(http, guest))
    assert r.status_code == 201, r.text
    return _keep(http, guest, r.json())


async def read(http: httpx.AsyncClient, path: str, position: int | str | None = None
               ) -> dict:
    for _ in range(5):  # as a client should: on 503, try again after Retry-After
        r = await http.get(path, headers=at(position) if position is not None else None)
        if r.status_code != 503:
            break
        await asyncio.sleep(float(r.headers["Retry-After"]))
    assert r.status_code == 200, (path, r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/json")
    if position is not None:
        assert int(r.headers["X-Projection-Position"]) >= int(position)
    return r.json()


def counters(post: dict) -> tuple[int, int]:
    """The two live counters shown beside a post: threads started | posts written."""
    return post["author"]["threads"], post["author"]["posts"]


async def test_a_quoted_reply_with_op_flags_and_live_counters(stack):
    async with httpx.AsyncClient(base_url=stack.url, timeout=10) as http:
        await create_forum(http, "history", "History")
        rome = await start(http, "history", "Rome", "Rome was not built in a day. <script>",
                           "ann")
        tid, first = rome["thread_id"], rome["post_id"]

        unanswered = await read(http, "/api/unanswered", rome["position"])
        assert tid in [t["id"] for t in unanswered["threads"]]

        body = (f"[quote=ann post={first}]Rome was not built in a day.[/quote]\n"
                "But it [b]burned[/b] in one.")
        answer = await reply(http, tid, body, "bob")
        assert answer["number"] == 2 and answer["page"] == 1
        page = await read(http, f"/api/threads/{tid}", answer["position"])

        assert page["thread"]["title"] == "Rome"
        assert page["thread"]["forum"] == "history"
        assert page["thread"]["author"] == "ann"
        assert (page["thread"]["posts"], page["thread"]["replies"]) == (2, 1)
        assert (page["page"], page["pages"], page["per_page"]) == (1, 1, 25)
        posts = page["posts"]
        assert [p["number"] for p in posts] == [1, 2]
        assert [p["id"] for p in posts] == [first, answer["post_id"]]
        assert [p["author"]["name"] for p in posts] == ["ann", "bob"]
        assert [p["author"]["op"] for p in posts] == [True, False]
        assert [p["author"]["guest"] for p in posts] == [True, True]
        assert posts[0]["quotes"] == []
        assert posts[1]["quotes"] == [{"post_id": first, "number": 1, "author": "ann"}]
        html = posts[1]["html"]
        assert "<blockquote" in html and "Rome was not built in a day." in html
        assert html.index("</blockquote>") < html.index("<strong>burned</strong>")
        assert "<script>" not in posts[0]["html"] and "&lt;script&gt;" in posts[0]["html"]
        assert posts[1]["body"] == body
        assert [counters(p) for p in posts] == [(1, 1), (0, 1)]
        assert not posts[0]["deleted"] and posts[0]["edited_at"] is None
        assert posts[0]["likes"] == 0

        # Answered now: off the unanswered list.
        unanswered = await read(http, "/api/unanswered", answer["position"])
        assert tid not in [t["id"] for t in unanswered["threads"]]

        # The counters are the authors' current ones: ann writes elsewhere, then again here.
        carthage = await start(http, "history", "Carthage", "Delenda est.", "ann")
        other = await reply(http, carthage["thread_id"], "Indeed.", "bob")
        again = await reply(http, tid, "Thank you, bob.", "ann")
        assert again["number"] == 3
        page = await read(http, f"/api/threads/{tid}", max(other["position"],
                                                            again["position"]))
        posts = page["posts"]
        assert [p["number"] for p in posts] == [1, 2, 3]
        assert [p["author"]["op"] for p in posts] == [True, False, True]
        assert [counters(p) for p in posts] == [(2, 3), (0, 2), (2, 3)]

        # Both threads have replies now; a new one is the only unanswered thread.
        unanswered = await read(http, "/api/unanswered", again["position"])
        assert unanswered["threads"] == []
        lonely = await start(http, "history", "Troy", "Anyone?", "cleo")
        unanswered = await read(http, "/api/unanswered", lonely["position"])
        assert [t["id"] for t in unanswered["threads"]] == [lonely["thread_id"]]
        assert (unanswered["page"], unanswered["pages"]) == (1, 1)

        ann = await read(http, "/api/users/ann", lonely["position"])
        assert ann["name"] == "ann" and ann["guest"] is True
        assert (ann["threads"], ann["posts"], ann["reputation"]) == (2, 3, 0)
        assert ann["joined"].endswith("Z")
        assert (await read(http, "/api/users/ANN"))["name"] == "ann"
        r = await http.get("/api/users/nobody")
        assert r.status_code == 404
        assert r.headers["content-type"].startswith("application/problem+json")

        post = await read(http, f"/api/posts/{answer['post_id']}", lonely["position"])
        assert post["id"] == answer["post_id"] and post["thread_id"] == tid
        assert (post["number"], post["page"]) == (2, 1)
        assert post["author"]["name"] == "bob" and post["author"]["op"] is False
        assert counters(post) == (0, 2)
        assert post["quotes"] == [{"post_id": first, "number": 1, "author": "ann"}]
        r = await http.get("/api/posts/999999999")
        assert r.status_code == 404

        forums = await read(http, "/api/forums", lonely["position"])
        assert forums["forums"] == [{"slug": "history", "title": "History", "threads": 3,
                                     "posts": 6}]


def forum_import(stack, tmp_path, threads: list[dict]) -> None:
    """``forum import FILE``: threads of an older board, with their original times."""
    path = tmp_path / "import.jsonl"
    path.write_text("".join(json.dumps(t) + "\n" for t in threads))
    done = subprocess.run([*FORUM, "import", str(path)], env=stack.env(), cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"imported {len(threads)} threads" in done.stdout, done.stdout


async def thread_ids_by_title(http: httpx.AsyncClient, slug: str, position: int) -> dict:
    listing = await read(http, f"/api/forums/{slug}/threads", position)
    return {t["title"]: t["id"] for t in listing["threads"]}


async def test_an_old_thread_comes_back_to_the_top_and_archives_keep_its_year(stack,
                                                                                tmp_path):
    now = datetime.now(UTC)
    last_year = datetime(now.year - 1, 6, 8, 12, 0, tzinfo=UTC)
    async with httpx.AsyncClient(base_url=stack.url, timeout=10) as http:
        await create_forum(http, "history", "History")
        forum_import(stack, tmp_path, [
            {"forum": "history", "title": "Byzantium", "posts": [
                {"author": "dan", "created_at": "2011-06-08T09:30:00Z", "body": "post 1"},
                {"author": "dan-friend", "created_at": "2018-03-01T10:00:00Z",
                 "body": "post 2"}]},
            {"forum": "history", "title": "Sparta", "posts": [
                {"author": "eve", "created_at": last_year.isoformat(), "body": "post 1"}]},
        ])
        new_a = await start(http, "history", "Athens", "a", "fay")
        new_b = await start(http, "history", "Thebes", "b", "fay")

        ids = await thread_ids_by_title(http, "history", new_b["position"])
        ancient, old = ids["Byzantium"], ids["Sparta"]
        listing = await read(http, "/api/forums/history/threads", new_b["position"])
        order = [t["id"] for t in listing["threads"]]
        assert order == [new_b["thread_id"], new_a["thread_id"], old, ancient]
        assert listing["forum"] == {"slug": "history", "title": "History", "threads": 4,
                                    "posts": 5}
        assert (listing["page"], listing["pages"]) == (1, 1)
        byzantium = listing["threads"][3]
        assert byzantium["created_at"].startswith("2011-06-08T09:30:00")
        assert byzantium["bumped_at"].startswith("2018-03-01T10:00:00")
        # The year-old thread never had an answer: it is the oldest on the unanswered list.
        unanswered = await read(http, "/api/unanswered", new_b["position"])
        assert [t["id"] for t in unanswered["threads"]] == [
            new_b["thread_id"], new_a["thread_id"], old]

        # A reply to the year-old thread brings it back to the top of its section.
        answer = await reply(http, old, "Still here?", "gus")
        listing = await read(http, "/api/forums/history/threads", answer["position"])
        assert [t["id"] for t in listing["threads"]] == [
            old, new_b["thread_id"], new_a["thread_id"], ancient]
        sparta = listing["threads"][0]
        assert sparta["created_at"].startswith(f"{now.year - 1}-06-08T12:00:00")
        assert sparta["bumped_at"] > listing["threads"][1]["bumped_at"]
        assert (sparta["posts"], sparta["replies"]) == (2, 1)
        unanswered = await read(http, "/api/unanswered", answer["position"])
        assert old not in [t["id"] for t in unanswered["threads"]]

        # And again for the thread of 2011 (bumped in 2018 already): back on top.
        answer = await reply(http, ancient, "Back in 2011 …", "gus")
        assert answer["number"] == 3
        listing = await read(http, "/api/forums/history/threads", answer["position"])
        assert [t["id"] for t in listing["threads"]][:2] == [ancient, old]
        page = await read(http, f"/api/threads/{ancient}", answer["position"])
        assert [p["created_at"][:4] for p in page["posts"]] == ["2011", "2018", str(now.year)]
        assert [p["author"]["op"] for p in page["posts"]] == [True, False, False]

        # Archives: by the year each thread STARTED, whatever its last bump.
        years = await read(http, "/api/forums/history/archive", answer["position"])
        assert years["years"] == [{"year": now.year, "threads": 2},
                                  {"year": now.year - 1, "threads": 1},
                                  {"year": 2011, "threads": 1}]
        assert years["forum"]["slug"] == "history"
        archive = await read(http, "/api/forums/history/archive/2011", answer["position"])
        assert [t["id"] for t in archive["threads"]] == [ancient]
        assert (archive["year"], archive["page"], archive["pages"]) == (2011, 1, 1)
        archive = await read(http, f"/api/forums/history/archive/{now.year}")
        assert [t["id"] for t in archive["threads"]] == [new_b["thread_id"],
                                                         new_a["thread_id"]]
        archive = await read(http, f"/api/forums/history/archive/{now.year - 1}")
        assert [t["id"] for t in archive["threads"]] == [old]
        for missing in ("/api/forums/history/archive/1999", "/api/forums/nowhere/archive",
                        "/api/forums/nowhere/threads"):
            r = await http.get(missing)
            assert r.status_code == 404, (missing, r.text)
            assert r.headers["content-type"].startswith("application/problem+json")

        profile = await read(http, "/api/users/dan")
        assert profile["joined"].startswith("2011-06-08")
        assert (profile["threads"], profile["posts"]) == (1, 1)


async def test_paging_missing_pages_and_positions_not_reached(stack):
    async with httpx.AsyncClient(base_url=stack.url, timeout=10) as http:
        await create_forum(http, "long", "Long threads")
        thread = await start(http, "long", "Thirty posts", "post 1", "ann")
        tid = thread["thread_id"]
        answers = [thread]
        for number in range(2, 31):
            answer = await reply(http, tid, f"post {number}", ("bob", "ann", "cy")[number % 3])
            assert answer["number"] == number
            assert answer["page"] == (1 if number <= 25 else 2)
            answers.append(answer)
        last = answers[-1]["position"]

        first = await read(http, f"/api/threads/{tid}", last)
        assert (first["page"], first["pages"], first["per_page"]) == (1, 2, 25)
        assert [p["number"] for p in first["posts"]] == list(range(1, 26))
        assert first["thread"]["posts"] == 30 and first["thread"]["replies"] == 29
        second = await read(http, f"/api/threads/{tid}?page=2", last)
        assert (second["page"], second["pages"]) == (2, 2)
        assert [p["number"] for p in second["posts"]] == list(range(26, 31))
        assert [p["body"] for p in second["posts"]] == [f"post {n}" for n in range(26, 31)]
        assert [p["id"] for p in first["posts"] + second["posts"]] == [
            a["post_id"] for a in answers]
        # ann started the thread: her replies carry OP, everybody else's do not.
        for p in first["posts"] + second["posts"]:
            assert p["author"]["op"] is (p["author"]["name"] == "ann")
            assert counters(p) == {"ann": (1, 10), "bob": (0, 10), "cy": (0, 10)}[
                p["author"]["name"]]

        post = await read(http, f"/api/posts/{answers[26]['post_id']}")
        assert (post["number"], post["page"], post["thread_id"]) == (27, 2, tid)

        for past in (f"/api/threads/{tid}?page=3", "/api/unanswered?page=2",
                     "/api/forums/long/threads?page=2", "/api/threads/987654321"):
            r = await http.get(past)
            assert r.status_code == 404, (past, r.text)
            assert r.headers["content-type"].startswith("application/problem+json")
            problem = r.json()
            assert problem["status"] == 404 and problem["title"] and problem["detail"]
        r = await http.get(f"/api/threads/{tid}?page=0")
        assert 400 <= r.status_code < 500

        # A position beyond the log's head was never answered by any write: 400 at once.
        far = 1 << 62
        began = time.monotonic()
        r = await http.get(f"/api/threads/{tid}", headers=at(far))
        assert r.status_code == 400, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        assert "head" in r.json()["detail"]
        assert time.monotonic() - began < 1.0
        # Without the header a read never waits.
        began = time.monotonic()
        await read(http, f"/api/threads/{tid}")
        assert time.monotonic() - began < 1.0

        # A real position the projections will not reach in time (no worker runs): 503
        # with Retry-After, in ~2 s.
        stack.stop_worker()
        unprojected = (await reply(http, tid, "nobody projects this", "ann"))["position"]
        began = time.monotonic()
        r = await http.get(f"/api/threads/{tid}", headers=at(unprojected))
        waited = time.monotonic() - began
        assert r.status_code == 503, r.text
        assert int(r.headers["Retry-After"]) >= 1
        assert r.headers["content-type"].startswith("application/problem+json")
        assert 1.5 <= waited < 3.5, waited
        r = await http.get("/api/unanswered", headers=at(unprojected))
        assert r.status_code == 503 and "Retry-After" in r.headers
