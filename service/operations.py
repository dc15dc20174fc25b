"""What ``forum status`` and ``forum replay`` do."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from typing import Any

import asyncpg
import msgspec
from redis.asyncio import Redis

from common.redis_client import connect, mget
from events.offset import LOG_AHEAD
from events.postgres import PostgresEventStore, create_pool
from service import readiness
from service.progress import Reporter, reporter
from service.settings import Settings
from workers import apply, rebuild, rebuild_jobs
from workers.checkpoints import partitions as checkpoints_by_partition
from workers.locks import Lease
from workers.partitions import owners
from workers.projections import PROJECTIONS
from workers.readmodels import Keys
from workers.search import NAME as SEARCH
from workers.search import follow as search_follow
from workers.search import sink as search_sink

# Below this many events a replay runs in one process whatever the number of cores.
PARALLEL_FROM_EVENTS = 50_000


def default_jobs(events: int, cores: int | None = None) -> int:
    """Processes for a replay of ``events``: a core each, but one core is left to
    PostgreSQL and Redis, which every process loads (each reads the whole log). On two
    cores that is one process: two were slower (bench/results/2026-11-25-replay.md).
    Spawning costs about a second, so a small log gets one."""
    if events < PARALLEL_FROM_EVENTS:
        return 1
    return max(1, (cores or os.cpu_count() or 1) - 1)


async def gather_status(settings: Settings) -> dict[str, Any]:
    """Each read model's position and lag (the search model's among them), the log's head,
    and the read horizon: how long committed events have waited behind it, how many, and
    who holds it (a session of any database on the cluster, or a prepared transaction:
    this is the operator's tool)."""
    pool = await create_pool(settings.database_url, min_size=1, max_size=2)
    redis = connect(settings.redis_url, cluster=settings.redis_cluster)
    try:
        store = PostgresEventStore(pool)
        keys = Keys(settings.key_prefix)
        names = list(PROJECTIONS)
        by_partition = await checkpoints_by_partition(redis, keys, names)
        checkpoints: dict[str, int | None] = {
            name: None if None in at else min(at)  # type: ignore[type-var]
            for name, at in by_partition.items()}
        searching, search_build = await search_sink.models(pool)
        checkpoints[SEARCH] = searching.checkpoint if searching else None
        present = readiness.checkpoints(checkpoints)
        lag = await store.lag(list(present.values()))
        lags = readiness.projection_lags(present, lag)
        head = lag.head
        builds = await rebuild.building(redis, keys, names)
        out: dict[str, Any] = {
            "head": head,
            "lag_seconds": round(max(lags.values(), default=lag.held_seconds), 3),
            "horizon": {"held_seconds": round(lag.held_seconds, 3),
                        "waiting_events": await store.unreadable(),
                        "held_by": await store.horizon_held_by()},
            "log_ahead": await store.ahead_of_cluster(),
            "projections": {},
        }
        for name in [*names, SEARCH]:
            position = checkpoints[name]
            lag_events = None
            if position is not None:
                lag_events = await _events_between(pool, position, head)
            build_position = None
            if name == SEARCH:
                build_position = search_build.checkpoint if search_build else None
            elif name in builds:
                raw = await mget(redis, keys.namespace(name, builds[name]).checkpoints)
                build_position = min(int(v or 0) for v in raw)
            out["projections"][name] = {
                "position": position, "lag_events": lag_events,
                "lag_seconds": round(lags.get(name, 0.0), 3),
                "rebuilding": build_position is not None,
                "rebuild_position": build_position,
                "version": search_sink.VERSION if name == SEARCH else PROJECTIONS[name].version,
            }
        out["partitions"] = await _partitions(pool, store, redis, keys, by_partition,
                                              lag.held_seconds)
        return out
    finally:
        await redis.aclose()
        await pool.close()


def describe_holder(holder: dict[str, Any]) -> str:
    """Who holds the log's read horizon, in words: pid, database, application, state, for
    how long (what this role may see of it)."""
    seconds = holder.get("seconds")
    who = (f"pid {holder['pid']}" if holder.get("kind") == "session"
           else f"a prepared transaction ({holder.get('application_name')!r})")
    parts = [f"database {holder.get('datname')}", f"user {holder.get('usename')}"]
    if holder.get("kind") == "session":
        parts.append(f"application {holder.get('application_name') or '-'!r}")
        parts.append(f"state {holder.get('state') or 'not visible to this role'}")
    running = (f"running {seconds:.1f} s" if seconds is not None
               else "running for a time this role may not see (grant it pg_read_all_stats)")
    return f"{who} ({', '.join(parts)}), {running}"


async def _events_between(pool: asyncpg.Pool, after: int, upto: int) -> int:
    return int(await pool.fetchval(
        "SELECT count(*) FROM events WHERE position > $1 AND position <= $2", after, upto))


async def _partitions(pool: asyncpg.Pool, store: PostgresEventStore, redis: Redis, keys: Keys,
                      by_partition: dict[str, list[int | None]], held_seconds: float
                      ) -> list[dict[str, Any]]:
    """Each partition of the live read models: how far its least advanced projection is,
    how far behind the log, and which projector is working on it now (None: none is)."""
    at = [None if None in column else min(column)
          for column in zip(*by_partition.values(), strict=True)]
    held = await owners(redis, keys)
    present = [p for p in at if p is not None]
    lag = await store.lag(present)
    seconds = iter(lag.behind_seconds)
    out = []
    for partition, (position, owner) in enumerate(zip(at, held, strict=True)):
        out.append({
            "partition": partition, "position": position,
            "lag_events": None if position is None else await _events_between(
                pool, position, lag.head),
            "lag_seconds": None if position is None else round(
                max(next(seconds), held_seconds), 3),
            "owner": owner,
        })
    return out


async def print_status(settings: Settings, *, as_json: bool) -> None:
    status = await gather_status(settings)
    if as_json:
        sys.stdout.write(msgspec.json.encode(status).decode() + "\n")
        return
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console()
    table = Table(title=f"log head: {status['head']}")
    for column in ("projection", "position", "lag (events)", "lag (s)", "rebuilding"):
        table.add_column(column)
    for name, row in status["projections"].items():
        table.add_row(
            name, str(row["position"] if row["position"] is not None else "missing"),
            str(row["lag_events"] if row["lag_events"] is not None else "-"),
            f"{row['lag_seconds']:.3f}",
            f"yes ({row['rebuild_position']})" if row["rebuilding"] else "no",
        )
    console.print(table)
    partitions = Table(title="partitions of the live read models")
    for column in ("partition", "position", "lag (events)", "lag (s)", "owner"):
        partitions.add_column(column)
    for row in status["partitions"]:
        partitions.add_row(
            str(row["partition"]),
            str(row["position"] if row["position"] is not None else "missing"),
            str(row["lag_events"] if row["lag_events"] is not None else "-"),
            f"{row['lag_seconds']:.3f}" if row["lag_seconds"] is not None else "-",
            escape(row["owner"] or "idle"))
    console.print(partitions)
    if status["log_ahead"]:
        Console(stderr=True).print(f"[bold red]{LOG_AHEAD}[/bold red]")
    horizon = status["horizon"]
    holder = horizon["held_by"]
    held = horizon["held_seconds"]
    if held > 0 or (holder and (holder.get("seconds") or 0) >= 1):
        waiting = horizon["waiting_events"]
        who = escape(describe_holder(holder)) if holder else "a transaction that has ended"
        behind = (f"{waiting} committed event(s) wait behind it, the oldest for {held:.1f} s; "
                  "readers see them when it ends" if waiting else
                  "no committed event waits behind it yet; those committed from now on "
                  "will, until it ends")
        console.print(f"[yellow]the log's read horizon is held by {who}: {behind}[/yellow]")
    else:
        console.print("the log's read horizon is not held: every committed event is readable")


READ_MODELS = [*PROJECTIONS, SEARCH]
"""What ``forum replay`` rebuilds: the projections into Redis, and the search model."""


async def replay(settings: Settings, names: list[str], jobs: int | None = None) -> None:
    """``jobs``: processes to build in (None: one per core, or one for a small log)."""
    unknown = [n for n in names if n not in READ_MODELS]
    if unknown:
        raise SystemExit(f"unknown projection(s): {', '.join(unknown)}; "
                         f"known: {', '.join(READ_MODELS)}")
    names = names or list(READ_MODELS)
    interrupted = _on_ctrl_c()
    pool = await create_pool(settings.database_url, min_size=1, max_size=4)
    store = PostgresEventStore(pool)
    try:
        head = await store.head()
        total = int(await pool.fetchval("SELECT count(*) FROM events WHERE position <= $1",
                                        head))
        redis_names = [n for n in names if n in PROJECTIONS]
        if redis_names:
            await _replay_redis(settings, store, redis_names, jobs, total, interrupted)
        if SEARCH in names:
            await _replay_search(store, pool, total, interrupted)
    except asyncio.CancelledError:
        if not interrupted.is_set():
            raise
        raise SystemExit("replay interrupted: read models not switched yet keep serving as "
                         "they were; the half-built ones are dropped") from None
    finally:
        await pool.close()


async def _replay_redis(settings: Settings, store: PostgresEventStore, names: list[str],
                        jobs: int | None, total: int, interrupted: asyncio.Event) -> None:
    redis = connect(settings.redis_url, cluster=settings.redis_cluster, socket_timeout=60)
    keys = Keys(settings.key_prefix)
    lease = Lease(redis, keys.lock("build"), ttl_ms=30_000)
    builds: dict[str, str] = {}
    try:
        deadline = time.monotonic() + 60
        while not await lease.acquire():
            if time.monotonic() > deadline:
                raise SystemExit("another rebuild holds the build lock; try again later")
            await asyncio.sleep(0.5)
        head = await store.head()
        reporter = _reporter(total, names)
        progress = _Counter(reporter, interrupted)
        for name in names:
            builds[name] = await rebuild.start(redis, keys, name, fresh=True, born=head)
        if jobs is None:
            jobs = default_jobs(total)
        if (apply.__file__ or "").endswith(".py"):  # a third slower: say what to do
            sys.stderr.write("projection code runs as plain Python, about a third slower "
                             "(install a wheel built with HATCH_BUILD_HOOK_ENABLE_CUSTOM=1: "
                             "deploy/README.md)\n")
        async with lease.renewed():
            await rebuild_jobs.fill(settings, store, redis, keys, builds, jobs=jobs,
                                    on_batch=progress)
        reporter(progress.done, final=True)
        builds = {}
        sys.stderr.write(f"replayed {progress.done} events into {', '.join(names)}; "
                         "readers switched\n")
    finally:
        # Interrupted: the live read models were never touched; drop the half-built ones.
        for name, ns in builds.items():
            if await redis.get(keys.building(name)) == ns.encode():
                await redis.delete(keys.building(name))
                await rebuild.drop_namespace(redis, keys, name, ns)
        await lease.release()
        await redis.aclose()


async def _replay_search(store: PostgresEventStore, pool: asyncpg.Pool, total: int,
                         interrupted: asyncio.Event) -> None:
    """A new generation of the search model, built beside the live one and swapped in
    (workers/search/follow.py); interrupted, the unfinished one is dropped."""
    reporter = _reporter(total, [SEARCH])
    progress = _Counter(reporter, interrupted)
    try:
        live = await search_follow.replay(store, pool, on_batch=progress)
    except search_follow.BuildBusyError:
        raise SystemExit("another process holds the search model's build lock; "
                         "try again later") from None
    reporter(progress.done, final=True)
    sys.stderr.write(f"replayed {progress.done} events into search (generation "
                     f"{live.generation}); readers switched\n")


class _Counter:
    """An ``on_batch`` that reports events done, and raises the replay's interruption
    again if its cancellation was lost on the way."""

    def __init__(self, reporter: Reporter, interrupted: asyncio.Event) -> None:
        self.reporter, self.interrupted, self.done = reporter, interrupted, 0

    def __call__(self, count: int) -> None:
        if self.interrupted.is_set():
            raise asyncio.CancelledError
        self.done += count
        self.reporter(self.done)


def _on_ctrl_c() -> asyncio.Event:
    """SIGINT cancels the replay, and stays noted: Python 3.11's ``asyncio.wait_for`` (which
    redis-py uses for socket timeouts) can swallow a cancellation that races with the
    result, so the next batch raises it again instead of building on and swapping."""
    interrupted = asyncio.Event()
    task = asyncio.current_task()

    def interrupt() -> None:
        interrupted.set()
        if task is not None:
            task.cancel()

    with contextlib.suppress(NotImplementedError, RuntimeError):
        asyncio.get_running_loop().add_signal_handler(signal.SIGINT, interrupt)
    return interrupted


def _reporter(total: int, names: list[str]) -> Reporter:
    return reporter(total, verb="replaying", label=f"replay {','.join(names)}")
