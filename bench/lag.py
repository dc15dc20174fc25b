"""Projection lag: how long after a write it becomes visible through the API.

    .venv/bin/python bench/lag.py [--duration 60] [--rate 200] [--threads 50]
                                  [--api-workers 1] [--worker-processes 1]
                                  [--worker-threads 2]

Starts a real ``forum serve`` and a real ``forum worker`` (Redis broker under the run's own
key prefix), then replies as guests at a steady ``--rate`` (open loop: write i is sent at
start + i/rate whatever the earlier ones are doing) for ``--duration`` seconds, spread over
``--threads`` threads, from a lean asyncio HTTP/1.1 keep-alive client (http_load.RawHttp;
httpx costs ~1 ms of CPU a request and its pool crawls with hundreds in flight, which
made the load generator, not the service, the bottleneck). For each write it records
when the POST returned, then asks
``GET /api/threads/{id}?page={number}&per_page=1`` with ``X-Min-Position: <position of the
write>``: the service answers once the read models have reached that position (it checks
every 5 ms, at most 2 s, else 503 and we ask again), and the page must hold the new post.
Lag = that GET's answer - the POST's return: commit -> visible, including one HTTP read.

Reported overall and per 10-second window (no growth over the run), beside the physical
limits measured in the same run, sampled every 20 ms while the load runs: a Redis round
trip (PING), a PostgreSQL round trip (SELECT 1), and an API read of a page that is already
visible (the floor of this way of measuring). Target: p99 < 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
import msgspec
from http_load import (
    RawHttp,
)
from measure import (
    CpuMeter,
    fmt,
    machine,
    median,
    percentile,
    print_table,
)
from redis.asyncio import Redis
from world import (
    REDIS_URL,
    Env,
    bench_env,
    log,
    postmaster_pid,
    project_all,
    seed_forum,
    seed_thread,
)

from events.postgres import PostgresEventStore, create_pool

WINDOW = 10.0
BODY = "A reply to measure projection lag, with [i]a little[/i] markup. " * 3


@dataclass
class Write:
    sent: float  # seconds since the start of the run
    slip: float  # how late it was sent against its schedule
    write_ms: float
    lag_ms: float
    retries: int  # 503 answers (not projected within the service's 2 s wait)
    position: int = 0
    returned: float = 0.0  # perf_counter when the POST returned


async def seed(env: Env, threads: int) -> list[int]:
    pool = await create_pool(env.database_url, min_size=1, max_size=2)
    try:
        store = PostgresEventStore(pool)
        await seed_forum(store, "bench", "Bench")
        ids = [await seed_thread(store, "bench", 0) for _ in range(threads)]
    finally:
        await pool.close()
    await project_all(env)
    return ids


async def wait_ready(client: httpx.AsyncClient, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = await client.get("/ready")
        if r.status_code == 200:
            return
        await asyncio.sleep(0.2)
    raise RuntimeError(f"the service is not ready: {r.text}")


async def send_paced(count: int, rate: float,
                     send: Callable[[int, float, float], Coroutine[Any, Any, None]],
                     sent: Callable[[int], None] | None = None) -> list[asyncio.Task[None]]:
    """``send(i, start, due)`` for each i below ``count``, each started at its due time,
    ``rate`` a second: open loop, a slow answer never holds back the next write."""
    start = time.perf_counter()
    tasks = []
    for i in range(count):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(send(i, start, due)))
        if sent is not None:
            sent(i)
    return tasks


async def one_write(client: RawHttp, i: int, thread_id: int, start: float,
                    due: float, out: list[Write], errors: list[str]) -> None:
    body = msgspec.json.encode({"body": BODY, "guest_name": f"lag{i % 40}"})
    sent = time.perf_counter()
    status, content = await client.request("POST", f"/api/threads/{thread_id}/posts", body)
    returned = time.perf_counter()
    if status != 201:
        errors.append(f"POST {status}: {content[:200]!r}")
        return
    answer = msgspec.json.decode(content)
    headers = {"X-Min-Position": str(answer["position"])}
    url = f"/api/threads/{thread_id}?page={answer['number']}&per_page=1"
    retries = 0
    while True:
        status, content = await client.request("GET", url, headers=headers)
        if status == 200:
            visible = time.perf_counter()
            posts = msgspec.json.decode(content)["posts"]
            if not posts or posts[0]["id"] != answer["post_id"]:
                errors.append(f"page at position {answer['position']} lacks the post")
                return
            break
        if status != 503 or retries >= 10:
            errors.append(f"GET {status}: {content[:200]!r}")
            return
        retries += 1
    out.append(Write(sent=sent - start, slip=sent - due, write_ms=(returned - sent) * 1000,
                     lag_ms=(visible - returned) * 1000, retries=retries,
                     position=answer["position"], returned=returned))


class Trace:
    """Where the lag goes: every ~2 ms, the log's readable head (PostgreSQL, below the
    snapshot horizon, as the live catch-up reads) and the checkpoints a thread page read
    waits for (Redis). Per write: POST returned -> readable in the log -> projected ->
    visible through the API."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self.heads: list[int] = []
        self.checkpoints: list[int] = []

    async def run(self, env: Env, stop: asyncio.Event) -> None:
        from events.postgres import _HEAD
        from workers.checkpoints import positions
        from workers.readmodels import Keys

        redis = Redis.from_url(REDIS_URL)
        conn = await asyncpg.connect(env.database_url)
        try:
            while not stop.is_set():
                t = time.perf_counter()
                head = await conn.fetchval(_HEAD)
                values = await positions(redis, Keys(env.prefix),
                                         ["thread_page", "member_stats"])
                self.times.append(t)
                self.heads.append(int(head or 0))
                self.checkpoints.append(min(v or 0 for v in values.values()))
                await asyncio.sleep(0.002)
        finally:
            await conn.close()
            await redis.aclose()

    def first(self, series: list[int], position: int, after: float) -> float | None:
        """When ``series`` first reached ``position`` (both only grow), from ``after``."""
        i = bisect.bisect_left(series, position)
        if i >= len(series):
            return None
        return max(0.0, (self.times[i] - after) * 1000)

    def split(self, writes: list[Write]) -> tuple[list[float], list[float]]:
        readable, projected = [], []
        for w in writes:
            r = self.first(self.heads, w.position, w.returned)
            p = self.first(self.checkpoints, w.position, w.returned)
            if r is not None and p is not None:
                readable.append(r)
                projected.append(p)
        return readable, projected


