"""A rebuild spread over processes: each one builds some of the projections from its own
read of the log.

Projections share no keys and each has its own namespace, checkpoint and swap, so the
builds are independent: a process does exactly what ``rebuild.fill`` does in one, for its
share. Shares are balanced by each projection's measured ``cost`` per event. Projection is
CPU-bound Python, so processes (not threads) are what use more than one core; they are
spawned, not forked, because a fork would copy the parent's event loop and connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import signal
import sys
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess

from redis.asyncio import Redis

from common.redis_client import connect
from events import EventStore
from events.postgres import PostgresEventStore, create_pool
from workers import rebuild
from workers.projections import PROJECTIONS
from workers.readmodels import Keys
from workers.settings import WorkerSettings

_POLL_SECONDS = 0.1


def split(builds: dict[str, str], jobs: int) -> list[dict[str, str]]:
    """``builds`` in at most ``jobs`` shares of about equal cost, the heaviest first."""
    shares: list[dict[str, str]] = [{} for _ in range(max(1, min(jobs, len(builds))))]
    loads = [0.0] * len(shares)
    for name in sorted(builds, key=lambda n: -PROJECTIONS[n].cost):
        lightest = loads.index(min(loads))
        shares[lightest][name] = builds[name]
        loads[lightest] += PROJECTIONS[name].cost
    shares.sort(key=lambda share: -sum(PROJECTIONS[n].cost for n in share))
    return [share for share in shares if share]


def _child(settings: WorkerSettings, builds: dict[str, str], progress: Connection) -> None:
    # Ctrl-C reaches the whole process group; the parent alone decides, and stops us.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        asyncio.run(_child_fill(settings, builds, progress))
    except BrokenPipeError:  # the parent is gone (killed): its build lock is lapsing
        sys.stderr.write(f"rebuild of {', '.join(builds)} stopped: forum replay is gone\n")
        sys.exit(1)


async def _child_fill(settings: WorkerSettings, builds: dict[str, str], progress: Connection
                      ) -> None:
    pool = await create_pool(settings.database_url, min_size=1, max_size=2)
    redis = connect(settings.redis_url, cluster=settings.redis_cluster, socket_timeout=60)
    try:
        await rebuild.fill(PostgresEventStore(pool), redis, Keys(settings.key_prefix),
                           builds, on_batch=progress.send)
    finally:
        await redis.aclose()
        await pool.close()


async def fill(
    settings: WorkerSettings, store: EventStore, redis: Redis, keys: Keys,
    builds: dict[str, str], *, jobs: int, on_batch: Callable[[int], None] | None = None,
) -> None:
    """``rebuild.fill`` over ``jobs`` processes: this one builds the heaviest share, new
    ones the others (none for one job or one projection). ``on_batch`` hears the progress
    of the share furthest behind (0 when another share moved). If anything fails or is
    cancelled, the other processes are stopped before this returns."""
    shares = split(builds, jobs)
    context = multiprocessing.get_context("spawn")
    children: list[tuple[BaseProcess, Connection]] = []
    done = [0] * len(shares)
    reported = 0

    def advance(share: int, count: int) -> None:
        # Called on every batch of every share, even when the slowest did not move: the
        # caller may stop the rebuild from there (forum replay does, on Ctrl-C).
        nonlocal reported
        done[share] += count
        if on_batch is not None:
            on_batch(min(done) - reported)
            reported = min(done)

    def drain() -> None:
        for index, (_, progress) in enumerate(children, start=1):
            with contextlib.suppress(EOFError, OSError):  # closed when the child ends
                while progress.poll():
                    advance(index, progress.recv())

    async def watch() -> None:
        while True:
            exited = [process.exitcode for process, _ in children]
            drain()  # after reading the exit codes: a child's last words come before it
            for share, code in zip(shares[1:], exited, strict=True):
                if code not in (None, 0):
                    raise RuntimeError(f"a rebuild process for {', '.join(share)} failed "
                                       f"(exit code {code})")
            if all(code == 0 for code in exited):
                return
            await asyncio.sleep(_POLL_SECONDS)

    try:
        for share in shares[1:]:
            receiving, sending = context.Pipe(duplex=False)
            child = context.Process(target=_child, args=(settings, share, sending),
                                    daemon=True)
            child.start()
            sending.close()
            children.append((child, receiving))
        own = asyncio.ensure_future(rebuild.fill(
            store, redis, keys, shares[0], on_batch=lambda count: advance(0, count)))
        watching = asyncio.ensure_future(watch())
        try:
            # FIRST_COMPLETED, not FIRST_EXCEPTION: a share stopped by Ctrl-C (progress
            # raises CancelledError in it) is cancelled, which FIRST_EXCEPTION does not
            # count, so the wait went on until the other processes had built and swapped.
            pending = {own, watching}
            while pending:
                finished, pending = await asyncio.wait(pending,
                                                       return_when=asyncio.FIRST_COMPLETED)
                for future in finished:
                    future.result()  # the first failure or cancellation, here and now
        finally:
            for future in (own, watching):
                future.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await future
    finally:
        for process, progress in children:
            if process.exitcode is None:
                process.terminate()
            await asyncio.to_thread(process.join)
            progress.close()
