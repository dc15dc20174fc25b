"""``forum import`` in chunks (service/importer.py): many threads over several chunks land
whole, in the order of the file, with their numbers; an import that stops half-way (the
database refuses a chunk, the process is killed in the middle of a write) leaves whole
chunks only, and running it again imports the rest: nothing twice, nothing missing."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from events.postgres import PostgresEventStore
from events.threads import PostAdded, ThreadStarted
from service import import_lines
from service.importer import Importer, ImportStoppedError
from service.settings import Settings
from tests.conftest import FORUM, ROOT, process_env
from tests.integration.test_importer import everything, forum_import

POISON = "Poisoned thread"


def board(threads: int, posts: int | None = None, *, poison_at: int | None = None
          ) -> list[dict[str, Any]]:
    """``threads`` lines; thread i has ``posts`` posts (default: 1 + i % 7), each
    quoting the first post of its thread by its old id from the third on."""
    lines = []
    for i in range(threads):
        count = posts if posts is not None else 1 + i % 7
        old = 10_000 + i * 1_000
        lines.append({
            "forum": f"section-{i % 3}",
            "title": POISON if i == poison_at else f"Thread {i:04d}",
            "posts": [{"author": f"guest{(i + n) % 11}",
                       "created_at": f"2015-{1 + i % 12:02d}-01T{n // 60 % 24:02d}:"
                                     f"{n % 60:02d}:00Z",
                       "body": (f"[quote=someone post={old}]first[/quote]" if n >= 2 else "")
                               + f"Post {n + 1} of thread {i}.",
                       "id": old + n}
                      for n in range(count)],
        })
    return lines


def write(path: Path, lines: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


async def titles_in_log(pool: asyncpg.Pool) -> list[str]:
    events = (r.event for r in await everything(pool))
    return [e.title for e in events if isinstance(e, ThreadStarted)]


async def check_log(pool: asyncpg.Pool, lines: list[dict[str, Any]]) -> None:
    """Every line is in the log exactly once, whole, in the order of the file: ids and
    positions rise with the line, versions and post numbers run 1, 2, ... per thread, and
    quotes of old ids point at the new ids."""
    events = await everything(pool)
    started: list[tuple[str, ThreadStarted]] = []
    for record in events:
        if isinstance(record.event, ThreadStarted):
            started.append((record.stream_id, record.event))
    expected = [line["title"] for line in lines]
    assert [e.title for _, e in started] == expected, "each thread once, in file order"
    ids = [e.thread_id for _, e in started]
    assert ids == sorted(ids)
    by_stream: dict[str, list[Any]] = {}
    for record in events:
        by_stream.setdefault(record.stream_id, []).append(record)
    for (stream_id, _), line in zip(started, lines, strict=True):
        stream = by_stream[stream_id]
        assert [r.version for r in stream] == list(range(1, len(stream) + 1))
        added = [e for e in (r.event for r in stream) if isinstance(e, PostAdded)]
        assert [p.number for p in added] == list(range(1, len(line["posts"]) + 1))
        assert [p.body.rsplit("]", 1)[-1] for p in added] == [
            p["body"].rsplit("]", 1)[-1] for p in line["posts"]]
        for post in added[2:]:
            assert post.quotes[0].post_id == added[0].post_id and post.quotes[0].number == 1


async def test_threads_over_many_chunks_land_in_file_order_with_their_numbers(
    store: PostgresEventStore, pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(import_lines, "BATCH_POSTS", 10)  # about 3 threads a chunk
    lines = board(60)
    raw = [json.dumps(line).encode() for line in lines]
    # The same line again, in the next chunk: its look-up runs before the first one is
    # written, so only the append itself can refuse it.
    raw.insert(5, raw[3])

    report = await Importer(store).lines(raw)

    assert (report.imported, report.skipped, report.malformed) == (60, 1, 0), report
    assert report.posts == sum(len(line["posts"]) for line in lines)
    await check_log(pool, lines)
    count = await pool.fetchval("SELECT count(*) FROM events")

    again = await Importer(store).lines(raw)
    assert (again.imported, again.skipped) == (0, 61)
    assert await pool.fetchval("SELECT count(*) FROM events") == count


async def poison(pool: asyncpg.Pool, action: str) -> None:
    """A trigger that ``action``s (a PL/pgSQL statement) whenever the poisoned thread is
    written: the database refusing, or hanging in the middle of, one chunk."""
    await pool.execute(f"""
        CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.type = 'thread_started' AND NEW.data->>'title' = '{POISON}' THEN
                {action};
            END IF;
            RETURN NEW;
        END $$;
        CREATE TRIGGER poison BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION poison();
    """)


async def cure(pool: asyncpg.Pool) -> None:
    await pool.execute("DROP TRIGGER poison ON events; DROP FUNCTION poison()")


async def test_a_chunk_refused_half_way_stops_the_import_and_a_rerun_imports_the_rest(
    store: PostgresEventStore, pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(import_lines, "BATCH_POSTS", 12)  # 3 threads of 5 posts a chunk
    lines = board(30, 5, poison_at=16)
    raw = [json.dumps(line).encode() for line in lines]
    await poison(pool, "RAISE EXCEPTION 'the disk is full'")

    with pytest.raises(ImportStoppedError) as stopped:
        await Importer(store).lines(raw)
    # Chunks are lines 1-3, 4-6, ...: the one of line 17 (index 16) begins at line 16.
    assert stopped.value.line == 16
    assert isinstance(stopped.value.cause, asyncpg.RaiseError)
    assert stopped.value.report.imported == 15
    titles = await titles_in_log(pool)
    assert titles == [line["title"] for line in lines[:15]], "whole chunks, before it only"

    await cure(pool)
    report = await Importer(store).lines(raw)
    assert (report.imported, report.skipped) == (15, 15)
    await check_log(pool, lines)


async def test_the_cli_killed_in_the_middle_of_a_write_and_run_again_imports_each_line_once(
    settings: Settings, pool: asyncpg.Pool, tmp_path: Path,
) -> None:
    # 120 threads of 100 posts: chunks of 5,000 posts are lines 1-50, 51-100, 101-120.
    lines = board(120, 100, poison_at=75)
    path = write(tmp_path / "board.jsonl", lines)
    await poison(pool, "PERFORM pg_sleep(60)")
    started = time.monotonic()
    cli = subprocess.Popen([*FORUM, "import", str(path)], env=process_env(settings),
                           cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        backend = None
        while backend is None:  # the second chunk's write, held in the trigger
            assert cli.poll() is None, cli.communicate()
            assert time.monotonic() - started < 60, "the write never reached the trigger"
            await asyncio.sleep(0.1)
            backend = await pool.fetchval(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                " AND wait_event = 'PgSleep'")
        os.kill(cli.pid, signal.SIGKILL)
        cli.communicate(timeout=30)
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.communicate()
    # The server side of the killed write is still sleeping: end it as a crash would.
    await pool.execute("SELECT pg_cancel_backend($1)", backend)
    while await pool.fetchval("SELECT count(*) FROM pg_stat_activity WHERE pid = $1"
                              " AND state = 'active'", backend):
        await asyncio.sleep(0.05)
    titles = await titles_in_log(pool)
    assert titles == [line["title"] for line in lines[:50]], "the first chunk, whole"

    await cure(pool)
    done = forum_import(path, settings)
    assert done.returncode == 0, done.stderr
    assert "imported 70 threads (7000 posts); 50 already imported" in done.stdout
    await check_log(pool, lines)


async def test_the_cli_tells_where_a_refused_import_stopped(
    settings: Settings, pool: asyncpg.Pool, tmp_path: Path,
) -> None:
    lines = board(120, 100, poison_at=75)
    path = write(tmp_path / "board.jsonl", lines)
    await poison(pool, "RAISE EXCEPTION 'the disk is full'")

    done = forum_import(path, settings)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    assert done.stderr.startswith(f"{path}:51: the import stopped here: PostgreSQL refused: "
                                  "the disk is full\n"), done.stderr
    assert "Run the same command again" in done.stderr
    assert "imported 50 threads (5000 posts)" in done.stdout
    assert "before it stopped" in done.stdout

    await cure(pool)
    again = forum_import(path, settings)
    assert again.returncode == 0, again.stderr
    assert "imported 70 threads (7000 posts); 50 already imported" in again.stdout
    await check_log(pool, lines)


async def test_a_chunk_beyond_what_one_append_holds_is_written_in_parts(
    store: PostgresEventStore, pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from service import importer

    monkeypatch.setattr(import_lines, "BATCH_POSTS", 1_000)  # one chunk
    monkeypatch.setattr(importer, "MAX_EVENTS_PER_APPEND", 40)
    lines = board(12, 5, poison_at=7)  # 13 events a thread: three threads a part
    huge = board(1, 30)[0] | {"title": "Huge"}  # 88 events: more than one append holds
    raw = [json.dumps(line).encode() for line in lines]
    raw.insert(3, json.dumps(huge).encode())
    await poison(pool, "RAISE EXCEPTION 'the disk is full'")

    refused: list[tuple[int, str]] = []
    with pytest.raises(ImportStoppedError) as stopped:
        await Importer(store, on_error=lambda n, m: refused.append((n, m))).lines(raw)
    # Parts: lines 1-3, 5-7 (line 4 refused), 8-10 (line 9 is the poisoned thread).
    assert stopped.value.line == 8
    assert stopped.value.report.imported == 6
    assert [n for n, _ in refused] == [4] and "more than one append" in refused[0][1]
    assert await titles_in_log(pool) == [line["title"] for line in lines[:6]]

    await cure(pool)
    report = await Importer(store).lines(raw)
    assert (report.imported, report.skipped, report.malformed) == (6, 6, 1)
    await check_log(pool, lines)
