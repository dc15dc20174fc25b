"""Append throughput: the event store and the reply endpoint, beside raw asyncpg INSERTs.

    .venv/bin/python bench/append.py [--rounds 5] [--seconds 3] [--writers 1,16,64]
                                     [--http-workers 1,2] [--skip-http]

Part 1 — ``PostgresEventStore.append`` of one ``post_added`` event per call, in this process:
  * own:  each writer appends to a stream of its own, tracking its expected version;
  * few:  writers share 4 streams; a writer that loses a race takes the stream's current
          version from the ConcurrencyError and retries (one event per append).
  Beside: raw asyncpg single-statement autocommit INSERTs of the same JSON into
  ``raw(id bigserial primary key, stream text, data jsonb)``, same writers, same pool (one
  pool of min(writers, 20) connections made by the service's ``create_pool``).

Part 2 — replies/s through HTTP: ``POST /api/threads/{id}/posts`` as guests from 16
concurrent httpx clients against a real ``forum serve --workers N`` (each client on its own
fresh thread, and 16 clients on 4 shared threads), beside the raw INSERT rate at 16
writers measured right before, in the same run.

Every figure is the median of ``--rounds`` rounds; in each round the configurations run
one after another (order alternating), so noise on this shared 2-core machine hits both
sides of each ratio alike. Target: the store at 16 writers >= 0.7 of raw.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import asyncpg
import httpx
from measure import (
    CpuMeter,
    fmt,
    machine,
    median,
    paired_ratio,
    print_table,
)
from world import (
    Env,
    bench_env,
    log,
    postmaster_pid,
    seed_forum,
)

from events.codec import encode
from events.errors import ConcurrencyError
from events.postgres import PostgresEventStore, create_pool
from events.threads import PostAdded

POOL_CAP = 20  # the service's default FORUM_DB_POOL_SIZE
FEW_STREAMS = 4
WARMUP = 0.5
BODY = ("A reply of ordinary length, with [b]a little markup[/b] and a [url=https://example.org]"
        "link[/url]; a couple of sentences so the row is the size of a real post. ") * 2


def post(stream_no: int, number: int) -> PostAdded:
    return PostAdded(
        occurred_at=datetime.now(UTC), actor="bench", thread_id=stream_no, forum="bench",
        post_id=number, number=number, author="bench", guest=True, op=False,
        first_reply=number == 2, body=BODY,
    )


RAW_JSON = encode(post(1, 1)).decode()


class Window:
    """Counts completions inside [start + warm-up, start + warm-up + seconds)."""

    def __init__(self, seconds: float) -> None:
        now = time.perf_counter()
        self.begin = now + WARMUP
        self.end = self.begin + seconds
        self.done = 0
        self.retries = 0
        self.errors = 0

    def running(self) -> bool:
        return time.perf_counter() < self.end

    def count(self, retry: bool = False) -> None:
        if self.begin <= time.perf_counter() < self.end:
            if retry:
                self.retries += 1
            else:
                self.done += 1

    @property
    def seconds(self) -> float:
        return self.end - self.begin


async def timed(writers: int, seconds: float,
                one: Callable[[int, Window], Awaitable[None]]) -> Window:
    window = Window(seconds)
    await asyncio.gather(*(one(i, window) for i in range(writers)))
    return window


# -- part 1 -------------------------------------------------------------------------------

async def run_raw(pool: asyncpg.Pool, writers: int, seconds: float) -> Window:
    async def one(i: int, w: Window) -> None:
        stream = f"raw-{i}"
        while w.running():
            await pool.execute("INSERT INTO raw (stream, data) VALUES ($1, $2::jsonb)",
                               stream, RAW_JSON)
            w.count()

    return await timed(writers, seconds, one)


async def run_store(store: PostgresEventStore, writers: int, seconds: float, tag: str,
                    shared: int | None) -> Window:
    """``shared``: None for a stream per writer, else that many streams shared by all."""
    versions: dict[str, int] = {}

    async def one(i: int, w: Window) -> None:
        stream_no = i if shared is None else i % shared
        stream = f"bench-{tag}-{stream_no}"
        versions.setdefault(stream, 0)
        while w.running():
            expected = versions[stream]
            try:
                await store.append(stream, expected, [post(stream_no, expected + 1)])
            except ConcurrencyError as error:
                versions[stream] = max(versions[stream], error.actual or expected)
                w.count(retry=True)
                continue
            versions[stream] = max(versions[stream], expected + 1)
            w.count()

    return await timed(writers, seconds, one)


async def part_store(env: Env, args: argparse.Namespace) -> list[list[object]]:
    results: dict[tuple[int, str], list[float]] = {}
    retries: dict[int, list[float]] = {}
    cpu: dict[tuple[int, str], list[dict[str, float]]] = {}
    postmaster = await postmaster_pid()
    pools = {}
    for writers in args.writers:
        size = min(writers, POOL_CAP)
        pools[writers] = await create_pool(env.database_url, min_size=size, max_size=size)
    try:
        for rnd in range(args.rounds):
            for writers in args.writers:
                pool = pools[writers]
                store = PostgresEventStore(pool)
                order = ["raw", "own", "few"]
                if rnd % 2:
                    order.reverse()
                for kind in order:
                    tag = f"r{rnd}w{writers}"
                    meter = CpuMeter(parents={"pg": postmaster})
                    meter.start()
                    if kind == "raw":
                        w = await run_raw(pool, writers, args.seconds)
                    elif kind == "own":
                        w = await run_store(store, writers, args.seconds, tag, None)
                    else:
                        w = await run_store(store, writers, args.seconds, tag + "f",
                                            min(FEW_STREAMS, writers))
                        retries.setdefault(writers, []).append(w.retries / w.seconds)
                    results.setdefault((writers, kind), []).append(w.done / w.seconds)
                    cpu.setdefault((writers, kind), []).append(meter.stop())
                log(f"round {rnd + 1}/{args.rounds} writers {writers}: " + ", ".join(
                    f"{k} {results[(writers, k)][-1]:,.0f}/s" for k in ("raw", "own", "few")))
    finally:
        for pool in pools.values():
            await pool.close()
    rows = []
    for writers in args.writers:
        raw_r, own_r, few_r = (results[(writers, k)] for k in ("raw", "own", "few"))
        raw, own, few = median(raw_r), median(own_r), median(few_r)

        def use(kind: str, writers: int = writers) -> str:
            runs = cpu[(writers, kind)]
            return (f"{median([c['bench'] for c in runs]):.0f}/"
                    f"{median([c.get('pg', math.nan) for c in runs]):.0f}")

        rows.append([writers, min(writers, POOL_CAP), fmt(raw), fmt(own),
                     fmt(paired_ratio(own_r, raw_r), 2), fmt(few),
                     fmt(paired_ratio(few_r, raw_r), 2), fmt(median(retries[writers])),
                     use("raw"), use("own")])
    return rows


# -- part 2 -------------------------------------------------------------------------------

async def start_threads(client: httpx.AsyncClient, count: int) -> list[int]:
    ids = []
    for i in range(count):
        r = await client.post("/api/forums/bench/threads", json={
            "title": f"Reply bench {i}", "body": BODY, "guest_name": f"starter{i}"})
        r.raise_for_status()
        ids.append(r.json()["thread_id"])
    return ids


async def run_http(url: str, thread_ids: list[int], clients: int, seconds: float) -> Window:
    async def one(i: int, w: Window) -> None:
        thread_id = thread_ids[i % len(thread_ids)]
        body = {"body": BODY, "guest_name": f"guest{i}"}
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            while w.running():
                r = await client.post(f"/api/threads/{thread_id}/posts", json=body)
                if r.status_code == 201:
                    w.count()
                elif r.status_code == 409:
                    w.count(retry=True)
                else:
                    w.errors += 1
                    raise RuntimeError(f"reply failed: {r.status_code} {r.text[:300]}")

    return await timed(clients, seconds, one)


async def part_http(env: Env, args: argparse.Namespace) -> list[list[object]]:
    clients = args.http_clients
    size = min(clients, POOL_CAP)
    pool = await create_pool(env.database_url, min_size=size, max_size=size)
    rows = []
    try:
        for api_workers in args.http_workers:
            # 16 guests replying as fast as they can from one address is exactly what the
            # abuse limits refuse: this measures the write path, so they are off.
            proc, url = await env.start_api(workers=api_workers, rate_limits="off")
            raw_r, own_r, few_r, conflicts, cpu_api, cpu_bench = [], [], [], [], [], []
            try:
                async with httpx.AsyncClient(base_url=url, timeout=30) as admin:
                    for rnd in range(args.rounds):
                        own_ids = await start_threads(admin, clients)
                        few_ids = await start_threads(admin, FEW_STREAMS)
                        order = ["raw", "own", "few"]
                        if rnd % 2:
                            order.reverse()
                        for kind in order:
                            if kind == "raw":
                                w = await run_raw(pool, clients, args.seconds)
                                raw_r.append(w.done / w.seconds)
                                continue
                            meter = CpuMeter({"api": proc.pid})
                            meter.start()
                            w = await run_http(url, own_ids if kind == "own" else few_ids,
                                               clients, args.seconds)
                            cpu = meter.stop()
                            if kind == "own":
                                own_r.append(w.done / w.seconds)
                                cpu_api.append(cpu["api"])
                                cpu_bench.append(cpu["bench"])
                            else:
                                few_r.append(w.done / w.seconds)
                                conflicts.append(w.retries / w.seconds)
                        log(f"http --workers {api_workers} round {rnd + 1}: raw "
                            f"{raw_r[-1]:,.0f}/s, own {own_r[-1]:,.0f}/s, "
                            f"few {few_r[-1]:,.0f}/s")
            finally:
                env.stop(proc)
            rows.append([api_workers, clients, fmt(median(raw_r)), fmt(median(own_r)),
                         fmt(paired_ratio(own_r, raw_r), 2), fmt(median(few_r)),
                         fmt(paired_ratio(few_r, raw_r), 2), fmt(median(conflicts)),
                         fmt(median(cpu_api)), fmt(median(cpu_bench))])
    finally:
        await pool.close()
    return rows


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--writers", type=lambda s: [int(x) for x in s.split(",")],
                        default=[1, 16, 64])
    parser.add_argument("--http-workers", type=lambda s: [int(x) for x in s.split(",")],
                        default=[1, 2])
    parser.add_argument("--http-clients", type=int, default=16)
    parser.add_argument("--skip-http", action="store_true")
    parser.add_argument("--skip-store", action="store_true")
    args = parser.parse_args()

    started = time.monotonic()
    async with bench_env() as env:
        store_rows = http_rows = None
        conn = await asyncpg.connect(env.database_url)
        await conn.execute(
            "CREATE TABLE raw (id bigserial PRIMARY KEY, stream text, data jsonb)")
        await conn.close()
        if not args.skip_store:
            store_rows = await part_store(env, args)
        if not args.skip_http:
            pool = await create_pool(env.database_url, min_size=1, max_size=2)
            await seed_forum(PostgresEventStore(pool), "bench", "Bench")
            await pool.close()
            http_rows = await part_http(env, args)

    print(f"\nappend benchmark — {machine()}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
          f"median of {args.rounds} rounds x {args.seconds:g} s")
    if store_rows:
        print_table(
            "PostgresEventStore.append (1 event per append) vs raw asyncpg INSERT, events/s",
            ["writers", "pool", "raw INSERT", "store own", "own/raw", "store 4 streams",
             "4str/raw", "conflicts/s", "CPU% raw", "CPU% own"],
            store_rows,
            ["own: a stream per writer; 4 streams: writers share 4 streams and retry on "
             "ConcurrencyError",
             "rates: medians of the rounds; ratios: medians of the per-round ratios (both "
             "sides of a round ran back to back)",
             "CPU%: bench process / PostgreSQL (all backends of the shared server), "
             "percent of one core; 2 cores = 200", "target: store own/raw >= 0.70 at 16 writers"],
        )
    if http_rows:
        print_table(
            "POST /api/threads/{id}/posts through forum serve vs raw INSERT (16 writers), /s",
            ["api workers", "clients", "raw INSERT", "replies own", "own/raw",
             "replies 4 thr", "4thr/raw", "409s/s", "api CPU %", "client CPU %"],
            http_rows,
            ["own: each client on a fresh thread of its own; 4 thr: 16 clients on 4 threads",
             "rates: medians of the rounds; ratios: medians of the per-round ratios",
             "CPU %: percent of one core over the 'own' runs (the machine has 2 cores)"],
        )
    print(f"\ntook {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    asyncio.run(main())
