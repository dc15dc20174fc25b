"""How long an erasure takes, and how long it holds appends back (events/erasure.py locks
the log while it rewrites), beside its physical limit measured in the same run: one
sequential scan of the log for the name, which is what an erasure must do at least (a
name can be anywhere: an author, an actor, a quote inside someone else's post). The hold
is the longest an append made every 10 ms during the erasure took.

    .venv/bin/python bench/erase.py [--events 1000000] [--rounds 3]

The log is bench/replay.py's (generated in SQL: threads of ~20 posts by 5,000 guest
names); each round erases another guest name (about 200 posts and as many bumps), with
``keep`` and ``erase`` in turn. The rebuild of the read models that follows runs at replay
speed, beside the live ones: bench/replay.py measures that.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.measure import machine, median, print_table
from bench.replay import _FORUMS, _GENERATE, POSTS_PER_THREAD
from bench.world import PG_ADMIN_URL, create_database, drop_database, log, with_db
from events.erasure import erase
from events.postgres import PostgresEventStore, create_pool
from events.redaction import Subject
from events.sections import ForumCreated

_SCAN = "SELECT count(*) FROM events WHERE strpos(lower(data::text), lower($1)) > 0"
_stopping = asyncio.Event()


async def _append_meanwhile(store: PostgresEventStore, stream: str) -> float:
    """Append every 10 ms until told to stop; the longest an append took."""
    longest, version = 0.0, 0
    while not _stopping.is_set():
        started = time.perf_counter()
        await store.append(stream, version, [ForumCreated(
            occurred_at=datetime.now(UTC), actor="operator", slug="b", title="B")])
        longest = max(longest, time.perf_counter() - started)
        version += 1
        await asyncio.sleep(0.01)
    return longest


async def _stop(appending: asyncio.Future[float]) -> float:
    _stopping.set()
    try:
        return await appending
    finally:
        _stopping.clear()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    per_thread = 1 + POSTS_PER_THREAD + (POSTS_PER_THREAD // 5) + (POSTS_PER_THREAD - 1)
    threads = max(1, args.events // per_thread)
    name = await create_database()
    pool = await create_pool(with_db(PG_ADMIN_URL, name), min_size=1, max_size=2)
    try:
        async with pool.acquire() as conn:
            await conn.execute(_FORUMS)
            await conn.execute(_GENERATE, threads, POSTS_PER_THREAD)
            await conn.execute("VACUUM ANALYZE events")
            total = int(await conn.fetchval("SELECT count(*) FROM events"))
        log(f"{total:,} events")
        scans, erasures, rewritten, holds = [], [], [], []
        store = PostgresEventStore(pool)
        for round_ in range(args.rounds):
            guest = f"user{4321 + round_ * 7}"
            started = time.perf_counter()
            await pool.fetchval(_SCAN, guest)
            scans.append(time.perf_counter() - started)
            appending = asyncio.ensure_future(_append_meanwhile(store, f"forum-b{round_}"))
            started = time.perf_counter()
            done = await erase(pool, Subject(guest, True, f"anon-bench{round_}",
                                             round_ % 2 == 1),
                               actor="operator", now=datetime.now(UTC))
            erasures.append(time.perf_counter() - started)
            holds.append(await _stop(appending))
            rewritten.append(done.events_rewritten)
            log(f"round {round_ + 1}: scan {scans[-1]:.2f} s, erasure {erasures[-1]:.2f} s "
                f"({done.events_rewritten} events in {done.streams} threads), appends held "
                f"back at most {holds[-1] * 1000:.0f} ms")
        scan, erasure = median(scans), median(erasures)
        print_table(
            f"erasing a guest name from a log of {total:,} events (median of {args.rounds};"
            f" {machine()})",
            ["measure", "seconds", "limit / this"],
            [["limit: one sequential scan of the log for the name", f"{scan:.2f}", ""],
             [f"erasure ({median(rewritten):.0f} events rewritten)",
              f"{erasure:.2f}", f"{scan / erasure:.2f}"],
             ["longest append during it (appends every 10 ms)", f"{median(holds):.3f}",
              f"{scan / median(holds):.0f}"]],
        )
    finally:
        await pool.close()
        await drop_database(name)


if __name__ == "__main__":
    asyncio.run(main())
