"""Redis memory of the read models: bytes per post beside the bodies' bytes, and the peak
during a full ``forum replay`` beside the steady state.

    .venv/bin/python bench/redis_memory.py [--posts 100000] [--rounds 3]

A board of ``--posts`` posts (threads of 20, 8 sections, 5,000 authors; bodies of 150 to
1,050 bytes of varied prose, every fifth quoting the thread's first post in BBCode, every
seventh with a ``[b]`` word: the event mix of bench/replay.py with bodies of a real
board's length) is generated in SQL as events into a fresh ``forum_bench_*`` database,
and the read models are built from it by the real ``forum replay`` (a subprocess) into a
redis-server this script starts on a free port (``--save '' --appendonly no``, stopped by
its PID at the end), so that nothing else shares its memory.

* per post: ``used_memory`` of that Redis after the build, less its ``used_memory`` when
  empty, divided by the posts; beside the bodies' UTF-8 bytes per post (target <= 1.3).
  The sum of ``MEMORY USAGE`` over every key (SCAN) is printed too, per projection.
* replay: ``forum replay`` again over the built read models, ``used_memory`` sampled
  every 5 ms by this process (and Redis's own ``used_memory_peak``, reset before), the
  peak beside the steady state before it (target <= 1.3).

A build writes no thread pages: they are a cache, made from the thread's events when
first read (docs/design.md, "Thread pages as a cache"). So after each build every page
of every thread is read (``Reads.thread_page``, as the API does) before the steady state
is measured: the figures are those of a board whose every page is in Redis. The time
those reads took (each page rebuilt from the log) is printed too.

Every figure is the median of ``--rounds`` replays.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from redis.asyncio import Redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.measure import machine, median, print_table
from bench.world import (
    PG_ADMIN_URL,
    PYTHON,
    ROOT,
    SECTIONS,
    create_database,
    drop_database,
    free_port,
    generated_log,
    log,
    unique,
    with_db,
)
from events.postgres import PostgresEventStore, create_pool
from workers.projections import PROJECTIONS
from workers.readmodels import Keys
from workers.readmodels.reads import Reads

POSTS_PER_THREAD = 20

# Varied prose for the bodies (not one repeated sentence: Redis does not compress, but a
# reader of these figures should not have to wonder).
_PROSE = (
    "The archive of the old county records was moved twice before the fire, and most of "
    "what survived was catalogued by volunteers who never agreed on a scheme. I went "
    "through the parish books last winter and found three different spellings of the same "
    "family name within a decade; the clerk seems to have written whatever he heard. If "
    "anyone has the 1841 returns for the northern townships, I would be glad to compare "
    "notes, since the transcriptions online skip whole pages. My grandmother always said "
    "the mill closed in 1893, but the trade directories list it until at least 1901, "
    "under a new owner whose name appears nowhere else. Has anybody looked at the "
    "insurance maps? They show a second building on the east bank that later maps leave "
    "out entirely, which would explain the foundations we found by the weir last summer. "
    "Thanks for the scans you posted earlier; the handwriting on the second sheet is hard "
    "going, but the dates line up with the baptisms. I would still treat the newspaper "
    "account with caution: it was written forty years after the event by a man who was a "
    "child at the time, and he gets the name of the vicar wrong. "
)

# Bodies of 150-1,050 characters of the prose, a fifth quoting the thread's first post, a
# few with markup.
_GENERATE = generated_log(
    body="""CASE
                   WHEN n % 5 = 0 THEN '[quote=x post=' || (t * 100 + 1) || ']'
                       || left(prose, 80) || E'[/quote]\\n' || prose
                   WHEN n % 7 = 0 THEN '[b]Note:[/b] ' || prose
                   ELSE prose END""",
    columns=""",
           'Reply ' || n || ' in thread ' || th.t || E'.\\n'
               || substr($3::text, 1 + ((th.t * 31 + n * 17) % 500),
                         150 + ((th.t * 13 + n * 29) % 900)) AS prose""")

_FORUMS = SECTIONS


class OwnRedis:
    """A redis-server of this script's own, on a free port, no persistence."""

    def __init__(self, maxmemory: int | None = None, policy: str | None = None) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="forumbench-redis-"))
        argv = [shutil.which("redis-server") or "redis-server", "--port", str(self.port),
                "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                "--dir", str(self.dir)]
        if maxmemory is not None:
            argv += ["--maxmemory", str(maxmemory)]
        if policy is not None:
            argv += ["--maxmemory-policy", policy]
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        self.url = f"redis://127.0.0.1:{self.port}/0"

    async def ready(self) -> Redis:
        redis = Redis.from_url(self.url, socket_timeout=60)
        for _ in range(200):
            try:
                await redis.ping()
                return redis
            except Exception:
                await asyncio.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


async def used(redis: Redis) -> int:
    return int((await redis.info("memory"))["used_memory"])


def replay(url: str, redis_url: str, prefix: str) -> None:
    """``forum replay`` of every Redis projection, as an operator runs it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FORUM_")}
    env.update(FORUM_DATABASE_URL=url, FORUM_REDIS_URL=redis_url, FORUM_KEY_PREFIX=prefix,
               FORUM_BROKER_URL="", FORUM_LOG_LEVEL="WARNING", PYTHONPATH=str(ROOT))
    subprocess.run([PYTHON, "-m", "service", "replay", "--jobs", "1", *PROJECTIONS],
                   env=env, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)


async def replay_peak(url: str, redis: Redis, redis_url: str, prefix: str) -> int:
    """The highest ``used_memory`` seen while ``forum replay`` runs."""
    await redis.config_resetstat()
    peak = await used(redis)
    task = asyncio.get_running_loop().run_in_executor(None, replay, url, redis_url, prefix)
    while not task.done():
        peak = max(peak, await used(redis))
        await asyncio.sleep(0.005)
    await task
    info = await redis.info("memory")
    return max(peak, int(info["used_memory_peak"]))


async def read_every_page(url: str, redis: Redis, prefix: str, threads: int) -> float:
    """Read every thread's pages as the API does (a missing page is rebuilt from the
    thread's events); the seconds it took."""
    pool = await create_pool(url, min_size=1, max_size=2)
    try:
        reads = Reads(redis, Keys(prefix), PostgresEventStore(pool), per_page=25,
                      min_position_wait=2.0, cache_ms=0)
        started = time.perf_counter()
        for thread_id in range(1, threads + 1):
            page, pages = 1, 1
            while page <= pages:
                pages = (await reads.thread_page(thread_id, page)).pages
                page += 1
        return time.perf_counter() - started
    finally:
        await pool.close()


async def key_usage(redis: Redis, prefix: str) -> dict[str, int]:
    """MEMORY USAGE (every element sampled) summed per projection."""
    out: dict[str, int] = defaultdict(int)
    async for key in redis.scan_iter(match=f"{prefix}:*", count=1000):
        part = key.decode().split(":")[1]
        out[part] += int(await redis.memory_usage(key, samples=0) or 0)
    return dict(out)


async def settle(redis: Redis) -> int:
    """``used_memory`` once lazily freed keys are gone (UNLINK frees in the background)."""
    last = -1
    for _ in range(100):
        now = await used(redis)
        info = await redis.info("memory")
        if now == last and int(info.get("lazyfree_pending_objects", 0)) == 0:
            return now
        last = now
        await asyncio.sleep(0.1)
    return last


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--posts", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    threads = max(1, args.posts // POSTS_PER_THREAD)
    posts = threads * POSTS_PER_THREAD
    name = await create_database()
    url = with_db(PG_ADMIN_URL, name)
    own = OwnRedis()
    prefix = unique("forumbench-")
    try:
        redis = await own.ready()
        empty = await used(redis)
        pool = await create_pool(url, min_size=1, max_size=2)
        try:
            log(f"generating {threads} threads of {POSTS_PER_THREAD} posts into {name}")
            async with pool.acquire() as conn:
                await conn.execute(_FORUMS)
                await conn.execute(_GENERATE, threads, POSTS_PER_THREAD, _PROSE * 3)
                body_bytes = int(await conn.fetchval(
                    "SELECT sum(octet_length(data->>'body')) FROM events "
                    "WHERE type = 'post_added'"))
                events = int(await conn.fetchval("SELECT count(*) FROM events"))
        finally:
            await pool.close()
        log(f"{events:,} events; building the read models (forum replay) on port {own.port}")
        started = time.perf_counter()
        replay(url, own.url, prefix)
        log(f"built in {time.perf_counter() - started:.1f} s")
        filled = [await read_every_page(url, redis, prefix, threads)]
        log(f"every page read (rebuilt from the log) in {filled[-1]:.1f} s")
        steady = await settle(redis) - empty
        usage = await key_usage(redis, prefix)
        steadies, peaks, ratios = [steady], [], []
        for round_ in range(args.rounds):
            before = await settle(redis) - empty
            peak = await replay_peak(url, redis, own.url, prefix) - empty
            bare = await settle(redis) - empty
            filled.append(await read_every_page(url, redis, prefix, threads))
            after = await settle(redis) - empty
            steadies.append(after)
            peaks.append(peak)
            ratios.append(peak / before)
            log(f"round {round_ + 1}: steady {before:,} B, replay peak {peak:,} B "
                f"({ratios[-1]:.2f}), after it {bare:,} B, after reading every page "
                f"{after:,} B ({filled[-1]:.1f} s)")
        per_post = median(steadies) / posts
        body = body_bytes / posts
        print_table(
            f"Redis read models of {posts:,} posts ({events:,} events), median of "
            f"{args.rounds} replays; {machine()}",
            ["measure", "bytes", "ratio"],
            [["bodies, UTF-8 bytes per post", f"{body:,.0f}", ""],
             ["Redis used_memory per post (all read models)", f"{per_post:,.0f}",
              f"{per_post / body:.2f} of the body (target <= 1.3)"],
             *[[f"  MEMORY USAGE per post: {part}", f"{size / posts:,.0f}", ""]
               for part, size in sorted(usage.items())],
             ["steady state, used_memory", f"{median(steadies):,.0f}", ""],
             ["peak during forum replay", f"{median(peaks):,.0f}",
              f"{median(ratios):.2f} of the steady state (target <= 1.3)"],
             ["reading every page after a build (rebuilt on read), s",
              f"{median(filled):.1f}", f"{threads * POSTS_PER_THREAD // 25 / median(filled):,.0f}"
              " pages/s"]],
        )
        print(f"replay peak / steady per round: {', '.join(f'{r:.2f}' for r in ratios)}")
        await redis.aclose()
    finally:
        own.stop()
        await drop_database(name)
        log(f"cleaned up: stopped redis-server (pid {own.proc.pid}), dropped {name}")


if __name__ == "__main__":
    asyncio.run(main())
