"""What a reply costs as its thread grows: cold, warm, and what the process keeps meanwhile.

    .venv/bin/python bench/write_scale.py [--rounds 3] [--first-rounds 2] [--warm 15]
                                          [--rss-threads 50] [--small-bound-mib 8]

Threads of 10, 1,000, 10,000 and 50,000 posts (and ``--rss-threads`` more of 10,000) are
written straight into the log by SQL (a post and a bump per reply, as the service appends
them; guests' names of 5,000 people; bodies of ~200 characters), with no snapshot.
Against a real ``forum serve --workers 1`` (limits off, hold off), one guest reply at a
time through HTTP:

* **first**: the thread's first load ever, its snapshots deleted and the process fresh:
  the whole stream is read and folded (a page at a time), and a snapshot written;
* **cold**: a fresh process, the thread not in its cache: its snapshot and the events
  after it (the few written since);
* **warm**: the same process again, the thread kept: only the events after the kept
  version.

A fresh process first answers three replies to a thread of its own, so "cold" measures
the thread, not the process's first requests (connections, first statements). While a
first or cold reply to a second thread of the same length runs, another connection asks
``GET /health`` back to back: the longest answer is how long the event loop was held
(target < 50 ms); the timed replies run without these pings, which take the same loop's
time. Latencies are medians over rounds (each round restarts the process); ratios are per
round, then the median. The physical limit beside them: one PostgreSQL round trip
(``SELECT 1``) measured in the same run; a warm reply costs a few of them (ban check,
ids, load, append) and Python's share of an HTTP request.

Then the memory: a fresh process answers one reply to each of ``--rss-threads`` threads
of 10,000 posts (each a first load: no snapshot); its RSS after that, less its RSS after
the warm-up, beside the cache bound (``FORUM_THREAD_CACHE_BYTES``), once with the default
bound and once with ``--small-bound-mib`` so that the bound is what stops it.
Target: cold reply to the 50,000-post thread <= 5x a warm one.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
from measure import fmt, machine, median, paired_ratio, pg_round_trips, print_table
from world import Env, Proc, bench_env, log, seed_forum

from events.postgres import PostgresEventStore, create_pool
from service.settings import Settings

SIZES = (10, 1_000, 10_000, 50_000)
FIRST_THREAD = 1_000_000  # seeded ids, far from the service's sequences
BODY = "A reply of ordinary length, with [b]a little markup[/b]; a sentence or two of text."

_SEED = """
WITH t AS (SELECT unnest($1::bigint[]) AS tid), rows AS (
    SELECT tid, 1 AS v, 'thread_started' AS type, jsonb_build_object(
        'type', 'thread_started', 'occurred_at', timestamptz '2011-01-01',
        'actor', 'user' || (tid % 5000), 'thread_id', tid, 'forum', 'bench',
        'title', 'Thread ' || tid, 'author', 'user' || (tid % 5000), 'guest', true) AS data
    FROM t
    UNION ALL
    SELECT tid, 2 * n, 'post_added', jsonb_build_object(
        'type', 'post_added', 'occurred_at', timestamptz '2011-01-01' + n * interval '1 minute',
        'actor', 'user' || ((tid + n * 13) % 5000), 'thread_id', tid, 'forum', 'bench',
        'post_id', tid * 100000 + n, 'number', n, 'author', 'user' || ((tid + n * 13) % 5000),
        'guest', true, 'op', n = 1, 'first_reply', n = 2,
        'body', 'Reply ' || n || ' in thread ' || tid || E'.\\nI think the point about '
            || 'the empire is right, but the sources say otherwise in chapter ' || n
            || ', and the later historians mostly agree with them on it.')
    FROM t, generate_series(1, $2::int) n
    UNION ALL
    SELECT tid, 2 * n + 1, 'thread_bumped', jsonb_build_object(
        'type', 'thread_bumped', 'occurred_at', timestamptz '2011-01-01' + n * interval '1 minute',
        'actor', 'user' || ((tid + n * 13) % 5000), 'thread_id', tid, 'forum', 'bench',
        'reason', 'reply')
    FROM t, generate_series(1, $2::int - 1) n
)
INSERT INTO events (position, stream_id, version, type, data)
SELECT $3::bigint + row_number() OVER (), 'thread-' || tid, v, type, data FROM rows
"""


def rss(proc: Proc) -> int:
    """Resident set of the API process, in bytes (``--workers 1``: one process)."""
    for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


class World:
    def __init__(self, env: Env) -> None:
        self.env = env
        self.next_position = 1_000
        self.next_thread = FIRST_THREAD

    async def seed(self, posts: int, count: int = 1) -> list[int]:
        ids = list(range(self.next_thread, self.next_thread + count))
        self.next_thread += count
        pool = await create_pool(self.env.database_url, min_size=1, max_size=1)
        try:
            await pool.execute(_SEED, ids, posts, self.next_position)
            await pool.execute("ANALYZE events")
        finally:
            await pool.close()
        self.next_position += count * 2 * posts + 10
        return ids


async def reply(client: httpx.AsyncClient, thread_id: int, who: str) -> float:
    started = time.perf_counter()
    r = await client.post(f"/api/threads/{thread_id}/posts",
                          json={"body": BODY, "guest_name": who})
    took = time.perf_counter() - started
    if r.status_code != 201:
        raise RuntimeError(f"reply to {thread_id}: {r.status_code} {r.text}")
    return took


async def pings(url: str, *, seconds: float = 0.0,
                during: Callable[[], Awaitable[float]] | None = None) -> tuple[float, float]:
    """The longest ``GET /health`` answered on a connection of its own, asked back to back
    while ``during()`` runs (started once connected), or for ``seconds``; and what
    ``during()`` returned."""
    longest = 0.0
    async with httpx.AsyncClient(base_url=url, timeout=30) as health:
        await health.get("/health")
        running = asyncio.ensure_future(during() if during else asyncio.sleep(seconds, 0.0))
        while not running.done():
            started = time.perf_counter()
            r = await health.get("/health")
            longest = max(longest, time.perf_counter() - started)
            assert r.status_code == 200
        return longest, await running


async def reply_watched(url: str, client: httpx.AsyncClient, thread_id: int, who: str
                        ) -> tuple[float, float]:
    """The longest ``GET /health`` while a reply ran, and for as long right after it with
    nothing else to do: the machine's own hiccups, which no code of ours causes."""
    during, took = await pings(url, during=lambda: reply(client, thread_id, who))
    idle, _ = await pings(url, seconds=max(0.05, took))
    return during, idle


