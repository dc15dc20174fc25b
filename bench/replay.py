"""Replay throughput: rebuilding every projection from N events (default 1,000,000),
beside the raw ceiling measured in the same run: reading the same rows with asyncpg in
keyset pages of the same size and decoding them into events. Two ways of reading are
measured, and the ratio is taken to the faster one:

* rows: ``SELECT position, data`` a row per event, each event decoded by itself;
* feed: the store's ``read_feed`` (what a replay uses), a page as one row, its events
  decoded in one call.

The machine's speed drifts by up to 2x within minutes, so each replay is bracketed: both
ceilings are measured just before and just after it, and its ratio is to the faster of
the two ceilings' before/after means. The figures are medians over the rounds.

    .venv/bin/python bench/replay.py [--events 1000000] [--rounds 5]

The log is generated in SQL (sections, threads of ~20 posts, quotes, bumps: the event mix
of a real board) straight into a fresh ``forum_bench_*`` database.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

from redis.asyncio import Redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.measure import (
    machine,
    median,
    print_table,
)
from bench.world import (
    PG_ADMIN_URL,
    REDIS_URL,
    SECTIONS,
    create_database,
    drop_database,
    drop_keys,
    generated_log,
    log,
    unique,
    with_db,
)
from events.codec import decode
from events.postgres import _HORIZON, PostgresEventStore, create_pool
from service.settings import Settings
from workers import rebuild, rebuild_jobs
from workers.projections import PROJECTIONS
from workers.readmodels import Keys

POSTS_PER_THREAD = 20

_GENERATE = generated_log()

_FORUMS = SECTIONS


_ROWS = f"""
SELECT position, data FROM events
WHERE position > $1 AND position < (SELECT {_HORIZON}) ORDER BY position LIMIT $2
"""


async def ceiling_rows(pool: object, batch: int) -> tuple[float, int]:
    """Read every row in keyset pages and decode each event: what a replay cannot beat."""
    started = time.perf_counter()
    after, count = 0, 0
    async with pool.acquire() as conn:  # type: ignore[attr-defined]
        while True:
            rows = await conn.fetch(_ROWS, after, batch)
            if not rows:
                break
            for row in rows:
                decode(row[1])
            count += len(rows)
            after = rows[-1][0]
    return time.perf_counter() - started, count


async def ceiling_feed(store: PostgresEventStore, batch: int) -> tuple[float, int]:
    """The same through the feed a replay reads: a page per row, decoded in one call."""
    started = time.perf_counter()
    after, count = 0, 0
    while feed := await store.read_feed(after, batch):
        count += len(feed)
        after = feed[-1][0]
    return time.perf_counter() - started, count


async def replay_all(store: PostgresEventStore, redis: Redis, url: str, jobs: int) -> float:
    """What ``forum replay --jobs N`` does, timed from the first namespace to the last swap
    (process start-up included)."""
    prefix = unique("forumbench-")
    keys = Keys(prefix)
    settings = Settings(database_url=url, redis_url=REDIS_URL, key_prefix=prefix)
    started = time.perf_counter()
    builds = {name: await rebuild.start(redis, keys, name, fresh=True) for name in PROJECTIONS}
    await rebuild_jobs.fill(settings, store, redis, keys, builds, jobs=jobs)
    elapsed = time.perf_counter() - started
    assert not await redis.exists(*(keys.building(name) for name in PROJECTIONS))
    await drop_keys(prefix)
    return elapsed


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                        help="processes of the parallel replay (default: one per core)")
    args = parser.parse_args()
    per_thread = 1 + POSTS_PER_THREAD + (POSTS_PER_THREAD // 5) + (POSTS_PER_THREAD - 1)
    threads = max(1, args.events // per_thread)
    name = await create_database()
    url = with_db(PG_ADMIN_URL, name)
    pool = await create_pool(url, min_size=1, max_size=4)
    redis = Redis.from_url(REDIS_URL, socket_timeout=120)
    try:
        log(f"generating {threads} threads ({threads * per_thread + 8} events)")
        async with pool.acquire() as conn:
            await conn.execute(_FORUMS)
            await conn.execute(_GENERATE, threads, POSTS_PER_THREAD)
            await conn.execute("VACUUM ANALYZE events")
            total = await conn.fetchval("SELECT count(*) FROM events")
        store = PostgresEventStore(pool)

        async def ceilings() -> tuple[float, float]:
            # With the garbage collector kept out of the way as a rebuild keeps it: it
            # would cost the ceilings' decoding as much as the replay's (up to 10%).
            with rebuild.collect_per_batch():
                seconds, count = await ceiling_rows(pool, rebuild.BUILD_BATCH)
                assert count == total
                rows = count / seconds
                seconds, count = await ceiling_feed(store, rebuild.BUILD_BATCH)
                assert count == total
            return rows, count / seconds

        def around(before: tuple[float, float], after: tuple[float, float]) -> float:
            return max((before[0] + after[0]) / 2, (before[1] + after[1]) / 2)

        replays, parallel, ratios, parallel_ratios = [], [], [], []
        cpu: list[float] = []  # this process's CPU per event in the one-process replay
        measured = [await ceilings()]
        for round_ in range(args.rounds):
            cpu_started = time.process_time()
            replays.append(total / await replay_all(store, redis, url, 1))
            cpu.append((time.process_time() - cpu_started) / total * 1e6)
            measured.append(await ceilings())
            ratios.append(replays[-1] / around(measured[-2], measured[-1]))
            parallel.append(total / await replay_all(store, redis, url, args.jobs))
            measured.append(await ceilings())
            parallel_ratios.append(parallel[-1] / around(measured[-2], measured[-1]))
            log(f"round {round_ + 1}: ceilings (rows, feed) "
                + ", ".join(f"{r:,.0f}/{f:,.0f}" for r, f in measured[-3:])
                + f"; replay {replays[-1]:,.0f}/s ({ratios[-1]:.2f}, "
                f"{cpu[-1]:.2f} CPU us/event), --jobs {args.jobs} "
                f"{parallel[-1]:,.0f}/s ({parallel_ratios[-1]:.2f})")
        rows = [r for r, _ in measured]
        feeds = [f for _, f in measured]
        replay, fast = median(replays), median(parallel)
        print_table(
            f"replay of {total:,} events, all {len(PROJECTIONS)} projections "
            f"(median of {args.rounds} rounds; {machine()})",
            ["measure", "events/s", "replay / this"],
            [["raw ceiling: keyset pages of rows + decode each", f"{median(rows):,.0f}",
              f"{replay / median(rows):.2f}"],
             ["raw ceiling: keyset pages via read_feed + decode", f"{median(feeds):,.0f}",
              f"{replay / median(feeds):.2f}"],
             ["forum replay --jobs 1 (all projections)", f"{replay:,.0f}", ""],
             ["  its own CPU, us per event", f"{median(cpu):.2f}", ""],
             [f"forum replay --jobs {args.jobs} (all projections)", f"{fast:,.0f}", ""]],
        )
        print(f"ratio to the faster ceiling measured around each replay, median of "
              f"{args.rounds}: --jobs 1 {median(ratios):.2f} "
              f"(rounds: {', '.join(f'{r:.2f}' for r in ratios)}), --jobs {args.jobs} "
              f"{median(parallel_ratios):.2f} "
              f"(rounds: {', '.join(f'{r:.2f}' for r in parallel_ratios)})")
    finally:
        await redis.aclose()
        await pool.close()
        await drop_database(name)


if __name__ == "__main__":
    asyncio.run(main())
