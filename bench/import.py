"""``forum import`` throughput: the real CLI (``python -m service import FILE`` in a
subprocess, timed from its start to its exit, process start-up included) importing a file
of N posts (default 100,000) into an empty, migrated database, beside the raw ceiling
measured in the same round: the very event rows that import wrote, read back and written
again into a fresh table of the same schema (``CREATE TABLE … (LIKE events INCLUDING
ALL)``: the same indexes) with no decisions and no JSON validation on the client, two
ways, the faster taken:

* copy: ``COPY`` (asyncpg's binary ``copy_records_to_table``) in chunks of 10,000 rows,
  each chunk its own transaction;
* insert: ``executemany`` of a plain ``INSERT``, in chunks of 10,000 rows, each chunk its
  own transaction.

Each round runs in a database cloned from a template (migrated, with the members the file
names seeded), dropped after; the two sides run back to back, their order alternating
between rounds, and the figure is the median of the per-round ratios.

    .venv/bin/python bench/import.py [--posts 100000] [--rounds 5]

The file: threads of 1 to 39 posts (20 on average) in 8 sections, by 3,000 guest names
and 100 registered members, bodies of a few hundred characters with some markup, every
fifth reply quoting an earlier post of its thread by its old id (mapped by the import).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asyncpg

from bench.measure import machine, median, print_table
from bench.world import (
    PG_ADMIN_URL,
    PYTHON,
    ROOT,
    create_database,
    drop_database,
    log,
    unique,
    with_db,
)
from events.postgres import PostgresEventStore, create_pool
from events.records import member_stream
from service.domain.members import register

MEMBERS = 100
GUESTS = 3_000
FORUMS = [f"section-{i}" for i in range(8)]
CHUNK = 10_000
_WORDS = ["the", "empire", "sources", "chapter", "legion", "wall", "river", "senate",
          "harbour", "grain", "tax", "road", "bridge", "winter", "campaign", "letter", "coin",
          "temple", "market", "frontier", "garrison"]


def write_file(path: Path, posts: int, seed: int = 15) -> int:
    """The import file; returns its number of threads."""
    rng = random.Random(seed)
    when = datetime(2009, 1, 1, tzinfo=UTC)
    old_id, threads, written = 1_000_000, 0, 0
    with path.open("w") as out:
        while written < posts:
            length = min(rng.randint(1, 39), posts - written)
            ids: list[int] = []
            thread_posts = []
            for n in range(length):
                when += timedelta(seconds=rng.randint(20, 600))
                who = (f"member{rng.randrange(MEMBERS)}" if rng.random() < 0.15
                       else f"guest{rng.randrange(GUESTS)}")
                words = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(20, 70)))
                body = f"Post {n + 1}: [b]{words[:30]}[/b] {words}."
                if n and n % 5 == 0:
                    body = f"[quote=someone post={rng.choice(ids)}]earlier[/quote]{body}"
                old_id += 1
                ids.append(old_id)
                thread_posts.append({"author": who, "created_at": when.isoformat(),
                                     "body": body, "id": old_id})
            out.write(json.dumps({"forum": rng.choice(FORUMS),
                                  "title": f"Thread {threads + 1} about the "
                                           f"{rng.choice(_WORDS)}",
                                  "posts": thread_posts}) + "\n")
            threads += 1
            written += length
    return threads


async def make_template() -> str:
    """A migrated database with the file's members registered."""
    name = await create_database()
    pool = await create_pool(with_db(PG_ADMIN_URL, name), min_size=1, max_size=2)
    try:
        store = PostgresEventStore(pool)
        now = datetime(2008, 1, 1, tzinfo=UTC)
        for i in range(MEMBERS):
            who = f"member{i}"
            await store.append(member_stream(who), 0,
                               register([], name=who, password="a bench password", now=now),
                               password_hash="x")
    finally:
        await pool.close()
    return name


async def clone(template: str) -> str:
    name = unique("forum_bench_")
    conn = await asyncpg.connect(PG_ADMIN_URL)
    try:
        await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    finally:
        await conn.close()
    return name


