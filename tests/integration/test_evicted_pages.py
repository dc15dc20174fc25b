"""Thread pages are a cache Redis may evict (docs/design.md, "Thread pages as a cache"):

* a board projected into a Redis limited to 40% of its full read models, under the policy
  deploy/README.md names, reads every thread page whole and correct: equal to the pages
  read from an unlimited Redis;
* a page whose keys went missing, all or some, is rebuilt on read from the thread's
  events, and the live projector goes on from there applying no event twice;
* a replay writes no pages (they are made on read) and reads the same.

Each Redis here is a redis-server of the test's own on a free port, stopped by its PID."""

from __future__ import annotations

import asyncio
import random
import re
import shutil
import socket
import subprocess
import tempfile
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import pytest_asyncio
from redis.asyncio import Redis

from events.postgres import PostgresEventStore
from events.records import forum_stream, thread_stream
from service.domain import threads
from service.domain.actors import OPERATOR, Actor
from service.domain.sections import create_forum
from tests.readmodel_dump import last_written, rebuild_all
from workers.apply import Target, apply
from workers.checkpoints import positions
from workers.live import Live
from workers.page_rebuild import page_commands
from workers.projections.thread_page import ThreadPage
from workers.readmodels import PROJECTION_NAMES, Keys
from workers.readmodels.keys import thread_partition
from workers.readmodels.reads import Reads
from workers.readmodels.scripts import REBUILD_PAGE

ROOT = Path(__file__).resolve().parents[2]
POLICY = re.search(r"^maxmemory-policy (\S+)$",
                   (ROOT / "deploy" / "README.md").read_text(), re.M)
PROSE = ("The archive of the old county records was moved twice before the fire, and most "
         "of what survived was catalogued by volunteers who never agreed on a scheme. ")
_WORDS = (PROSE + "I went through the parish books last winter and found three spellings of "
          "the same family name within a decade; the clerk wrote whatever he heard. If "
          "anyone has the returns for the northern townships, I would compare notes.").split()


def prose(seed: int, words: int) -> str:
    """``words`` words of the vocabulary in an order of their own: text that packs like
    prose (workers/readmodels/stored_posts.py deflates longer bodies; a repeated sentence
    would pack to nearly nothing and leave the pages a sliver of the read models)."""
    rng = random.Random(seed)
    return " ".join(rng.choice(_WORDS) for _ in range(words))


class OwnRedis:
    def __init__(self, *args: str) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.dir = tempfile.mkdtemp(prefix="forumtest-redis-")
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self.dir, *args],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.client = Redis.from_url(f"redis://127.0.0.1:{self.port}/0", socket_timeout=30)

    async def ready(self) -> Redis:
        for _ in range(200):
            try:
                await self.client.ping()
                return self.client
            except Exception:
                await asyncio.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    async def used(self) -> int:
        return int((await self.client.info("memory"))["used_memory"])

    async def stop(self) -> None:
        await self.client.aclose()
        self.proc.terminate()
        self.proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest_asyncio.fixture
async def own_redis() -> AsyncIterator[list[OwnRedis]]:
    started: list[OwnRedis] = []
    yield started
    for server in started:
        await server.stop()


async def seed(store: PostgresEventStore, threads_count: int, posts: int, *,
               slug: str = "s") -> list[int]:
    """A section ``slug`` of threads of ``posts`` posts of ~600 bytes, some with markup,
    likes, edits, deletes."""
    now = datetime(2020, 1, 1, tzinfo=UTC)
    await store.append(forum_stream(slug), 0, create_forum(
        [], slug=slug, title="Section", actor=OPERATOR, now=now))
    member = Actor("liker", "member")
    ids = []
    for t in range(threads_count):
        tid = (await store.next_ids("thread"))[0]
        post_ids = await store.next_ids("post", posts)
        events = threads.start_thread(
            thread_id=tid, post_id=post_ids[0], forum=slug, title=f"Thread {t}",
            body=f"[b]Opening[/b] {t}\n" + prose(t, 100), actor=Actor(f"g{t % 9}", "guest"),
            now=now)
        state = threads.fold(events)
        for n in range(1, posts):
            now += timedelta(seconds=7)
            new = threads.post_reply(state, post_id=post_ids[n],
                                     body=f"Reply {n}. " + prose(t * 1000 + n, 25 * (1 + n % 7)),
                                     actor=Actor(f"g{n % 13}", "guest"), now=now)
            if n % 5 == 0:
                new += threads.like(threads.fold([*events, *new]), post_id=post_ids[n],
                                    actor=member, now=now, liked=True)
            events += new
            state = threads.fold(events)
        state = threads.fold(events)
        events += threads.edit_post(state, post_id=post_ids[2], body="[i]edited[/i] " + PROSE,
                                    actor=OPERATOR, now=now)
        state = threads.fold(events)
        events += threads.delete_post(state, post_id=post_ids[3], actor=OPERATOR, now=now)
        await store.append(thread_stream(tid), 0, events)
        ids.append(tid)
    return ids