async def fresh_api(env: Env, warmup_thread: int, cache_bytes: int | None = None
                    ) -> tuple[Proc, str, httpx.AsyncClient]:
    proc, url = await (env.start_api(workers=1, rate_limits="off") if cache_bytes is None
                       else env.start_api(workers=1, rate_limits="off",
                                          thread_cache_bytes=cache_bytes))
    client = httpx.AsyncClient(base_url=url, timeout=120)
    for i in range(3):  # connections, statements, code paths: the process is warm
        await reply(client, warmup_thread, f"warmup{i}")
    return proc, url, client


async def latencies(env: Env, world: World, args: argparse.Namespace) -> None:
    # Two threads of each length: one timed alone, one watched by /health (the pings
    # take the same event loop's time, so they would slow the reply they watch).
    threads = {size: await world.seed(size, 2) for size in SIZES}
    warmup = (await world.seed(10))[0]
    log(f"seeded threads of {', '.join(f'{s:,}' for s in SIZES)} posts")
    first: dict[int, list[float]] = {s: [] for s in SIZES}
    cold: dict[int, list[float]] = {s: [] for s in SIZES}
    warm: dict[int, list[float]] = {s: [] for s in SIZES}
    held: dict[str, dict[int, list[float]]] = {
        k: {s: [] for s in SIZES} for k in ("first", "cold", "idle")}
    tails: dict[int, list[int]] = {s: [] for s in SIZES}
    rtts: list[float] = []
    pool = await create_pool(env.database_url, min_size=1, max_size=1)
    try:
        for round_ in range(args.first_rounds + args.rounds):
            kind = "first" if round_ < args.first_rounds else "cold"
            if kind == "first":
                await pool.execute("DELETE FROM snapshots")
            for size, (timed, _) in threads.items():  # what a cold load folds after it
                tails[size].append(await pool.fetchval(
                    "SELECT (SELECT max(version) FROM events WHERE stream_id = $1)"
                    " - coalesce((SELECT version FROM snapshots WHERE stream_id = $1), 0)",
                    f"thread-{timed}"))
            proc, url, client = await fresh_api(env, warmup)
            try:
                for size, (timed, watched) in threads.items():
                    (first if kind == "first" else cold)[size].append(
                        await reply(client, timed, f"r{round_}s{size}"))
                    longest, idle = await reply_watched(url, client, watched,
                                                     f"h{round_}s{size}")
                    held[kind][size].append(longest)
                    held["idle"][size].append(idle)
                    warm[size].append(median([await reply(client, timed, f"w{i}")
                                              for i in range(args.warm)]))
                    await asyncio.sleep(0.2)  # the snapshots, saved in the background
            finally:
                await client.aclose()
                env.stop(proc)
            async with pool.acquire() as conn:
                rtts.append(median(await pg_round_trips(conn, 300)))
            log(f"round {round_ + 1} ({kind}): " + ", ".join(
                f"{s:,}: {(first if kind == 'first' else cold)[s][-1] * 1000:.0f} ms"
                for s in SIZES))
    finally:
        await pool.close()
    rtt = median(rtts)
    rows = []
    for size in SIZES:
        warm_cold = warm[size][args.first_rounds:]
        rows.append([
            f"{size:,}", fmt(median(first[size]) * 1000, 1), fmt(median(cold[size]) * 1000, 1),
            fmt(median(warm[size]) * 1000, 1),
            fmt(paired_ratio(cold[size], warm_cold), 2),
            fmt(paired_ratio(first[size], warm[size][:args.first_rounds]), 1),
            fmt(median(warm[size]) / rtt, 1),
            fmt(max(held["first"][size]) * 1000, 1), fmt(max(held["cold"][size]) * 1000, 1),
            fmt(max(held["idle"][size]) * 1000, 1),
            fmt(median(tails[size][args.first_rounds:]), 0),
        ])
    print_table(
        f"a guest reply through forum serve, by thread length ({machine()}; "
        f"{args.first_rounds} first-load rounds, {args.rounds} cold rounds, "
        f"{args.warm} warm replies a round)",
        ["posts", "first ms", "cold ms", "warm ms", "cold/warm", "first/warm",
         "warm/PG rtt", "/health max first ms", "/health max cold ms", "idle ms",
         "cold tail ev"],
        rows,
        [f"PG round trip (SELECT 1, median): {rtt * 1000:.2f} ms",
         "first: no snapshot, the whole stream read and folded; cold: fresh process, "
         "snapshot + the events after it (cold tail ev: how many); warm: kept in the process",
         "/health max: the longest GET /health answered while that reply ran (target < 50);"
         " idle: the same, as long again right after, nothing running (the machine's noise)",
         "ratios: medians of per-round ratios; target cold/warm <= 5 at 50,000 posts"],
    )