def forum_import(url: str, path: Path) -> tuple[float, float, str]:
    """Run the CLI; (wall seconds, its CPU seconds, its stdout)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FORUM_")}
    env.update(FORUM_DATABASE_URL=url, PYTHONPATH=str(ROOT), FORUM_LOG_LEVEL="WARNING")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run([PYTHON, "-m", "service", "import", str(path)], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=3600)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"forum import failed ({done.returncode}):\n{done.stderr[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, done.stdout


_ROWS = ("SELECT stream_id, version, type, data::text, metadata::text FROM events"
         " ORDER BY position")


async def ceiling(conn: asyncpg.Connection, rows: list[tuple[Any, ...]], how: str) -> float:
    """Write ``rows`` into a fresh table of the events schema; seconds taken."""
    await conn.execute("DROP TABLE IF EXISTS raw_events")
    await conn.execute("CREATE TABLE raw_events (LIKE events INCLUDING ALL)")
    numbered = [(i + 1, *row) for i, row in enumerate(rows)]
    columns = ["position", "stream_id", "version", "type", "data", "metadata"]
    started = time.perf_counter()
    for start in range(0, len(numbered), CHUNK):
        chunk = numbered[start:start + CHUNK]
        if how == "copy":
            await conn.copy_records_to_table("raw_events", records=chunk, columns=columns)
        else:
            async with conn.transaction():
                await conn.executemany(
                    "INSERT INTO raw_events (position, stream_id, version, type, data,"
                    " metadata) VALUES ($1, $2, $3, $4, $5::jsonb, $6::jsonb)", chunk)
    seconds = time.perf_counter() - started
    assert await conn.fetchval("SELECT count(*) FROM raw_events") == len(rows)
    await conn.execute("DROP TABLE raw_events")
    return seconds


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--posts", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="forumbench-import-"))
    path = folder / "board.jsonl"
    threads = write_file(path, args.posts)
    empty = folder / "empty.jsonl"
    empty.write_bytes(b"")
    log(f"{path}: {threads:,} threads, {args.posts:,} posts, "
        f"{path.stat().st_size / 1e6:.1f} MB")
    template = await make_template()
    imports, copies, inserts, ratios, cpus, starts = [], [], [], [], [], []
    events = 0
    try:
        for round_ in range(args.rounds):
            name = await clone(template)
            url = with_db(PG_ADMIN_URL, name)
            try:
                start_up = forum_import(url, empty)[0]
                conn = await asyncpg.connect(url)
                try:
                    async def run_import(url: str = url) -> float:
                        wall, cpu, said = forum_import(url, path)
                        assert f"imported {threads} threads ({args.posts} posts)" in said, said
                        cpus.append(cpu / args.posts * 1e6)
                        return wall

                    if round_ % 2 == 0:
                        imports.append(await run_import())
                        rows = [tuple(r) for r in await conn.fetch(_ROWS)]
                        copies.append(await ceiling(conn, rows, "copy"))
                        inserts.append(await ceiling(conn, rows, "insert"))
                    else:
                        # The rows of the previous round's import: the same file makes the
                        # same rows (ids and times included) in a fresh database.
                        copies.append(await ceiling(conn, rows, "copy"))
                        inserts.append(await ceiling(conn, rows, "insert"))
                        imports.append(await run_import())
                    events = len(rows)
                finally:
                    await conn.close()
            finally:
                await drop_database(name)
            starts.append(start_up)
            best = min(copies[-1], inserts[-1])
            ratios.append(best / imports[-1])
            log(f"round {round_ + 1}: import {args.posts / imports[-1]:,.0f} posts/s "
                f"({imports[-1]:.2f} s, start-up {start_up:.2f} s, "
                f"{cpus[-1]:.1f} CPU us/post), ceiling copy {copies[-1]:.2f} s, insert "
                f"{inserts[-1]:.2f} s: {ratios[-1]:.2f}")
    finally:
        await drop_database(template)
        for file in (path, empty):
            file.unlink(missing_ok=True)
        folder.rmdir()
    imported = median(imports)
    print_table(
        f"forum import of {args.posts:,} posts in {threads:,} threads ({events:,} events; "
        f"median of {args.rounds} rounds; {machine()})",
        ["measure", "seconds", "posts/s", "events/s", "import / this"],
        [["raw ceiling: COPY of the same rows, 10,000 a transaction",
          f"{median(copies):.2f}", f"{args.posts / median(copies):,.0f}",
          f"{events / median(copies):,.0f}", f"{median(copies) / imported:.2f}"],
         ["raw ceiling: executemany INSERT, 10,000 a transaction",
          f"{median(inserts):.2f}", f"{args.posts / median(inserts):,.0f}",
          f"{events / median(inserts):,.0f}", f"{median(inserts) / imported:.2f}"],
         ["forum import FILE (subprocess, start-up included)", f"{imported:.2f}",
          f"{args.posts / imported:,.0f}", f"{events / imported:,.0f}", ""],
         ["  its start-up (forum import of an empty file)", f"{median(starts):.2f}", "",
          "", ""],
         ["  its own CPU, us per post", f"{median(cpus):.1f}", "", "", ""]],
    )
    print(f"ratio to the faster ceiling of each round, median of {args.rounds}: "
          f"{median(ratios):.2f} (rounds: {', '.join(f'{r:.2f}' for r in ratios)})")


if __name__ == "__main__":
    asyncio.run(main())
