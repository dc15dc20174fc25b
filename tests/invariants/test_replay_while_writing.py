"""Invariant 6: ``forum replay`` rebuilds read models into new namespaces while the site
keeps serving the old ones, and switches readers over atomically once caught up. Readers
never see a blank, shrunken or partial page; an interrupted replay leaves the live read
models untouched; a replay of the whole log ends equal to a rebuild, byte for byte.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from redis.asyncio import Redis

from events.records import forum_stream, thread_stream
from service.domain import sections, threads
from service.domain.actors import OPERATOR as OPERATOR_ACTOR
from service.domain.actors import Actor
from service.settings import Settings
from tests.background import Background, ReplyWriter, open_thread
from tests.conftest import FORUM, ROOT, Stack, process_env
from tests.readmodel_dump import (
    assert_equals_rebuild,
    differences,
    dump,
    fill_pages,
    last_written,
)
from workers.checkpoints import positions
from workers.projections import PROJECTIONS
from workers.readmodels import Keys

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

BULK_START = datetime(2011, 6, 8, 12, 0, tzinfo=UTC)




# -- helpers ----------------------------------------------------------------------------

async def bulk(store, threads_: int, replies: int, forum: str = "bulk") -> None:  # type: ignore[no-untyped-def]
    """Append old threads straight to the log (through the real decisions), so that a
    replay has thousands of events to go through."""
    await store.append(forum_stream(forum), 0, sections.create_forum(
        [], slug=forum, title="Bulk", actor=OPERATOR_ACTOR, now=BULK_START))
    for t in range(threads_):
        thread_id = (await store.next_ids("thread"))[0]
        post_ids = await store.next_ids("post", replies + 1)
        at = BULK_START + timedelta(days=t)
        events = threads.start_thread(
            thread_id=thread_id, post_id=post_ids[0], forum=forum, title=f"Old thread {t}",
            body="first", actor=Actor(f"starter{t % 7}", "guest"), now=at)
        state = threads.fold(events)
        for i, post_id in enumerate(post_ids[1:]):
            more = threads.post_reply(state, post_id=post_id, body=f"reply {i}",
                                      actor=Actor(f"replier{i % 5}", "guest"),
                                      now=at + timedelta(minutes=i + 1))
            for event in more:
                state = threads.evolve(state, event)
            events.extend(more)
        await store.append(thread_stream(thread_id), 0, events)


async def settled(store, redis: Redis, keys: Keys, timeout: float = 60) -> int:  # type: ignore[no-untyped-def]
    """Wait until the workers have projected everything written, with no build under way
    and the log readable up to it (``store.head()`` stops below the oldest transaction
    open anywhere on the shared server); returns that position."""
    last = await last_written(store)
    deadline = time.monotonic() + timeout
    while True:
        done = await positions(redis, keys, list(PROJECTIONS))
        building = [k async for k in redis.scan_iter(match=f"{keys.prefix}:building:*")]
        if (not building and all(p is not None and p >= last for p in done.values())
                and await store.head() >= last):
            return last
        assert time.monotonic() < deadline, f"read models stuck at {done}, last {last}"
        await asyncio.sleep(0.05)


async def actives(redis: Redis, keys: Keys) -> dict[str, bytes | None]:
    return {name: await redis.get(keys.active(name)) for name in PROJECTIONS}


async def stray_keys(redis: Redis, keys: Keys) -> list[bytes]:
    """Keys of namespaces that are not live: half-built or dropped ones left behind."""
    live = {name: ns.decode() for name, ns in (await actives(redis, keys)).items() if ns}
    out = []
    for name in PROJECTIONS:
        async for key in redis.scan_iter(match=f"{keys.prefix}:{name}:*", count=1000):
            if name not in live or not key.decode().startswith(
                    keys.namespace(name, live[name]).base + ":"):
                out.append(key)
    return out


def replay(settings: Settings, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([*FORUM, "replay", *args], env=process_env(settings), cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


# In one process, and shared out over two (the log is too small for the default to).
JOBS = pytest.mark.parametrize("jobs", ["1", "2"])


def start_live_thread(url: str) -> tuple[int, int]:
    return open_thread(url, "live", "Busy", "opener")


class Reader(Background):
    """Polls the thread page and the section listing; every page must be whole: posts
    numbered 1..n without holes, counts that never go down, the section always there."""

    def __init__(self, url: str, thread_id: int) -> None:
        super().__init__()
        self.url = url
        self.thread_id = thread_id
        self.reads = 0
        self.problems: list[str] = []

    def _problem(self, text: str) -> None:
        if len(self.problems) < 50:
            self.problems.append(text)

    def _run(self) -> None:
        seen_posts = seen_listed = 0
        with httpx.Client(base_url=self.url, timeout=15) as http:
            while not self.stop.is_set():
                r = http.get(f"/api/threads/{self.thread_id}", params={"per_page": 100})
                self.reads += 1
                if r.status_code != 200:
                    self._problem(f"thread page: {r.status_code} {r.text[:300]}")
                else:
                    page = r.json()
                    count = page["thread"]["posts"]
                    numbers = [p["number"] for p in page["posts"]]
                    if numbers != list(range(1, min(count, 100) + 1)):
                        self._problem(f"thread page of {count} posts numbered {numbers}")
                    if count < seen_posts:
                        self._problem(f"thread page went from {seen_posts} to {count} posts")
                    seen_posts = max(seen_posts, count)
                r = http.get("/api/forums/live/threads")
                if r.status_code != 200:
                    self._problem(f"section: {r.status_code} {r.text[:300]}")
                    continue
                listing = r.json()
                listed = [t for t in listing["threads"] if t["id"] == self.thread_id]
                if listing["forum"]["threads"] != 1 or len(listed) != 1:
                    self._problem(f"section without its thread: {r.text[:300]}")
                    continue
                if listed[0]["posts"] < seen_listed:
                    self._problem(f"listing went from {seen_listed} to {listed[0]['posts']}")
                seen_listed = max(seen_listed, listed[0]["posts"])


def serves(url: str, path: str) -> None:
    r = httpx.get(f"{url}{path}", timeout=15)
    assert r.status_code == 200, r.text


# -- the tests --------------------------------------------------------------------------

@JOBS
async def test_replay_while_a_writer_posts_never_blanks_a_page_and_ends_equal_to_a_rebuild(
    stack: Stack, store, redis: Redis, keys: Keys, jobs: str,  # type: ignore[no-untyped-def]
):
    await bulk(store, threads_=100, replies=60)  # some 12,000 events
    thread_id, _ = start_live_thread(stack.url)
    await settled(store, redis, keys)
    before = await actives(redis, keys)

    with ReplyWriter(stack.url, thread_id, text="reply",
                     guests=("writer0", "writer1", "writer2"), pause=0.01).running() as writer, \
            Reader(stack.url, thread_id).running() as reader:
        time.sleep(0.3)
        started, reads, writes = time.monotonic(), reader.reads, len(writer.positions)
        proc = replay(stack.settings, "--jobs", jobs)
        _, err = await asyncio.to_thread(proc.communicate, timeout=120)
        took = time.monotonic() - started
        assert proc.returncode == 0, err
        reads, writes = reader.reads - reads, len(writer.positions) - writes
        time.sleep(0.3)

    assert "readers switched" in err, err
    assert not writer.errors, writer.errors[:5]
    assert reads >= 5 and writes >= 5, f"{reads} reads, {writes} writes in {took:.2f} s"
    assert not reader.problems, "\n".join(reader.problems)
    after = await actives(redis, keys)
    assert all(after[n] not in (None, before[n]) for n in PROJECTIONS), (before, after, took)
    await settled(store, redis, keys)
    assert await stray_keys(redis, keys) == []
    await assert_equals_rebuild(store, redis, keys)


async def test_replay_of_one_named_projection_rebuilds_only_that_one(
    stack: Stack, store, redis: Redis, keys: Keys,  # type: ignore[no-untyped-def]
):
    await bulk(store, threads_=5, replies=5)
    thread_id, _ = start_live_thread(stack.url)
    await settled(store, redis, keys)
    before = await actives(redis, keys)
    live = await dump(redis, keys)

    proc = replay(stack.settings, "thread_list")
    _, err = await asyncio.to_thread(proc.communicate, timeout=60)
    assert proc.returncode == 0, err

    after = await actives(redis, keys)
    assert after["thread_list"] not in (None, before["thread_list"])
    assert {n: v for n, v in after.items() if n != "thread_list"} == {
        n: v for n, v in before.items() if n != "thread_list"}
    assert differences(await dump(redis, keys), live) == []
    assert await stray_keys(redis, keys) == []
    serves(stack.url, "/api/forums/live/threads")
    serves(stack.url, f"/api/threads/{thread_id}")
    await assert_equals_rebuild(store, redis, keys)


@pytest.mark.parametrize("names", [["nonsense"], ["thread_page", "nonsense"]])
async def test_replay_of_an_unknown_projection_exits_non_zero_and_changes_nothing(
    settings: Settings, store, redis: Redis, keys: Keys, project,  # type: ignore[no-untyped-def]
    names: list[str],
):
    await bulk(store, threads_=3, replies=3)
    await project()
    before = await actives(redis, keys)
    live = await dump(redis, keys)

    proc = replay(settings, *names)
    _, err = await asyncio.to_thread(proc.communicate, timeout=60)
    assert proc.returncode != 0
    assert "unknown projection" in err and "nonsense" in err, err
    assert "Traceback" not in err, err
    assert await actives(redis, keys) == before
    assert differences(await dump(redis, keys), live) == []
    assert [k async for k in redis.scan_iter(match=f"{keys.prefix}:building:*")] == []
    assert await stray_keys(redis, keys) == []


@JOBS
async def test_an_interrupted_replay_leaves_the_live_read_models_untouched_and_a_new_one_completes(
    stack: Stack, store, redis: Redis, keys: Keys, jobs: str,  # type: ignore[no-untyped-def]
):
    await bulk(store, threads_=100, replies=60)  # some 12,000 events
    thread_id, _ = start_live_thread(stack.url)
    await settled(store, redis, keys, timeout=90)
    before = await actives(redis, keys)
    # Thread pages are a cache a replay does not write (docs/design.md, "Thread pages as
    # a cache"): compared once made, as a read makes them.
    await fill_pages(store, redis, keys)
    live = await dump(redis, keys)

    proc = replay(stack.settings, "--jobs", jobs)
    try:
        # Interrupt it (Ctrl-C) while it builds: as soon as its new namespaces exist.
        deadline = time.monotonic() + 30
        while not await redis.exists(keys.building("member_stats")):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "replay never started building"
        proc.send_signal(signal.SIGINT)
        _, err = await asyncio.to_thread(proc.communicate, timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0, f"replay was not interrupted:\n{err}"
    assert "readers switched" not in err, err
    assert "interrupted" in err and "Traceback" not in err, err

    assert await actives(redis, keys) == before
    assert differences(await dump(redis, keys), live) == []
    assert [k async for k in redis.scan_iter(match=f"{keys.prefix}:building:*")] == []
    assert await stray_keys(redis, keys) == [], "the half-built namespaces were left behind"
    assert await redis.get(keys.lock("build")) is None, "the build lock was not released"
    serves(stack.url, f"/api/threads/{thread_id}")
    serves(stack.url, "/api/forums/bulk/threads")

    # Run again: it starts over and completes.
    proc = replay(stack.settings, "--jobs", jobs)
    _, err = await asyncio.to_thread(proc.communicate, timeout=120)
    assert proc.returncode == 0, err
    after = await actives(redis, keys)
    assert all(after[n] not in (None, before[n]) for n in PROJECTIONS)
    await fill_pages(store, redis, keys)
    assert differences(await dump(redis, keys), live) == []
    assert await stray_keys(redis, keys) == []
    await assert_equals_rebuild(store, redis, keys)