async def read_all(reads: Reads, ids: list[int]) -> dict[tuple[int, int], object]:
    """Every page of every thread as the reads answer it (what the API sends)."""
    out: dict[tuple[int, int], object] = {}
    for tid in ids:
        page, pages = 1, 1
        while page <= pages:
            view = await reads.thread_page(tid, page)
            pages = view.pages
            out[tid, page] = (view.thread, [
                (e.post, e.threads, e.posts, e.reputation, e.likes) for e in view.posts])
            page += 1
    return out


async def settle(store: PostgresEventStore, redis: Redis, keys: Keys) -> None:
    """The workers' ticks (a first build, then live projection) until at the log's end."""
    live = Live(store, redis, keys)
    last = await last_written(store)
    for _ in range(3000):
        await live.tick()
        done = await positions(redis, keys, list(PROJECTION_NAMES))
        if all(p is not None and p >= last for p in done.values()) and not await redis.keys(
                f"{keys.prefix}:building:*"):
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"projections stuck at {done}, last {last}")


async def reply(store: PostgresEventStore, thread_id: int, body: str) -> None:
    recorded = await store.read_stream(thread_stream(thread_id))
    new = threads.post_reply(threads.fold([r.event for r in recorded]),
                             post_id=(await store.next_ids("post"))[0], body=body,
                             actor=Actor("late", "guest"), now=datetime.now(UTC))
    await store.append(thread_stream(thread_id), recorded[-1].version, new)


async def active(redis: Redis, keys: Keys) -> str:
    pointer = await redis.get(keys.active("thread_page"))
    assert isinstance(pointer, bytes)
    return pointer.decode()


def reads_of(redis: Redis, keys: Keys, store: PostgresEventStore) -> Reads:
    return Reads(redis, keys, store, per_page=10, min_position_wait=2.0, cache_ms=0)