_OLDEST_XID = """
SELECT datname, extract(epoch FROM now() - xact_start) * 1000, left(query, 50)
FROM pg_stat_activity WHERE backend_xid IS NOT NULL AND pid <> pg_backend_pid()
ORDER BY age(backend_xid) DESC LIMIT 1
"""


async def sample_limits(env: Env, client: RawHttp, probe: str, stop: asyncio.Event,
                        samples: dict[str, list[float]], holders: Counter[str]) -> None:
    """Physical limits under the same load: Redis PING, PostgreSQL SELECT 1, and an API
    read of an already visible page, one of each every 20 ms. Also who holds the log's
    read horizon back: the oldest transaction with an id in the whole (shared) cluster,
    when it has been running for more than 10 ms."""
    redis = Redis.from_url(REDIS_URL)
    conn = await asyncpg.connect(env.database_url)
    try:
        while not stop.is_set():
            t = time.perf_counter()
            await redis.ping()
            samples["redis"].append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            await conn.fetchval("SELECT 1")
            samples["pg"].append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            status, _ = await client.request("GET", probe)
            if status == 200:
                samples["api"].append((time.perf_counter() - t) * 1000)
            oldest = await conn.fetchrow(_OLDEST_XID)
            holders["samples"] += 1
            if oldest is not None and oldest[1] > 10:
                where = "this run's database" if oldest[0] == env.database else "other"
                holders[where] += 1
                if where == "other":
                    holders[f"  {oldest[0]}: {oldest[2]}"] += 1
            await asyncio.sleep(0.02)
    finally:
        await conn.close()
        await redis.aclose()


