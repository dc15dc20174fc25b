"""Read throughput: thread pages and a section listing from a real ``forum serve``, beside
the same bytes served from memory by a minimal Litestar app (bench/baseline_app.py).

    .venv/bin/python bench/read.py [--rounds 5] [--seconds 3] [--workers 1,2]
                                   [--connections 16]

Seeds a section with one 1,000-post thread and 60 short threads (through the domain
functions and ``PostgresEventStore.append``, the events the service itself appends),
projects them in-process (``Projector.tick()`` until caught up), then for each worker count
starts ``forum serve --workers N`` and the baseline app under uvicorn with the same N, and
loads three URLs with the same load generator (wrk if installed, else an asyncio keep-alive
client): the first and the last page of the 1,000-post thread (25 posts a page) and the
section's thread listing. The baseline answers with the very bytes the service answered
(checked before measuring). Every figure is the median of ``--rounds`` rounds; within a
round both sides run back to back, in alternating order. Target: >= 0.6 of the baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
from http_load import (
    have_wrk,
    load,
)
from measure import (
    CpuMeter,
    fmt,
    machine,
    median,
    paired_ratio,
    print_table,
)
from redis.asyncio import Redis
from world import (
    REDIS_URL,
    Env,
    bench_env,
    log,
    project_all,
    seed_forum,
    seed_thread,
)

from events.postgres import PostgresEventStore, create_pool

POSTS = 1000
OTHER_THREADS = 60
PER_PAGE = 25


async def seed(env: Env) -> int:
    pool = await create_pool(env.database_url, min_size=1, max_size=2)
    try:
        store = PostgresEventStore(pool)
        await seed_forum(store, "bench", "Bench")
        for _ in range(OTHER_THREADS // 2):
            await seed_thread(store, "bench", 1)
        big = await seed_thread(store, "bench", POSTS - 1)
        for _ in range(OTHER_THREADS - OTHER_THREADS // 2):
            await seed_thread(store, "bench", 1)
    finally:
        await pool.close()
    await project_all(env)
    return big


async def redis_pid() -> int | None:
    redis = Redis.from_url(REDIS_URL)
    try:
        info = await redis.info("server")
        return int(info["process_id"])
    except Exception:
        return None
    finally:
        await redis.aclose()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--workers", type=lambda s: [int(x) for x in s.split(",")],
                        default=[1, 2])
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    started = time.monotonic()
    generator = "wrk -t1" if have_wrk() else "asyncio keep-alive client"
    rows = []
    async with bench_env() as env:
        log(f"seeding a {POSTS}-post thread and {OTHER_THREADS} short threads")
        big = await seed(env)
        last = -(-POSTS // PER_PAGE)
        targets = {
            "thread page 1": f"/api/threads/{big}?page=1",
            f"thread page {last} (last)": f"/api/threads/{big}?page={last}",
            "section listing": "/api/forums/bench/threads",
        }
        keys = {
            "thread page 1": f"thread:{big}:1",
            f"thread page {last} (last)": f"thread:{big}:{last}",
            "section listing": "forum:bench:1",
        }
        groups = {"redis": await redis_pid()}
        for workers in args.workers:
            api, api_url = await env.start_api(workers=workers)
            pages = Path(tempfile.mkdtemp(prefix="pages-", dir=env.logdir))
            index = {}
            async with httpx.AsyncClient(base_url=api_url) as client:
                for i, (name, path) in enumerate(targets.items()):
                    r = await client.get(path)
                    r.raise_for_status()
                    (pages / f"{i}.json").write_bytes(r.content)
                    index[keys[name]] = {"file": f"{i}.json", "headers": {
                        "X-Projection-Position": r.headers["x-projection-position"]}}
                    log(f"{name}: {len(r.content):,} bytes")
            (pages / "index.json").write_text(json.dumps(index))
            base, base_url = await env.start_baseline(pages, workers=workers)
            async with httpx.AsyncClient() as client:
                for name, path in targets.items():
                    a = (await client.get(api_url + path)).content
                    b = (await client.get(base_url + path)).content
                    assert a == b, f"baseline bytes differ for {name}"
            results: dict[tuple[str, str], list[float]] = {}
            latency: dict[tuple[str, str], list[float]] = {}
            cpu: dict[str, list[float]] = {}
            try:
                for rnd in range(args.rounds):
                    for name, path in targets.items():
                        sides = [("api", api_url, api), ("base", base_url, base)]
                        if rnd % 2:
                            sides.reverse()
                        for side, url, proc in sides:
                            meter = CpuMeter(groups={"server": proc.pid}, parents=groups)
                            meter.start()
                            res = await load(url + path, connections=args.connections,
                                             seconds=args.seconds)
                            use = meter.stop()
                            if res.errors:
                                raise RuntimeError(f"{side} {name}: {res.errors} errors")
                            results.setdefault((name, side), []).append(res.rps)
                            latency.setdefault((name, side), []).append(res.p99_ms or 0)
                            # CPU microseconds per request: robust to the machine's
                            # other load, which steals whole cores from either side
                            per = 1e4 / res.rps if res.rps else math.nan
                            cpu.setdefault(name + side, []).append(use["server"] * per)
                            if side == "api":
                                cpu.setdefault(name + "redis", []).append(
                                    use.get("redis", 0) * per)
                        log(f"--workers {workers} round {rnd + 1} {name}: api "
                            f"{results[(name, 'api')][-1]:,.0f}/s, baseline "
                            f"{results[(name, 'base')][-1]:,.0f}/s")
            finally:
                env.stop(api)
                env.stop(base)
            for name in targets:
                ra, rb = results[(name, "api")], results[(name, "base")]
                ca, cb = median(cpu[name + "api"]), median(cpu[name + "base"])
                rows.append([name, workers, fmt(median(ra)), fmt(median(rb)),
                             fmt(paired_ratio(ra, rb), 2),
                             fmt(median(latency[(name, "api")]), 1),
                             fmt(median(latency[(name, "base")]), 1),
                             fmt(ca), fmt(cb), fmt(cb / ca, 2),
                             fmt(median(cpu[name + "redis"]))])

    print(f"\nread benchmark — {machine()}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
          f"median of {args.rounds} rounds x {args.seconds:g} s, {generator}, "
          f"{args.connections} connections")
    print_table(
        "GET through forum serve (Redis read models) vs the same bytes from memory, req/s",
        ["page", "workers", "forum serve", "baseline", "ratio", "p99 ms", "base p99 ms",
         "CPU us/req", "base us/req", "CPU ratio", "redis us/req"],
        rows,
        [f"thread: {POSTS} posts, {PER_PAGE} a page; listing: page 1 of {OTHER_THREADS + 1} "
         "threads", "baseline: bench/baseline_app.py under uvicorn, same worker count",
         "req/s: medians of the rounds; ratio: median of the per-round ratios",
         "us/req: CPU microseconds per request of the server's processes (and of the shared "
         "Redis server); CPU ratio = base us/req / us/req: the ratio if CPU were the only "
         "limit (robust to other load on the machine)",
         "target: ratio >= 0.60"],
    )
    print(f"\ntook {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    asyncio.run(main())