@pytest.mark.slow
async def test_a_board_on_a_redis_of_40_percent_of_its_read_models_reads_whole(
        store: PostgresEventStore, keys: Keys, own_redis: list[OwnRedis]) -> None:
    assert POLICY, "deploy/README.md names the policy on a line of its own"
    full, limited = OwnRedis(), OwnRedis("--maxmemory-policy", POLICY.group(1))
    own_redis += [full, limited]
    redis, small = await full.ready(), await limited.ready()
    await settle(store, redis, keys)  # read models there, so that the board is projected
    await settle(store, small, keys)  # live (a build writes no pages)
    empty = await full.used()
    ids = await seed(store, 200, 25)
    await settle(store, redis, keys)
    needed = await full.used() - empty
    expected = await read_all(reads_of(redis, keys, store), ids)
    assert len(expected) == 200 * 3

    await small.config_set("maxmemory", empty + needed * 4 // 10)
    await settle(store, small, keys)
    assert (await small.info("stats"))["evicted_keys"] > 0
    assert await small.keys(f"{keys.prefix}:thread_page:*:posts")  # some pages kept
    got = await read_all(reads_of(small, keys, store), ids)
    assert got == expected
    # Nothing but pages was evicted: every summary, pointer and checkpoint is there.
    for tid in ids:
        ns = keys.namespace("thread_page", await active(small, keys))
        assert await small.exists(ns.thread(tid))


async def test_a_page_missing_whole_or_in_part_is_rebuilt_and_the_projector_goes_on(
        store: PostgresEventStore, keys: Keys, own_redis: list[OwnRedis]) -> None:
    server = OwnRedis()
    own_redis.append(server)
    redis = await server.ready()
    ids = await seed(store, 3, 12)
    await settle(store, redis, keys)
    reads = reads_of(redis, keys, store)
    expected = await read_all(reads, ids)
    ns = keys.namespace("thread_page", await active(redis, keys))
    posts, likes = ns.page_keys(ids[0])
    assert await redis.ttl(posts) > 86400
    await redis.delete(posts, likes)  # evicted whole
    await redis.delete(ns.posts(ids[1]))  # evicted in part
    await redis.delete(ns.likes(ids[2]))
    # The projector meets the missing pages: later posts go nowhere (no partial page).
    await reply(store, ids[0], "late")
    await settle(store, redis, keys)
    assert not await redis.exists(posts)
    got = await read_all(reads, ids)
    assert {k: v for k, v in got.items() if k[0] != ids[0]} == {
        k: v for k, v in expected.items() if k[0] != ids[0]}
    last = got[ids[0], 2]
    assert [p[0].body for p in last[1]][-1] == "late"  # type: ignore[index]
    assert last[0].posts == 13  # type: ignore[index]
    # Rebuilt at the projector's checkpoint: the next post lands once, after it.
    await reply(store, ids[0], "later")
    await settle(store, redis, keys)
    view = await reads.thread_page(ids[0], 2)
    assert [e.post.body for e in view.posts][-2:] == ["late", "later"]
    assert await redis.llen(posts) == 14


async def test_a_replay_writes_no_pages_and_reads_the_same(
        store: PostgresEventStore, keys: Keys, own_redis: list[OwnRedis]) -> None:
    server = OwnRedis()
    own_redis.append(server)
    redis = await server.ready()
    ids = await seed(store, 4, 12)
    await settle(store, redis, keys)
    reads = reads_of(redis, keys, store)
    expected = await read_all(reads, ids)
    await rebuild_all(store, redis, keys)
    ns = keys.namespace("thread_page", await active(redis, keys))
    assert not [k async for k in redis.scan_iter(match=f"{ns.base}:t:*:posts")]
    assert await read_all(reads, ids) == expected


async def test_a_rebuilt_page_is_written_only_for_checkpoints_its_fold_holds_for(
        store: PostgresEventStore, keys: Keys, own_redis: list[OwnRedis]) -> None:
    """The script writes the fold only while the checkpoint lies from the fold's position
    up to (not including) the bound: past it, events the fold lacks may be applied."""
    server = OwnRedis()
    own_redis.append(server)
    redis = await server.ready()
    ids = await seed(store, 1, 5)
    await settle(store, redis, keys)
    expected = await read_all(reads_of(redis, keys, store), ids)
    active_ns = await active(redis, keys)
    ns = keys.namespace("thread_page", active_ns)
    checkpoint_key = ns.checkpoints[thread_partition(ids[0])]
    checkpoint = int(await redis.get(checkpoint_key) or 0)
    recorded = await store.read_stream(thread_stream(ids[0]))
    batch = apply([(r.position, r.event) for r in recorded], [Target(ThreadPage(), ns)],
                  [0])
    page = ns.page_keys(ids[0])
    commands: list[str | bytes | int] = []
    for command in page_commands(batch.commands(), page):
        commands += [len(command), *command]
    script = redis.register_script(REBUILD_PAGE)
    written = [checkpoint_key, ns.thread(ids[0]), *page]
    await redis.delete(*page)
    await redis.set(checkpoint_key, checkpoint + 5)  # the projector moved on
    answer = await script(keys=written, args=[checkpoint, checkpoint + 5, 60,
                                              *commands])
    assert answer[0] == 2 and not await redis.exists(*page)
    answer = await script(keys=written, args=[checkpoint + 6, checkpoint + 9, 60,
                                              *commands])
    assert answer[0] == 2 and not await redis.exists(*page)
    answer = await script(keys=written, args=[checkpoint, checkpoint + 6, 60,
                                              *commands])
    assert answer == [1] and 0 < await redis.ttl(page[0]) <= 60
    answer = await script(keys=written, args=[checkpoint, checkpoint + 6, 60,
                                              *commands])
    assert answer == [0]  # whole already: written once
    await redis.set(checkpoint_key, checkpoint)
    assert await read_all(reads_of(redis, keys, store), ids) == expected
    # A namespace fenced (its checkpoint gone) is written nothing: read the pointer again.
    await redis.delete(*page)
    await redis.rename(checkpoint_key, f"{checkpoint_key}:kept")
    answer = await script(keys=written, args=[checkpoint, checkpoint + 6, 60, *commands])
    assert answer == [2, b""] and not await redis.exists(*page)
    await redis.rename(f"{checkpoint_key}:kept", checkpoint_key)
