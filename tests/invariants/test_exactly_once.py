"""Invariant 3: exactly-once effect under at-least-once delivery.

Delivery is at-least-once: Dramatiq redelivers, retries and reorders, and a worker can die
at any instant. Whatever happens, the read models must end up byte for byte equal to a
fresh rebuild of the log.

- every catch-up delivered twice, concurrently, and once more "stale" (a delivery that read
  the checkpoints and the log, stalled, and tries to commit after the other one did);
- many tiny-batch catch-ups racing from several tasks, and two live projectors racing
  while the log grows;
- the real Dramatiq actor on a StubBroker, every message enqueued twice;
- a real ``forum worker`` killed with SIGKILL while projecting a large backlog, several
  times, then restarted.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import dramatiq
import httpx
import pytest
from dramatiq.brokers.stub import StubBroker

from events.records import thread_stream
from events.threads import PostAdded, PostQuoted, QuoteInfo, ThreadBumped, ThreadStarted
from tests.background import open_thread
from tests.conftest import ROOT, Stack
from tests.invariants.test_live_equals_rebuild import World, activate, live_targets, one_batch
from tests.readmodel_dump import assert_equals_rebuild, last_written, settle
from workers.actors import declare
from workers.broker import QUEUE, middleware
from workers.checkpoints import positions
from workers.live import Live
from workers.middleware import Resources
from workers.readmodels import PROJECTION_NAMES

# -- deliveries at the runner level ---------------------------------------------------


class Stalled:
    """A store through which a delivery stalls (a GC pause, a slow network…) at a chosen
    point of its catch-up, until the test lets it go on: ``"after_read"`` once it has read
    its batch from the log, ``"before_read"`` once it has read the checkpoints."""

    def __init__(self, store, where: str) -> None:
        self.store = store
        self.where = where
        self.reached = asyncio.Event()
        self.release = asyncio.Event()

    async def read_feed(self, after: int, limit: int):
        if self.where == "before_read":
            self.reached.set()
            await self.release.wait()
            return await self.store.read_feed(after, limit)
        records = await self.store.read_feed(after, limit)
        self.reached.set()
        await self.release.wait()
        return records

    def __getattr__(self, name: str):
        return getattr(self.store, name)


async def checkpoint_values(redis, keys) -> dict[str, int | None]:
    return await positions(redis, keys, list(PROJECTION_NAMES))


async def test_every_batch_delivered_twice_and_once_more_stale(store, redis, keys):
    rng = random.Random(3)
    await activate(store, redis, keys)
    world = World(store)
    await world.seed()
    stale_refused = concurrent_pairs = 0
    for round_ in range(8):
        await world.random_commands(rng, 25)
        last = await last_written(store)
        for _ in range(400):
            targets = await live_targets(redis, keys)
            batch = rng.randrange(1, 12)
            # Twice at once: the same message delivered to two worker threads.
            first, second = await asyncio.gather(
                one_batch(store, redis, targets, batch=batch),
                one_batch(store, redis, targets, batch=batch))
            if first.applied and second.applied:
                concurrent_pairs += 1
                assert first.position != second.position, "one batch applied twice"
            # A stale delivery: it read the checkpoints (and maybe the batch) before
            # another delivery committed that same batch; its commit must change nothing.
            stalled = Stalled(store, rng.choice(("after_read", "before_read")))
            late = asyncio.create_task(one_batch(stalled, redis, targets, batch=batch))
            await stalled.reached.wait()
            before = await checkpoint_values(redis, keys)
            fresh = await one_batch(store, redis, targets, batch=batch)
            stalled.release.set()
            stale = await late
            if fresh.applied:
                # (A stale read may also have come back empty, the log's horizon not yet
                # past it: then it had nothing to apply in the first place.)
                assert stale.applied == 0, (fresh, stale)
                stale_refused += stale.conflicted
                after = await checkpoint_values(redis, keys)
                assert set(after.values()) == {fresh.position}, (before, after)
            # And again after the commit: nothing left of that batch to apply.
            if not fresh.applied and not first.applied and not second.applied:
                done = await checkpoint_values(redis, keys)
                if all(p is not None and p >= last for p in done.values()):
                    break
                await asyncio.sleep(0.01)  # the log's horizon has not passed ``last`` yet
        else:
            raise AssertionError(f"round {round_}: projections did not reach {last}")
    assert stale_refused >= 10, stale_refused
    await settle(store, redis, keys)
    await assert_equals_rebuild(store, redis, keys)


async def test_tiny_batches_racing_from_many_tasks(store, redis, keys):
    rng = random.Random(5)
    await activate(store, redis, keys)
    world = World(store)
    await world.seed()
    await world.random_commands(rng, 150)
    last = await last_written(store)

    async def deliver(seed: int) -> int:
        local = random.Random(seed)
        applied = 0
        while True:
            progress = await one_batch(store, redis, await live_targets(redis, keys),
                                      batch=local.randrange(1, 5))
            applied += progress.applied
            if not progress.applied and not progress.conflicted and progress.position >= last:
                return applied
            if not progress.applied and not progress.conflicted:
                await asyncio.sleep(0.01)  # the log's horizon has not passed ``last`` yet

    applied = await asyncio.gather(*(deliver(seed) for seed in range(8)))
    total = int(await store._pool.fetchval("SELECT count(*) FROM events"))
    assert sum(applied) == total, (applied, total)  # each event applied exactly once
    await assert_equals_rebuild(store, redis, keys)


async def test_live_projectors_racing_while_the_log_grows(store, redis, keys):
    """Two workers' projectors (lease + dirty mark), nudged over and over while writers
    append: every event once, in order."""
    rng = random.Random(11)
    await activate(store, redis, keys)
    world = World(store)
    await world.seed()
    writing = True

    async def write() -> None:
        nonlocal writing
        try:
            await world.random_commands(rng, 200)
        finally:
            writing = False

    async def nudge(live: Live) -> None:
        while writing:
            await asyncio.gather(live.catch_up(), live.catch_up())
            await asyncio.sleep(0)

    workers = [Live(store, redis, keys, batch=b) for b in (3, 7)]
    await asyncio.gather(write(), *(nudge(w) for w in workers))
    await settle(store, redis, keys, batch=5)
    await assert_equals_rebuild(store, redis, keys)


# -- the real actor, on a StubBroker ----------------------------------------------------


class Failures(dramatiq.Middleware):
    def __init__(self) -> None:
        self.errors: list[BaseException] = []
        self.done = 0

    def after_process_message(self, broker, message, *, result=None, exception=None):
        if exception is not None:
            self.errors.append(exception)
        else:
            self.done += 1


def stub_worker(settings, monkeypatch) -> tuple[StubBroker, dramatiq.Worker, Failures]:
    """workers.main.setup on a StubBroker: the same middleware, the same actor. The periodic
    tick is slowed down so that only messages make progress."""
    import workers.middleware

    monkeypatch.setattr(workers.middleware, "TICK", 3600)
    failures = Failures()
    broker = StubBroker(middleware=[*middleware(worker=True), failures])
    broker.declare_queue(QUEUE)
    resources = Resources(settings)
    broker.add_middleware(resources)
    declare(broker, resources)
    return broker, dramatiq.Worker(broker, worker_threads=4, worker_timeout=50), failures


def nudge_message() -> dramatiq.Message:
    """What the API sends (workers/nudge.py): a ``catch_up`` by actor name, no payload."""
    return dramatiq.Message(queue_name=QUEUE, actor_name="catch_up", args=(), kwargs={},
                            options={})


async def test_the_actor_with_every_message_delivered_twice(settings, store, redis, keys,
                                                             monkeypatch):
    rng = random.Random(17)
    await activate(store, redis, keys)
    broker, worker, failures = stub_worker(settings, monkeypatch)
    world = World(store)
    await world.seed()
    await world.random_commands(rng, 20)
    for _ in range(3):  # a backlog of messages waiting when the worker boots
        message = nudge_message()
        broker.enqueue(message)
        broker.enqueue(message)
    worker.start()
    try:
        for _ in range(8):
            await world.random_commands(rng, 20)
            message = nudge_message()
            broker.enqueue(message)
            broker.enqueue(message)  # the very same message, twice
            await asyncio.to_thread(broker.join, QUEUE, timeout=30_000)
        last = await last_written(store)
        deadline = time.monotonic() + 30
        while True:  # only messages drive it: nudge until the log's horizon passed `last`
            await asyncio.to_thread(worker.join)
            done = await checkpoint_values(redis, keys)
            if all(p is not None and p >= last for p in done.values()):
                break
            assert time.monotonic() < deadline, (done, last)
            broker.enqueue(nudge_message())
            broker.enqueue(nudge_message())
            await asyncio.sleep(0.05)
    finally:
        await asyncio.to_thread(worker.stop)
        broker.close()
    assert not failures.errors, failures.errors
    assert failures.done >= 22
    await assert_equals_rebuild(store, redis, keys)


# -- a real worker process, killed ------------------------------------------------------


def stop_worker_gracefully(stack: Stack) -> None:
    """SIGTERM to Dramatiq's main process only (as the deploy files do); it stops its
    children. (SIGTERM to the whole group reaches a child twice and can hang it.)"""
    proc = stack.worker
    if proc is not None and proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


@pytest.fixture
def stack(stack):
    yield stack
    stop_worker_gracefully(stack)


async def append_backlog(store, slug: str, threads: int, posts: int) -> int:
    """``threads`` threads of ``posts`` posts each, quotes included, appended straight to the
    log (one append per thread); returns how many events."""
    thread_ids = await store.next_ids("thread", threads)
    post_ids = await store.next_ids("post", threads * posts)
    start = datetime(2019, 1, 1, tzinfo=UTC) + timedelta(days=random.randrange(2000))
    sem = asyncio.Semaphore(8)
    count = 0

    async def one(i: int, thread_id: int) -> None:
        nonlocal count
        moment = start + timedelta(hours=i)
        starter = f"g{i % 13}"
        events: list = [ThreadStarted(occurred_at=moment, actor=starter, thread_id=thread_id,
                                      forum=slug, title=f"backlog {thread_id}",
                                      author=starter, guest=True)]
        ids = post_ids[i * posts:(i + 1) * posts]
        for number, post_id in enumerate(ids, 1):
            moment += timedelta(minutes=number)
            author = starter if number % 4 == 1 else f"g{(i + number) % 17}"
            quotes = []
            if number > 2 and number % 3 == 0:
                quotes = [QuoteInfo(post_id=ids[0], number=1, author=starter)]
            events.append(PostAdded(
                occurred_at=moment, actor=author, thread_id=thread_id, forum=slug,
                post_id=post_id, number=number, author=author, guest=True,
                op=author == starter, first_reply=number == 2,
                body=(f"[quote={starter} post={ids[0]}]first[/quote]" if quotes else "")
                + f"post {number} [b]of[/b] {thread_id}", quotes=quotes))
            events += [PostQuoted(occurred_at=moment, actor=author, thread_id=thread_id,
                                  post_id=post_id, quoted_post_id=q.post_id,
                                  quoted_number=q.number, quoted_author=q.author)
                       for q in quotes]
            if number > 1:
                events.append(ThreadBumped(occurred_at=moment, actor=author,
                                           thread_id=thread_id, forum=slug, reason="reply"))
        async with sem:
            await store.append(thread_stream(thread_id), 0, events)
        count += len(events)

    await asyncio.gather(*(one(i, t) for i, t in enumerate(thread_ids)))
    return count


def forum_status(stack: Stack) -> dict:
    out = subprocess.run([sys.executable, "-m", "service", "status", "--json"],
                         env=stack.env(), cwd=ROOT, capture_output=True, timeout=30,
                         check=True)
    return json.loads(out.stdout)


async def wait_until_projected(stack: Stack, store, timeout: float = 40) -> dict:
    last = await last_written(store)
    deadline = time.monotonic() + timeout
    while True:
        status = await asyncio.to_thread(forum_status, stack)
        rows = status["projections"].values()
        if status["head"] >= last and all(
                r["position"] == status["head"] and not r["rebuilding"] for r in rows):
            return status
        assert time.monotonic() < deadline, f"not caught up: {status}, last {last}"
        await asyncio.sleep(0.3)


@pytest.mark.e2e
@pytest.mark.slow
async def test_a_worker_killed_while_projecting_leaves_no_trace(stack, store, redis, keys):
    tid, position = open_thread(stack.url, "bulk", "first", "g1")
    async with httpx.AsyncClient(base_url=stack.url, timeout=10) as http:
        for _ in range(5):  # on 503, try again after Retry-After
            page = await http.get(f"/api/threads/{tid}",
                                  headers={"X-Min-Position": str(position)})
            if page.status_code != 503:
                break
            await asyncio.sleep(float(page.headers["Retry-After"]))
        assert page.status_code == 200, page.text
    stop_worker_gracefully(stack)

    rng = random.Random()
    kills = []
    # Killed while projecting, killed while still waiting for the lease the previous dead
    # worker holds (it expires after 10 s), killed while projecting again.
    for round_ in range(3):
        events = await append_backlog(store, "bulk", threads=200, posts=15)
        before = await checkpoint_values(redis, keys)
        worker = stack.start_worker()
        if round_ == 1:
            await asyncio.sleep(rng.uniform(0.5, 2.0))
        else:
            deadline = time.monotonic() + 20
            while await checkpoint_values(redis, keys) == before:
                assert worker.poll() is None, (stack.tmp / "worker.log").read_text()[-3000:]
                assert time.monotonic() < deadline, "the worker never started projecting"
                await asyncio.sleep(0.005)
            await asyncio.sleep(rng.uniform(0, 0.15))
        assert worker.poll() is None, (stack.tmp / "worker.log").read_text()[-3000:]
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=10)
        kills.append((events, await checkpoint_values(redis, keys)))

    stack.start_worker()
    status = await wait_until_projected(stack, store)
    assert status["head"] == await last_written(store)
    live = await assert_equals_rebuild(store, redis, keys)
    assert sum(1 for k in live if _is_posts(k)) \
        == 601, kills


def _is_posts(key: str) -> bool:
    """A thread page's list of posts, in a dump of the read models."""
    return key.startswith("thread_page:*:") and ":t:" in key and key.endswith(":posts")
