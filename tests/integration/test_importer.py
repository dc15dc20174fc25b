"""``forum import FILE`` as an operator runs it: a subprocess against a real database, the
result read back through the log and, once projected, through the API."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from events import RecordedEvent
from events.postgres import _record
from events.threads import PostAdded, ThreadStarted
from service.settings import Settings
from tests.conftest import FORUM, ROOT, process_env


def forum_import(path: Path, settings: Settings) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*FORUM, "import", str(path)], env=process_env(settings), cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def jsonl(path: Path, *lines: dict[str, Any] | bytes) -> Path:
    with path.open("wb") as out:
        for line in lines:
            out.write(line if isinstance(line, bytes) else json.dumps(line).encode())
            out.write(b"\n")
    return path


def post(author: str, created_at: str, body: str, **extra: Any) -> dict[str, Any]:
    return {"author": author, "created_at": created_at, "body": body, **extra}


async def everything(pool) -> list[RecordedEvent]:  # type: ignore[no-untyped-def]
    """The whole log, read from the table itself: ``read_all`` stops below the oldest
    transaction still open anywhere on the (shared) server, which may be anyone's."""
    rows = await pool.fetch("SELECT position, stream_id, version, data, metadata, recorded_at"
                            " FROM events ORDER BY position")
    return [_record(row) for row in rows]


async def head_and_count(pool) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    row = await pool.fetchrow("SELECT coalesce(max(position), 0), count(*) FROM events")
    return int(row[0]), int(row[1])


ROME = {
    "forum": "history", "title": "Rome",
    "posts": [
        post("Hadrian", "2011-06-08T10:00:00Z", "Who built the wall?", id=501),
        post("caesar", "2018-03-01T12:30:00+02:00",
             "[quote=Hadrian post=501]Who built the wall?[/quote]I did not.", id=502),
        post("Hadrian", "2024-01-05T08:00:00Z",
             "[quote=caesar post=502]I did not.[/quote]Nor I. "
             "[quote=Hadrian post=501]wall[/quote]", id=503),
    ],
}
CARTHAGE = {
    "forum": "ancient-africa", "title": "Carthage",
    "posts": [post("hannibal", "2010-01-01T00:00:00Z", "Elephants.")],
}


async def test_import_keeps_original_times_members_and_guests_and_maps_quoted_ids(
    settings: Settings, store, pool, client, project,  # type: ignore[no-untyped-def]
    tmp_path: Path,
):
    r = await client.post("/api/users", json={"name": "Hadrian", "password": "a good password"})
    assert r.status_code == 201, r.text
    path = jsonl(tmp_path / "board.jsonl", ROME, CARTHAGE)

    done = forum_import(path, settings)
    assert done.returncode == 0, done.stderr
    assert "imported 2 threads (4 posts)" in done.stdout
    assert done.stderr == ""

    # In the log: the original times, and the old ids of quotes replaced by the new ones.
    started = {r.event.title: r.event for r in await everything(pool)
               if isinstance(r.event, ThreadStarted)}
    assert set(started) == {"Rome", "Carthage"}
    added = [r.event for r in await store.read_stream(f"thread-{started['Rome'].thread_id}")
             if isinstance(r.event, PostAdded)]
    assert [p.occurred_at.isoformat() for p in added] == [
        "2011-06-08T10:00:00+00:00", "2018-03-01T10:30:00+00:00", "2024-01-05T08:00:00+00:00"]
    first, second, _ = (p.post_id for p in added)
    assert f"post={first}]" in added[1].body and "post=501" not in added[1].body
    assert f"post={second}]" in added[2].body and f"post={first}]" in added[2].body

    # Through the API, once projected.
    await project()
    page = (await client.get(f"/api/threads/{started['Rome'].thread_id}")).json()
    thread, posts = page["thread"], page["posts"]
    assert thread["created_at"] == "2011-06-08T10:00:00.000Z"
    assert thread["bumped_at"] == "2024-01-05T08:00:00.000Z"
    assert thread["forum"] == "history" and thread["posts"] == 3
    assert [p["created_at"] for p in posts] == [
        "2011-06-08T10:00:00.000Z", "2018-03-01T10:30:00.000Z", "2024-01-05T08:00:00.000Z"]
    assert [(p["author"]["name"], p["author"]["guest"], p["author"]["op"]) for p in posts] == [
        ("Hadrian", False, True), ("caesar", True, False), ("Hadrian", False, True)]
    assert posts[1]["quotes"] == [{"post_id": first, "number": 1, "author": "Hadrian"}]
    assert {(q["post_id"], q["number"]) for q in posts[2]["quotes"]} == {(first, 1), (second, 2)}
    assert "Who built the wall?" in posts[1]["html"]

    member = (await client.get("/api/users/Hadrian")).json()
    assert (member["guest"], member["threads"], member["posts"]) == (False, 1, 2)
    guest = (await client.get("/api/users/caesar")).json()
    assert (guest["guest"], guest["threads"], guest["posts"]) == (True, 0, 1)
    sections = {f["slug"]: f for f in (await client.get("/api/forums")).json()["forums"]}
    assert sections["history"]["threads"] == 1 and sections["history"]["posts"] == 3
    assert sections["ancient-africa"]["threads"] == 1


