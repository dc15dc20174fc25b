"""Several projectors share the live read models' partitions, and a dead one's are taken
over (workers/partitions.py), with the real API and three real ``forum worker`` processes:

- while replies are written and a backlog is appended straight to the log, the partitions'
  leases are held by at least two of the workers (they share the work), none holding
  more than its fair share at once (all its passes together);
- one worker is SIGKILLed while it holds partitions: within its leases' time and a margin,
  the two others have brought every partition up to a position written after the kill, and
  the dead one's name holds none of them;
- in the end the read models equal a rebuild of the log, and ``forum status --json`` shows
  the 16 partitions at the head.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from service.settings import Settings
from tests.background import ReplyWriter, open_thread
from tests.conftest import FORUM, ROOT, Stack
from tests.invariants.test_exactly_once import (
    append_backlog,
    forum_status,
    wait_until_projected,
)
from tests.readmodel_dump import assert_equals_rebuild, last_written, settle
from workers.checkpoints import partitions
from workers.live import LIVE_LEASE_MS
from workers.partitions import ALIVE_MS, owners, share
from workers.readmodels import PROJECTION_NAMES, Keys
from workers.readmodels.keys import PARTITIONS

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

WORKERS = 3
# A dead holder's leases expire after LIVE_LEASE_MS; the survivors then need a pass or
# two (and count the dead one among the alive, so claim a smaller share, for up to
# workers/partitions.py ALIVE_MS).
TAKEOVER_SECONDS = LIVE_LEASE_MS / 1000 + 4
# How long after all workers are counted alive each has read that count (a tick, or a
# renewal during a pass, reads it every half second or so).
FAIR_AFTER = 1.5


class Workers:
    """Three ``forum worker --processes 1 --threads 2``, each in its own session (its
    process group's id is the Dramatiq main process's pid, which the Popen holds; the
    projector runs in its child, whose pid is in the partitions' owners)."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self) -> None:
        for i in range(WORKERS):
            log = open(self.stack.tmp / f"worker{i}.log", "ab")  # noqa: SIM115
            self.procs.append(subprocess.Popen(
                [*FORUM, "worker", "--processes", "1", "--threads", "2"],
                env=self.stack.env(), cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True))

    def of(self, owner: str) -> subprocess.Popen[bytes] | None:
        """The worker whose process group the owner ``host:pid`` is in (None: not ours,
        or gone)."""
        try:
            group = os.getpgid(int(owner.rpartition(":")[2]))
        except (ProcessLookupError, ValueError):
            return None
        return next((p for p in self.procs if p.pid == group), None)

    def logs(self) -> str:
        return "\n".join(f"--- worker{i}.log\n" + path.read_text()[-2000:]
                         for i in range(WORKERS)
                         if (path := self.stack.tmp / f"worker{i}.log").exists())

    def stop(self) -> None:
        """SIGTERM to every main process at once (each forwards it to its child), then
        SIGKILL to the process groups of those still running, and of any child left."""
        running = [p for p in self.procs if p.poll() is None]
        for proc in running:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for proc in self.procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


@pytest.fixture
def running(stack_settings: Settings, tmp_path: Path) -> Iterator[tuple[Stack, Workers]]:
    stack = Stack(stack_settings, tmp_path)
    workers = Workers(stack)
    try:
        stack.start_api()
        workers.start()
        yield stack, workers
    finally:
        workers.stop()
        stack.stop()


class Sampler:
    """Reads the partitions' owners every few milliseconds, with when. (Stopped by a flag:
    a cancellation that lands inside a redis-py command can be swallowed, and the loop
    would sample on forever.)"""

    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys
        self.samples: list[tuple[float, list[str | None]]] = []
        self.alive: list[tuple[float, int]] = []  # how many projectors counted as alive
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while not self._stopping:
            self.samples.append((time.monotonic(), await owners(self.redis, self.keys)))
            now = time.time() * 1000
            self.alive.append((time.monotonic(), await self.redis.zcount(
                self.keys.workers(), now - ALIVE_MS, "+inf")))
            await asyncio.sleep(0.005)

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        assert self._task is not None
        self._stopping = True
        await asyncio.wait_for(self._task, timeout=10)

    def most(self, since: float = 0.0, until: float = float("inf")) -> dict[str, int]:
        """The most partitions each name held at once (between ``since`` and ``until``)."""
        out: dict[str, int] = {}
        for _, held in ((at, h) for at, h in self.samples if since <= at < until):
            for name in set(held) - {None}:
                assert name is not None
                out[name] = max(out.get(name, 0), held.count(name))
        return out

    def steady_since(self, count: int) -> float | None:
        """Since when every sample has counted ``count`` projectors alive (None: the last
        did not)."""
        since = None
        for at, alive in self.alive:
            if alive != count:
                since = None
            elif since is None:
                since = at
        return since

    def names(self, since: float = 0.0) -> set[str]:
        return {o for at, held in self.samples if at >= since for o in held if o is not None}


async def lowest_by_partition(redis: Redis, keys: Keys) -> list[int | None]:
    """Each partition's least advanced live read model's checkpoint."""
    columns = zip(*(await partitions(redis, keys, list(PROJECTION_NAMES))).values(),
                  strict=True)
    return [None if None in column else min(column)  # type: ignore[type-var]
            for column in columns]


async def test_workers_share_partitions_and_take_over_a_dead_ones(running, store, redis, keys):
    stack, workers = running
    started = time.monotonic()
    tid, _ = open_thread(stack.url, "parts", "first", "g1")
    await wait_until_projected(stack, store)
    ready = time.monotonic()

    sampler = Sampler(redis, keys)
    sampler.start()
    writer = ReplyWriter(stack.url, tid, guests=("w1", "w2", "w3", "w4"), pause=0.01)
    try:
        with writer.running():
            backlog = await append_backlog(store, "parts", threads=60, posts=10)
            # Wait for a worker of ours holding partitions now, once two have been seen;
            # freeze it (SIGSTOP), and kill it if it still holds them (it had not let them
            # go between the look and the signal), else let it go on and look again.
            deadline = time.monotonic() + 20
            victim, proc, left, fair_from = None, None, [], 0.0
            while not left:
                assert time.monotonic() < deadline, (sampler.names(), workers.logs())
                await asyncio.sleep(0.005)
                # All three have counted each other for a while (each projector reads the
                # count on its ticks and passes): from then on, shares are fair.
                steady = sampler.steady_since(WORKERS)
                if len(sampler.names()) < 2 or steady is None or (
                        time.monotonic() - steady < FAIR_AFTER):
                    continue
                fair_from = steady + FAIR_AFTER
                holding = [o for o in await owners(redis, keys)
                           if o is not None and workers.of(o)]
                if not holding:
                    continue
                victim = max(set(holding), key=holding.count)
                proc = workers.of(victim)
                assert proc is not None and proc.poll() is None
                os.killpg(proc.pid, signal.SIGSTOP)
                left = [p for p, o in enumerate(await owners(redis, keys)) if o == victim]
                if not left:
                    os.killpg(proc.pid, signal.SIGCONT)
            assert proc is not None
            os.killpg(proc.pid, signal.SIGKILL)
            killed = time.monotonic()
            proc.wait(timeout=10)
            sharing = sampler.names()
            assert len(sharing) >= 2, sharing
            assert all(workers.of(name) for name in sharing if name != victim), sharing

            # Every partition reaches a position written after the kill, with the dead
            # one's leases expired and taken over.
            target = await last_written(store)
            while True:
                lowest = await lowest_by_partition(redis, keys)
                held = await owners(redis, keys)
                if all(p is not None and p >= target for p in lowest) and victim not in held:
                    break
                assert time.monotonic() - killed < TAKEOVER_SECONDS, (
                    f"not taken over: checkpoints {lowest}, target {target}, owners {held}, "
                    f"victim {victim}\n{workers.logs()}")
                await asyncio.sleep(0.02)
            caught_up = time.monotonic()
            await asyncio.sleep(1.0)  # the survivors carry on with the writes
    finally:
        await sampler.stop()

    # Shared: with three alive, each claims up to 6 (up to 8 with one not counted, when
    # its tick has not said it is alive for a while). Before all three counted each other
    # (the first to start works alone), a projector may hold them all.
    before = sampler.most(since=fair_from, until=killed)
    assert max(before.values()) <= share(WORKERS - 1), before
    assert victim not in sampler.names(killed + LIVE_LEASE_MS / 1000 + 0.1)
    assert sampler.names(killed) - {victim}, "no survivor held a partition after the kill"
    assert not writer.errors, writer.errors[:5]
    assert len(writer.positions) > 20, writer.positions

    await wait_until_projected(stack, store)
    await settle(store, redis, keys)  # changes nothing: the workers are done already
    await assert_equals_rebuild(store, redis, keys)

    status = await asyncio.to_thread(forum_status, stack)
    rows = status["partitions"]
    assert [r["partition"] for r in rows] == list(range(PARTITIONS)), rows
    for row in rows:
        assert row["position"] == status["head"], status
        assert row["lag_events"] == 0, status
        assert "owner" in row, row

    lingered = max((at for at, held in sampler.samples if victim in held), default=killed)
    alive_before = sorted({n for at, n in sampler.alive if at < killed})
    alive_after = sorted({n for at, n in sampler.alive if at >= killed})
    print(f"\nready after {ready - started:.1f} s; backlog {backlog} events; "
          f"{len(writer.positions)} replies; most partitions held at once: before the kill "
          f"{before} (alive {alive_before}), after {sampler.most(since=killed)} "
          f"(alive {alive_after}); killed {victim} holding {left}, its leases seen until "
          f"{lingered - killed:.2f} s after; every partition at {target} "
          f"{caught_up - killed:.2f} s after the kill; total {time.monotonic() - started:.1f} s")
