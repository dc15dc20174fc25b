"""The reads run on a Redis Cluster (``FORUM_REDIS_CLUSTER=true``) and answer there what
they answer on one Redis, by the same code: each script on the keys of one hash slot, the
keys of other slots fetched beside it (workers/readmodels/reads.py).

A board is projected into the shared Redis by the live projector and its keys copied into
the cluster under the same names (DUMP / RESTORE): the write side's commits do not run on
a cluster yet, and the reads must not depend on how the keys got there. Then every read
answers the same values on both, ``seen`` and ``spaces`` included; a namespace swapped
in under a reader that knew the old one (the old one fenced: its checkpoints deleted
first) is found, and so is one swapped in without a fence by a read waiting for a
position; an evicted page is rebuilt on the cluster; scripts a node lost are loaded
again."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
import pytest_asyncio
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster as ClusterClient

from common.redis_client import connect, is_cluster
from events.held import PostHeld, ThreadHeld
from events.postgres import PostgresEventStore
from events.records import forum_stream, member_stream, thread_stream
from service.domain import threads
from service.domain.actors import OPERATOR, Actor
from tests.builders import NOW, ThreadHistory, forum_created, member_registered, new_id
from tests.readmodel_dump import last_written
from tests.rediscluster import RedisCluster
from workers.checkpoints import positions
from workers.live import Live
from workers.readmodels import PROJECTION_NAMES, Keys, scripts
from workers.readmodels.errors import ReadModelUnavailableError, ReadNotFoundError
from workers.readmodels.keys import named_partition, thread_partition
from workers.readmodels.reads import Reads

SECTIONS = ("history", "misc", "art", "news", "travel")
MEMBERS = ("Ann", "bob", "Zoë")
GUESTS = ("Gus", "wanderer", "Émile")
PER_PAGE = 3


@dataclass
class Board:
    threads: list[int] = field(default_factory=list)
    posts: list[int] = field(default_factory=list)
    edited: int = 0
    unanswered: int = 0
    held_by: str = "guest:abc"


async def seed(store: PostgresEventStore) -> Board:
    """Sections, members and guests whose keys fall in many partitions; threads over two
    years, with replies, likes, an edit, a deletion, a lock; held posts."""
    board = Board()
    for slug in SECTIONS:
        await store.append(forum_stream(slug), 0, [forum_created(slug, slug.title())])
    for name in MEMBERS:
        await store.append(member_stream(name), 0, [member_registered(name)])
    people = [Actor(n, "member") for n in MEMBERS] + [Actor(n, "guest") for n in GUESTS]
    for t in range(14):
        at = NOW - timedelta(days=400 * (t % 2)) + timedelta(minutes=t)
        history = ThreadHistory(people[t % len(people)], forum=SECTIONS[t % len(SECTIONS)],
                                title=f"Thread {t}", body=f"[b]Opening[/b] {t}", at=at)
        board.posts.append(history.first_post_id)
        for n in range(t % 9 if t != 5 else 0):
            reply_at = at + timedelta(minutes=n + 1)
            post_id = history.reply(people[(t + n) % len(people)], f"Reply {n} of {t}",
                                    at=reply_at)
            board.posts.append(post_id)
            liker = Actor("bob" if (t + n) % len(people) == 0 else "Ann", "member")
            if n % 3 == 1:
                history.apply(threads.like(history.state, post_id=post_id, actor=liker,
                                           now=reply_at, liked=True))
        if t == 7:
            history.apply(threads.edit_post(history.state, post_id=board.posts[-1],
                                            body="[i]edited[/i]", actor=OPERATOR, now=at))
            board.edited = board.posts[-1]
            history.delete(board.posts[-2], at=at)
        if t == 8:
            history.lock(at)
        if t < 4:  # a reply held for review: one author's, or another's
            history.events.append(PostHeld(
                occurred_at=at, actor="Gus", held_id=new_id(), thread_id=history.thread_id,
                forum=SECTIONS[t % len(SECTIONS)], author="Gus", guest=True,
                author_key=board.held_by if t % 2 else "guest:xyz", op=False,
                body=f"see https://spam.example/{t}", guest_id="abc"))
        await store.append(thread_stream(history.thread_id), 0, history.events)
        board.threads.append(history.thread_id)
    board.unanswered = board.threads[5]
    held_thread = new_id()
    await store.append(thread_stream(held_thread), 0, [ThreadHeld(
        occurred_at=NOW, actor="Gus", held_id=new_id(), thread_id=held_thread,
        forum="history", title="Cheap", author="Gus", guest=True, author_key=board.held_by,
        body="[url]https://spam.example[/url]", guest_id="abc")])
    return board


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
    raise AssertionError("the projections did not settle")


async def copy_keys(source: Redis, target: Redis, pattern: str,
                    rename: Callable[[bytes], bytes] = lambda key: key) -> int:
    """Every key matching ``pattern`` from ``source`` into ``target`` (DUMP / RESTORE,
    expires kept), each under ``rename(key)``."""
    found = [key async for key in source.scan_iter(match=pattern, count=1000)]
    for key in found:
        payload = await source.dump(key)
        ttl = await source.pttl(key)
        assert payload is not None, key
        await target.restore(rename(key), max(ttl, 0), payload, replace=True)
    return len(found)


@pytest_asyncio.fixture
async def cluster(redis_cluster: RedisCluster) -> AsyncIterator[Redis]:
    client = connect(redis_cluster.url, cluster=True)
    assert is_cluster(client)
    yield client
    await client.aclose()


@pytest_asyncio.fixture
async def projected(store: PostgresEventStore, redis: Redis, keys: Keys,
                    cluster: Redis) -> Board:
    """The board projected into the shared Redis, and copied into the cluster."""
    board = await seed(store)
    await settle(store, redis, keys)
    assert await copy_keys(redis, cluster, f"{keys.prefix}:*") > 100
    return board


def reads(redis: Redis, keys: Keys, store: PostgresEventStore) -> Reads:
    return Reads(redis, keys, store, per_page=PER_PAGE, min_position_wait=1.0, cache_ms=0)


async def outcome(read: Awaitable[Any]) -> Any:
    """What a read answers, or the error it raises (by type and message)."""
    try:
        return await read
    except (ReadNotFoundError, ReadModelUnavailableError) as error:
        return type(error).__name__, str(error)


async def every_read(on: Reads, board: Board) -> dict[tuple[Any, ...], Any]:
    """Every read there is, of everything on the board (and some of nothing)."""
    out: dict[tuple[Any, ...], Any] = {}
    for tid in [*board.threads, 999_999_999]:
        for page in (1, 2, 3, 4):
            out["thread_page", tid, page] = await outcome(on.thread_page(tid, page))
        out["liked", tid] = await outcome(on.liked(tid, [1, 2, 3, 4, 5, 6], "Ann"))
    for post_id in board.posts:
        out["post", post_id] = await outcome(on.post(post_id))
    out["revisions", board.edited] = await outcome(on.revisions(board.edited))
    for slug in [*SECTIONS, "nowhere"]:
        for page in (1, 2):
            out["section", slug, page] = await outcome(on.section_threads(slug, page))
        out["years", slug] = await outcome(on.archive_years(slug))
        for year in (2010, 2011, 1999):
            out["archive", slug, year] = await outcome(on.archive_year(slug, year, 1))
    for page in (1, 2):
        out["unanswered", page] = await outcome(on.unanswered(page))
    out["newest",] = await outcome(on.newest(10))
    out["forums",] = await outcome(on.forums())
    for name in [*MEMBERS, *GUESTS, "nobody", "ann", "GUS"]:
        out["user", name] = await outcome(on.user(name))
        out["activity", name] = await outcome(on.activity(name, 5))
    for author in (None, board.held_by, "guest:xyz", "guest:none"):
        out["held", author] = await outcome(on.held(author, 1))
    return out


async def test_every_read_answers_the_same_on_a_cluster_as_on_one_redis(
        projected: Board, store: PostgresEventStore, redis: Redis, cluster: Redis,
        keys: Keys) -> None:
    expected = await every_read(reads(redis, keys, store), projected)
    on_cluster = reads(cluster, keys, store)
    got = await every_read(on_cluster, projected)
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        assert got[key] == value, key
    # The board is not empty, and its reads met every kind of answer.
    assert sum(1 for v in expected.values() if isinstance(v, tuple)) < len(expected) / 2
    page = expected["thread_page", projected.threads[7], 1]
    assert len(page.posts) == PER_PAGE and len(page.seen) >= 2
    assert expected["held", None].items and expected["held", projected.held_by].items
    assert expected["revisions", projected.edited].earlier
    # Read again, the guesses of the first reads hold: the same answers.
    assert await every_read(on_cluster, projected) == expected


async def pointer(redis: Redis, keys: Keys, name: str) -> str:
    found = await redis.get(keys.active(name))
    assert isinstance(found, bytes), name
    return found.decode()


async def copy_namespace(redis: Redis, keys: Keys, name: str, old: str, new: str) -> None:
    """Every key of ``name``'s namespace ``old`` again under ``new`` (same partitions,
    so the same slots)."""
    old_base, new_base = keys.namespace(name, old).base, keys.namespace(name, new).base
    await copy_keys(redis, redis, f"{old_base}:*",
                    lambda key: key.replace(old_base.encode(), new_base.encode(), 1))


async def swap(redis: Redis, keys: Keys, name: str, change: Callable[[str], Awaitable[None]]
               ) -> tuple[str, str]:
    """A rebuild of ``name`` swapped in, as the write side does it: a new namespace (here
    a copy of the live one, then ``change``d), the old one fenced (its checkpoints
    deleted), then the pointer moved."""
    old = await pointer(redis, keys, name)
    new = f"{old.split('.', 1)[0]}.77.1"
    await copy_namespace(redis, keys, name, old, new)
    await change(new)
    for checkpoint in keys.namespace(name, old).checkpoints:
        await redis.delete(checkpoint)
    await redis.set(keys.active(name), new)
    return old, new


@pytest.mark.parametrize("on_cluster", [False, True], ids=["one-redis", "cluster"])
async def test_a_namespace_swapped_in_under_a_reader_is_found(
        on_cluster: bool, projected: Board, store: PostgresEventStore, redis: Redis,
        cluster: Redis, keys: Keys) -> None:
    client = cluster if on_cluster else redis
    on = reads(client, keys, store)
    tid = projected.threads[7]
    before = await on.thread_page(tid, 1)
    listing = await on.section_threads(before.thread.forum, 1)
    author = before.posts[0].post.author
    counter = f"{'g' if author.guest else 'm'}:{author.name.casefold()}"

    async def retitle(ns: str) -> None:
        await client.hset(keys.namespace("thread_page", ns).thread(tid), "title", "Renamed")

    async def recount(ns: str) -> None:
        await client.hset(keys.namespace("member_stats", ns).member(counter), "posts", 4321)

    # thread_page: the script's own slot is fenced; the listing's fetched summary too.
    old, new = await swap(client, keys, "thread_page", retitle)
    after = await on.thread_page(tid, 1)
    assert after.thread.title == "Renamed" and after.spaces[0] == new
    assert [p.post for p in after.posts] == [p.post for p in before.posts]
    relisted = await on.section_threads(before.thread.forum, 1)
    assert "Renamed" in [t.title for t in relisted.listing.threads]
    assert relisted.seen == listing.seen and relisted.spaces != listing.spaces
    # member_stats: only fetched beside the script (the authors' counters).
    await swap(client, keys, "member_stats", recount)
    again = await on.thread_page(tid, 1)
    assert again.posts[0].posts == b"4321" and again.spaces[1] != after.spaces[1]
    # A namespace fenced, its pointer moved a moment later (a swap between its two
    # steps): the read finds the same pointer again, waits a little, finds the new one.
    late = await on.thread_page(tid, 2)
    current = await pointer(client, keys, "thread_page")
    later = f"{current.split('.', 1)[0]}.78.1"
    await copy_namespace(client, keys, "thread_page", current, later)
    for checkpoint in keys.namespace("thread_page", current).checkpoints:
        await client.delete(checkpoint)
    read = asyncio.create_task(on.thread_page(tid, 2))
    await asyncio.sleep(0.01)
    await client.set(keys.active("thread_page"), later)
    moved = await read
    assert moved.posts == late.posts and moved.spaces[0] == later
    assert old != current


@pytest.mark.parametrize("on_cluster", [False, True], ids=["one-redis", "cluster"])
async def test_a_read_waiting_for_a_position_reads_the_pointers_again(
        on_cluster: bool, projected: Board, store: PostgresEventStore, redis: Redis,
        cluster: Redis, keys: Keys) -> None:
    """A namespace swapped out without a fence stays put: a read waiting for a position
    it will never reach there finds the new namespace by reading the pointer again."""
    client = cluster if on_cluster else redis
    on = reads(client, keys, store)
    tid = projected.threads[3]
    before = await on.thread_page(tid, 1)
    old = await pointer(client, keys, "thread_page")
    new = f"{old.split('.', 1)[0]}.79.1"
    await copy_namespace(client, keys, "thread_page", old, new)
    for checkpoint in keys.namespace("thread_page", old).checkpoints:
        await client.set(checkpoint, 1)  # behind, and live: no fence
    await client.set(keys.active("thread_page"), new)
    after = await on.thread_page(tid, 1, min_position=before.position)
    assert after.spaces[0] == new and after.posts == before.posts


async def test_a_page_evicted_on_the_cluster_is_rebuilt_there(
        projected: Board, store: PostgresEventStore, redis: Redis, cluster: Redis,
        keys: Keys) -> None:
    tid = projected.threads[8]
    expected = await reads(redis, keys, store).thread_page(tid, 2)
    ns = keys.namespace("thread_page", await pointer(cluster, keys, "thread_page"))
    posts, likes = ns.page_keys(tid)
    await cluster.delete(posts)
    await cluster.delete(likes)
    assert await reads(cluster, keys, store).thread_page(tid, 2) == expected
    assert await cluster.exists(posts) and await cluster.exists(likes)


async def test_reads_load_their_scripts_again_on_nodes_that_lost_them(
        projected: Board, store: PostgresEventStore, redis: Redis, cluster: Redis,
        keys: Keys) -> None:
    """A node restarted (or new) has none of the scripts: a read sent in one pipeline
    loads them on every node and sends again."""
    tid = projected.threads[7]
    on = reads(cluster, keys, store)
    expected = await reads(redis, keys, store).thread_page(tid, 1)
    assert await on.thread_page(tid, 1) == expected  # the guess is there
    every: Any = ClusterClient.PRIMARIES
    await cluster.execute_command(  # type: ignore[no-untyped-call]
        "SCRIPT FLUSH", target_nodes=every)
    sha = hashlib.sha1(scripts.FETCH.encode()).hexdigest()
    assert await cluster.execute_command(  # type: ignore[no-untyped-call]
        "SCRIPT EXISTS", sha, target_nodes=every) == [False]
    assert await on.thread_page(tid, 1) == expected
    assert await on.forums() == await reads(redis, keys, store).forums()


def test_the_board_spreads_over_partitions(projected: Board) -> None:
    """The board seeded here reads many partitions, not one or two by chance."""
    assert len({named_partition(slug) for slug in SECTIONS}) >= 4
    counters = [f"m:{n.casefold()}" for n in MEMBERS] + [f"g:{n.casefold()}" for n in GUESTS]
    assert len({named_partition(c) for c in counters}) >= 4
    assert len({thread_partition(t) for t in projected.threads}) >= 8