async def test_importing_the_same_file_twice_adds_nothing_the_second_time(
    settings: Settings, pool, tmp_path: Path,  # type: ignore[no-untyped-def]
):
    path = jsonl(tmp_path / "board.jsonl", ROME, CARTHAGE)
    first = forum_import(path, settings)
    assert first.returncode == 0, first.stderr
    head, count = await head_and_count(pool)
    assert count == 2 + 2 + 4 + 3 + 2  # sections, threads, posts, quotes, bumps

    again = forum_import(path, settings)
    assert again.returncode == 0, again.stderr
    assert "imported 0 threads" in again.stdout and "2 already imported" in again.stdout
    assert await head_and_count(pool) == (head, count)


GOOD_FIRST = {"forum": "history", "title": "Good before",
              "posts": [post("ann", "2012-01-01T00:00:00Z", "fine")]}
GOOD_LAST = {"forum": "history", "title": "Good after",
             "posts": [post("bob", "2012-01-02T00:00:00Z", "also fine")]}


def _thread(title: str, posts: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"forum": "history", "title": title, "posts": posts, **extra}


MALFORMED: list[tuple[str, dict[str, Any] | bytes]] = [
    ("bad JSON", b'{"forum": "history", "title": "Broken", "posts": ['),
    ("missing field", {"forum": "history", "posts": [post("cy", "2012-01-01T00:00:00Z", "x")]}),
    ("unknown field", _thread("Extra", [post("cy", "2012-01-01T00:00:00Z", "x")], tags=["a"])),
    ("unknown post field", _thread("Extra post", [post("cy", "2012-01-01T00:00:00Z", "x",
                                                       likes=3)])),
    ("empty title", _thread("   ", [post("cy", "2012-01-01T00:00:00Z", "x")])),
    ("no posts", _thread("Empty", [])),
    ("naive datetime", _thread("Naive", [post("cy", "2012-01-01T00:00:00", "x")])),
    ("not a datetime", _thread("Garbled time", [post("cy", "yesterday", "x")])),
    ("out of order", _thread("Backwards", [post("cy", "2012-01-02T00:00:00Z", "x"),
                                           post("dee", "2012-01-01T00:00:00Z", "y")])),
    ("raw control character", b'{"forum": "history", "title": "Bell\x07", "posts": '
                              b'[{"author": "cy", "created_at": "2012-01-01T00:00:00Z", '
                              b'"body": "x"}]}'),
    ("control character in a name", _thread("Bell", [post("c\u0007y", "2012-01-01T00:00:00Z",
                                                          "x")])),
    ("not UTF-8", b'{"forum": "history", "title": "Caf\xe9", "posts": '
                  b'[{"author": "cy", "created_at": "2012-01-01T00:00:00Z", "body": "x"}]}'),
    ("bad section slug", {"forum": "Not A Slug!", "title": "Slug",
                          "posts": [post("cy", "2012-01-01T00:00:00Z", "x")]}),
    ("quote of an unknown id", _thread("Ghost quote", [
        post("cy", "2012-01-01T00:00:00Z", "x", id=1),
        post("dee", "2012-01-02T00:00:00Z", "[quote=cy post=999999]boo[/quote] y", id=2)])),
    ("10 MB line", _thread("Huge", [post("cy", "2012-01-01T00:00:00Z", "x" * 10_000_000)])),
]


async def test_malformed_lines_are_reported_with_their_number_and_the_others_imported(
    settings: Settings, pool, tmp_path: Path,  # type: ignore[no-untyped-def]
):
    lines = [GOOD_FIRST, *(line for _, line in MALFORMED), GOOD_LAST]
    path = jsonl(tmp_path / "board.jsonl", *lines)

    done = forum_import(path, settings)
    assert done.returncode != 0
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    reported = [line for line in done.stderr.splitlines() if line.strip()]
    numbers = [int(line.split(":")[1]) for line in reported if line.startswith(f"{path}:")]
    expected = list(range(2, 2 + len(MALFORMED)))
    assert numbers == expected, (
        "every malformed line, and only those, reported with its number:\n" + done.stderr)
    for (what, _), line in zip(MALFORMED, reported, strict=True):
        assert len(line) < 2000, f"{what}: the message repeats the whole line"
    assert "imported 2 threads" in done.stdout
    assert f"{len(MALFORMED)} malformed" in done.stdout

    # Nothing of a malformed line is in the log; the good lines are, whole.
    events = await everything(pool)
    titles = sorted(e.event.title for e in events if isinstance(e.event, ThreadStarted))
    assert titles == ["Good after", "Good before"]
    streams = {e.stream_id for e in events}
    assert {s for s in streams if not s.startswith("thread-")} == {"forum-history"}
    assert len([s for s in streams if s.startswith("thread-")]) == 2


@pytest.mark.parametrize("what", ["bad JSON", "out of order", "10 MB line"])
async def test_a_file_of_only_one_malformed_line_appends_nothing(
    settings: Settings, pool, tmp_path: Path, what: str,  # type: ignore[no-untyped-def]
):
    line = dict(MALFORMED)[what]
    path = jsonl(tmp_path / "one.jsonl", line)
    done = forum_import(path, settings)
    assert done.returncode != 0
    assert done.stderr.startswith(f"{path}:1: "), done.stderr[:500]
    assert await head_and_count(pool) == (0, 0)