async def memory(env: Env, world: World, args: argparse.Namespace) -> None:
    warmup = (await world.seed(10))[0]
    threads = await world.seed(10_000, args.rss_threads)
    log(f"seeded {args.rss_threads} threads of 10,000 posts")
    rows = []
    for bound in (Settings().thread_cache_bytes, args.small_bound_mib * 1024 * 1024):
        pool = await create_pool(env.database_url, min_size=1, max_size=1)
        try:
            await pool.execute("DELETE FROM snapshots")  # each reply a first load
        finally:
            await pool.close()
        proc, _, client = await fresh_api(env, warmup, cache_bytes=bound)
        try:
            await asyncio.sleep(0.5)
            baseline = rss(proc)
            started = time.perf_counter()
            for i, thread_id in enumerate(threads):
                await reply(client, thread_id, f"m{i}")
            took = time.perf_counter() - started
            await asyncio.sleep(1.0)  # snapshots saved
            grown = rss(proc) - baseline
        finally:
            await client.aclose()
            env.stop(proc)
        rows.append([f"{bound / 2**20:,.0f}", fmt(baseline / 2**20, 1), fmt(grown / 2**20, 1),
                     fmt(grown / bound, 2), fmt(took / len(threads) * 1000, 0)])
    print_table(
        f"the API's RSS after one reply to each of {args.rss_threads} threads of 10,000 posts"
        " (each a first load, no snapshot)",
        ["cache bound MiB", "baseline MiB", "RSS grown MiB", "grown / bound",
         "ms a reply"], rows,
        ["baseline: RSS after the warm-up replies; target: grown <= bound"])


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--first-rounds", type=int, default=2)
    parser.add_argument("--warm", type=int, default=15)
    parser.add_argument("--rss-threads", type=int, default=50)
    parser.add_argument("--small-bound-mib", type=int, default=8)
    args = parser.parse_args()
    started = time.monotonic()
    async with bench_env() as env:
        pool = await create_pool(env.database_url, min_size=1, max_size=2)
        try:
            await seed_forum(PostgresEventStore(pool), "bench", "Bench")
        finally:
            await pool.close()
        world = World(env)
        await latencies(env, world, args)
        await memory(env, world, args)
    print(f"\ntook {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    asyncio.run(main())