def stats(values: list[float]) -> list[str]:
    return [fmt(percentile(values, p), 1) for p in (50, 90, 99)] + [
        fmt(max(values) if values else None, 1)]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load")
    parser.add_argument("--rate", type=float, default=200.0, help="writes per second")
    parser.add_argument("--threads", type=int, default=50, help="threads written to")
    parser.add_argument("--warmup", type=float, default=3.0,
                        help="seconds at the same rate before measuring (not counted)")
    parser.add_argument("--api-workers", type=int, default=1)
    parser.add_argument("--worker-processes", type=int, default=1)
    parser.add_argument("--worker-threads", type=int, default=2)
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                        help="a Settings field for both processes (FORUM_<FIELD>), e.g. "
                             "--set idle_poll_ms=5; may be repeated")
    args = parser.parse_args()
    overrides = dict(item.split("=", 1) for item in args.set)
    started = time.monotonic()
    writes: list[Write] = []
    errors: list[str] = []
    samples: dict[str, list[float]] = {"redis": [], "pg": [], "api": []}
    holders: Counter[str] = Counter()
    total = int(args.rate * args.duration)

    async with bench_env() as env:
        ids = await seed(env, args.threads)
        # 200 guest replies/s from one address is what the abuse limits refuse: they are
        # off unless --set rate_limits=on asks for them.
        api, url = await env.start_api(workers=args.api_workers,
                                       **{"rate_limits": "off", **overrides})
        worker = env.start_worker(processes=args.worker_processes,
                                  threads=args.worker_threads, **overrides)
        client = RawHttp(url)
        async with httpx.AsyncClient(base_url=url, timeout=30) as admin:
            await wait_ready(admin)
            probe = f"/api/threads/{ids[0]}?page=1&per_page=1"
            stop = asyncio.Event()
            sampler = asyncio.create_task(sample_limits(env, client, probe, stop, samples,
                                                           holders))
            trace = Trace()
            tracer = asyncio.create_task(trace.run(env, stop))
            meter = CpuMeter(groups={"api": api.pid, "worker": worker.pid},
                             parents={"pg": await postmaster_pid()})
            meter.start()
            log(f"warm-up: {args.warmup:g} s at {args.rate:g}/s")
            warm: list[Write] = []
            warm_tasks = await send_paced(
                int(args.rate * args.warmup), args.rate,
                lambda i, start, due: one_write(client, i, ids[i % len(ids)], start, due,
                                                warm, errors))
            if warm_tasks:
                await asyncio.wait(warm_tasks, timeout=30)
            log(f"{total} writes at {args.rate:g}/s for {args.duration:g} s")

            def sent(i: int) -> None:
                if i and i % int(args.rate * WINDOW) == 0:
                    log(f"{i} writes sent, {len(writes)} seen, {len(errors)} errors")

            tasks = await send_paced(
                total, args.rate,
                lambda i, start, due: one_write(client, i, ids[i % len(ids)], start, due,
                                                writes, errors),
                sent)
            done, pending = await asyncio.wait(tasks, timeout=30)
            for task in pending:
                task.cancel()
            cpu = meter.stop()
            stop.set()
            await sampler
            await tracer
            if not worker.alive():
                errors.append("the worker died:\n" + worker.log_tail())
            await client.close()
        for task in done:
            if task.exception() is not None:
                errors.append(repr(task.exception()))

    lags = [w.lag_ms for w in writes]
    redis_p50, pg_p50 = percentile(samples["redis"], 50), percentile(samples["pg"], 50)
    floor = pg_p50 + 2 * redis_p50
    print(f"\nlag benchmark — {machine()}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
          f"{args.rate:g} writes/s for {args.duration:g} s on {args.threads} threads, "
          f"forum serve --workers {args.api_workers}, forum worker --processes "
          f"{args.worker_processes} --threads {args.worker_threads}"
          + "".join(f", {k}={v}" for k, v in overrides.items()))
    print(f"writes: {len(writes)} of {total} measured, {len(errors)} errors, achieved "
          f"{len(writes) / args.duration:.0f}/s; send slip p99 "
          f"{percentile([w.slip * 1000 for w in writes], 99):.1f} ms; "
          f"reads retried after 503: {sum(w.retries for w in writes)}")
    for error in errors[:5]:
        print(f"  error: {error}")
    rows = []
    windows = int(-(-args.duration // WINDOW))
    for n in range(windows):
        chunk = [w for w in writes if n * WINDOW <= w.sent < (n + 1) * WINDOW]
        rows.append([f"{n * WINDOW:.0f}-{min((n + 1) * WINDOW, args.duration):.0f} s",
                     len(chunk), *stats([w.lag_ms for w in chunk]),
                     fmt(percentile([w.write_ms for w in chunk], 50), 1),
                     fmt(percentile([w.write_ms for w in chunk], 99), 1)])
    window_stats = [[percentile([w.lag_ms for w in writes
                                 if n * WINDOW <= w.sent < (n + 1) * WINDOW], p)
                     for p in (50, 90, 99)] for n in range(windows)]
    rows.append(["median of windows", "",
                 *[fmt(median([ws[k] for ws in window_stats]), 1) for k in range(3)],
                 "", "", ""])
    rows.append(["overall", len(writes), *stats(lags),
                 fmt(percentile([w.write_ms for w in writes], 50), 1),
                 fmt(percentile([w.write_ms for w in writes], 99), 1)])
    readable, projected = trace.split(writes)
    rows.append(["  readable in log", len(readable), *stats(readable), "", ""])
    rows.append(["  projected", len(projected), *stats(projected), "", ""])
    print_table("commit -> visible through the API (ms), per 10-second window",
                ["window", "writes", "lag p50", "p90", "p99", "max", "POST p50", "POST p99"],
                rows, ["lag: from the POST's return to the GET (X-Min-Position) that shows "
                       "the post; target p99 < 50 ms",
                       "readable in log / projected: from the POST's return until a 2 ms "
                       "sampler saw the log's readable head (below the snapshot horizon) / "
                       "the thread page checkpoints reach the write's position"])
    limit_rows = [[name, len(samples[key]), *stats(samples[key])] for name, key in (
        ("Redis round trip (PING)", "redis"), ("PostgreSQL round trip (SELECT 1)", "pg"),
        ("API read of a visible page (GET)", "api"))]
    print_table("physical limits in the same run, sampled every 20 ms under the load (ms)",
                ["measure", "samples", "p50", "p90", "p99", "max"], limit_rows)
    total_samples = holders.pop("samples", 0)
    ours, other = holders.pop("this run's database", 0), holders.pop("other", 0)
    print(f"\nread horizon held back > 10 ms (oldest transaction id in the cluster) in "
          f"{ours + other} of {total_samples} samples: {ours} by this run's own appends, "
          f"{other} by other databases on the shared server")
    for holder, count in holders.most_common(3):
        print(f"  {count:4d} x {holder.strip()}")
    print_table("lag against the floor (PostgreSQL round trip + 2 Redis round trips, p50s)",
                ["floor ms", "lag p50 / floor", "lag p99 / floor"],
                [[fmt(floor, 2), fmt(percentile(lags, 50) / floor, 1),
                  fmt(percentile(lags, 99) / floor, 1)]],
                [f"CPU during the load, % of one core (2 cores = 200): api {cpu['api']:.0f}, "
                 f"worker {cpu['worker']:.0f}, PostgreSQL {cpu.get('pg', 0):.0f}, "
                 f"this load generator {cpu['bench']:.0f}"])
    print(f"\ntook {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    asyncio.run(main())
