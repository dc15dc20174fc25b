"""The event store contract, run against both stores: PostgreSQL (real) and in-memory."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from events import (
    ConcurrencyError,
    DuplicateRequestError,
    EventStore,
    IdempotentResult,
    Metadata,
    type_name,
)
from events.memory import InMemoryEventStore
from events.records import PostLocation, member_stream, thread_stream
from events.threads import PostAdded
from service import commands as c
from service.domain.actors import OPERATOR
from service.handlers import Handlers, RequestMeta
from service.notify import NullNotifier
from tests.builders import (
    forum_created,
    member,
    member_registered,
    new_id,
    one_of_each,
    post_added,
    thread_started,
    unique_key,
    unique_name,
    unique_slug,
)


class Settled:
    """A store whose appends return once a reader of the global log can see them.

    PostgreSQL's log is read below the oldest transaction running anywhere in the cluster
    (invariant 2), so on a server shared with other test runs a fresh append may stay
    invisible for a moment; these tests are about the contract, not about that wait."""

    def __init__(self, inner: EventStore) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def append(self, *args: Any, **kwargs: Any) -> int:
        position = await self.inner.append(*args, **kwargs)
        deadline = time.monotonic() + 20
        while await self.inner.head() < position:
            assert time.monotonic() < deadline, "the append never became readable"
            await asyncio.sleep(0.005)
        return position


@pytest.fixture(params=["memory", "postgres"])
def any_store(request: pytest.FixtureRequest) -> EventStore:
    if request.param == "memory":
        return InMemoryEventStore()
    return Settled(request.getfixturevalue("store"))  # type: ignore[return-value]


def thread_events(n_posts: int = 1, thread_id: int | None = None) -> list:  # type: ignore[type-arg]
    thread_id = thread_id or new_id()
    started = thread_started(thread_id)
    return [started, *(post_added(thread_id, i) for i in range(1, n_posts + 1))]


def stream() -> str:
    return thread_stream(new_id())


def idem(key: str, response: bytes = b'{"answer":1}', fp: str = "fp") -> IdempotentResult:
    return IdempotentResult(key=key, fingerprint=fp, response=response, position=0)


# -- appending and reading ------------------------------------------------------------

async def test_an_empty_log_has_head_zero_and_reads_nothing(any_store):
    assert await any_store.head() == 0
    assert await any_store.read_all(0, 100) == []
    assert await any_store.read_stream(stream()) == []


async def test_append_to_a_new_stream_then_read_it_back(any_store):
    s, events = stream(), thread_events(3)
    position = await any_store.append(s, 0, events)
    records = await any_store.read_stream(s)
    assert [r.event for r in records] == events
    assert [r.version for r in records] == [1, 2, 3, 4]
    assert {r.stream_id for r in records} == {s}
    assert records[-1].position == position
    assert await any_store.head() == position
    assert all(r.recorded_at.utcoffset() is not None for r in records)


async def test_every_event_type_survives_the_store(any_store):
    events = one_of_each()
    s = stream()
    await any_store.append(s, 0, events)
    assert [r.event for r in await any_store.read_stream(s)] == events
    assert [r.event for r in await any_store.read_all(0, 100)] == events


async def test_read_all_returns_the_global_log_in_position_order(any_store):
    a, b = stream(), stream()
    await any_store.append(a, 0, thread_events(1))
    await any_store.append(b, 0, thread_events(2))
    await any_store.append(a, 2, [post_added(1, 2)])
    records = await any_store.read_all(0, 100)
    positions = [r.position for r in records]
    assert positions == sorted(positions) and len(set(positions)) == len(positions)
    assert [(r.stream_id, r.version) for r in records] == [
        (a, 1), (a, 2), (b, 1), (b, 2), (b, 3), (a, 3)]
    assert await any_store.head() == positions[-1]


async def test_read_all_pages_with_after_and_limit(any_store):
    for _ in range(5):
        await any_store.append(stream(), 0, thread_events(2))
    everything = await any_store.read_all(0, 1000)
    assert len(everything) == 15
    paged, after = [], 0
    while batch := await any_store.read_all(after, 4):
        assert len(batch) <= 4
        paged.extend(batch)
        after = batch[-1].position
    assert paged == everything
    assert await any_store.read_all(everything[-1].position, 10) == []
    assert await any_store.read_all(everything[6].position, 3) == everything[7:10]


async def test_versions_have_no_holes_across_appends(any_store):
    s, thread_id = stream(), new_id()
    version = 0
    for size in (2, 1, 3, 1, 5):
        events = [post_added(thread_id, version + i + 1) for i in range(size)]
        await any_store.append(s, version, events)
        version += size
    assert [r.version for r in await any_store.read_stream(s)] == list(range(1, version + 1))


async def test_metadata_is_kept_with_every_event_of_an_append(any_store):
    s = stream()
    meta = Metadata(correlation_id="corr-1", idempotency_key="key-1")
    await any_store.append(s, 0, thread_events(1), metadata=meta)
    assert {r.metadata for r in await any_store.read_stream(s)} == {meta}
    s2 = stream()
    await any_store.append(s2, 0, thread_events(1))
    assert {r.metadata for r in await any_store.read_stream(s2)} == {Metadata()}


async def test_empty_append_is_refused(any_store):
    with pytest.raises(ValueError, match="nothing"):
        await any_store.append(stream(), 0, [])


# -- optimistic concurrency -----------------------------------------------------------

async def test_append_at_a_stale_version_is_a_concurrency_error_and_appends_nothing(any_store):
    s = stream()
    await any_store.append(s, 0, thread_events(1))
    head = await any_store.head()
    for stale in (0, 1):
        with pytest.raises(ConcurrencyError) as refused:
            await any_store.append(s, stale, [post_added(1, 2)])
        assert refused.value.stream == s and refused.value.expected == stale
    assert await any_store.head() == head
    assert len(await any_store.read_stream(s)) == 2


async def test_append_ahead_of_the_stream_is_a_concurrency_error(any_store):
    s = stream()
    with pytest.raises(ConcurrencyError):
        await any_store.append(s, 3, thread_events(1))
    await any_store.append(s, 0, thread_events(1))
    with pytest.raises(ConcurrencyError):
        await any_store.append(s, 5, [post_added(1, 2)])
    assert await any_store.head() == (await any_store.read_all(0, 10))[-1].position


async def test_a_concurrency_error_on_one_stream_leaves_others_writable(any_store):
    a, b = stream(), stream()
    await any_store.append(a, 0, thread_events(1))
    with pytest.raises(ConcurrencyError):
        await any_store.append(a, 0, thread_events(1))
    await any_store.append(b, 0, thread_events(1))
    assert len(await any_store.read_all(0, 100)) == 4


# -- idempotency ----------------------------------------------------------------------

async def test_idempotent_append_is_recorded_with_its_position(any_store):
    key = unique_key()
    position = await any_store.append(stream(), 0, thread_events(1),
                                      idempotency=idem(key, b'{"first":true}'))
    found = await any_store.find_idempotent(key)
    assert found is not None
    assert (found.key, found.fingerprint, found.response, found.position) == (
        key, "fp", b'{"first":true}', position)
    assert await any_store.find_idempotent(unique_key()) is None


async def test_duplicate_idempotency_key_raises_and_appends_nothing(any_store):
    key = unique_key()
    first = await any_store.append(stream(), 0, thread_events(1),
                                   idempotency=idem(key, b'{"first":true}', "fp1"))
    head = await any_store.head()
    count = len(await any_store.read_all(0, 100))
    for target in (stream(), stream()):  # another stream, and a brand new one
        with pytest.raises(DuplicateRequestError) as duplicate:
            await any_store.append(target, 0, thread_events(1),
                                   idempotency=idem(key, b'{"second":true}', "fp2"))
        assert duplicate.value.key == key
        assert duplicate.value.fingerprint == "fp1"
        assert duplicate.value.response == b'{"first":true}'
        assert duplicate.value.position == first
        assert await any_store.read_stream(target) == []
    assert await any_store.head() == head
    assert len(await any_store.read_all(0, 100)) == count


async def test_concurrent_appends_with_one_idempotency_key_append_once(any_store):
    key = unique_key()
    results = await asyncio.gather(
        *(any_store.append(stream(), 0, thread_events(1), idempotency=idem(key))
          for _ in range(8)),
        return_exceptions=True,
    )
    won = [r for r in results if isinstance(r, int)]
    lost = [r for r in results if isinstance(r, DuplicateRequestError)]
    assert len(won) == 1 and len(lost) == 7, results
    assert all(d.position == won[0] for d in lost)
    assert len(await any_store.read_all(0, 100)) == 2


# -- credentials: stored with a registration's append, never in it ----------------------

async def test_a_credential_is_stored_with_its_append_and_only_if_the_append_is(any_store):
    name = unique_name("ann")
    s = member_stream(name)
    registrations = [any_store.append(s, 0, [member_registered(name)],
                                      password_hash=f"$argon2id$h{i}") for i in range(4)]
    results = await asyncio.gather(*registrations, return_exceptions=True)
    won = [i for i, r in enumerate(results) if isinstance(r, int)]
    assert len(won) == 1 and all(isinstance(r, ConcurrencyError)
                                 for i, r in enumerate(results) if i != won[0]), results
    assert await any_store.password_hash(s) == f"$argon2id$h{won[0]}"  # the winner's
    with pytest.raises(ConcurrencyError):  # a stale append writes no credential either
        await any_store.append(s, 0, [member_registered(name)], password_hash="stale")
    key = unique_key()
    other = member_stream(unique_name("bob"))
    await any_store.append(stream(), 0, thread_events(1), idempotency=idem(key))
    with pytest.raises(DuplicateRequestError):
        await any_store.append(other, 0, [member_registered()], idempotency=idem(key),
                               password_hash="replayed")
    assert await any_store.password_hash(s) == f"$argon2id$h{won[0]}"
    assert await any_store.password_hash(other) is None
    assert await any_store.password_hash("member-\x00") is None
    assert not [r for r in await any_store.read_all(0, 100) if "$argon2id$" in str(r)]


# -- ids and lookups ------------------------------------------------------------------

async def test_next_ids_are_fresh_and_distinct(any_store):
    ids = await any_store.next_ids("post", 5) + await any_store.next_ids("post")
    assert len(set(ids)) == 6 and all(i > 0 for i in ids)
    assert len(await any_store.next_ids("thread", 3)) == 3


async def test_locate_post_finds_the_thread_a_post_was_added_to_and_its_number(any_store):
    thread_id = new_id()
    s = thread_stream(thread_id)
    post = post_added(thread_id, 1)
    await any_store.append(s, 0, [thread_started(thread_id), post])
    await any_store.append(stream(), 0, [forum_created()])
    assert await any_store.locate_post(post.post_id) == PostLocation(thread_id, 1)
    assert await any_store.locate_post(new_id()) is None


# -- concurrency: racing writers on one stream ----------------------------------------

async def test_two_writers_with_the_same_expected_version_never_both_win(any_store):
    s, thread_id = stream(), new_id()
    await any_store.append(s, 0, [thread_started(thread_id), post_added(thread_id, 1)])
    version = 2
    for _ in range(40):
        results = await asyncio.gather(
            *(any_store.append(s, version, [post_added(thread_id, version)]) for _ in range(2)),
            return_exceptions=True,
        )
        won = [r for r in results if isinstance(r, int)]
        lost = [r for r in results if isinstance(r, ConcurrencyError)]
        assert (len(won), len(lost)) == (1, 1), results
        version += 1
    records = await any_store.read_stream(s)
    assert [r.version for r in records] == list(range(1, version + 1))


async def test_many_writers_racing_on_one_stream_exactly_one_wins_each_round(any_store):
    s, thread_id = stream(), new_id()
    await any_store.append(s, 0, [thread_started(thread_id)])
    for version in range(1, 16):
        results = await asyncio.gather(
            *(any_store.append(s, version, [post_added(thread_id, version)])
              for _ in range(6)),
            return_exceptions=True,
        )
        assert sum(isinstance(r, int) for r in results) == 1, results
        assert sum(isinstance(r, ConcurrencyError) for r in results) == 5, results
    assert len(await any_store.read_stream(s)) == 16


def _handlers(store: EventStore) -> Handlers:
    return Handlers(store, NullNotifier(), hash_password=str)


async def _thread(handlers: Handlers) -> int:
    slug = unique_slug()
    await handlers.create_forum(c.CreateForum(slug=slug, title="S"), OPERATOR, RequestMeta())
    started = await handlers.start_thread(slug, c.StartThread(title="T", body="first"),
                                          member(), RequestMeta())
    return started.thread_id


async def test_concurrent_repliers_all_succeed_with_consecutive_post_numbers(any_store):
    handlers = _handlers(any_store)
    thread_id = await _thread(handlers)
    n = 8  # at most CONFLICT_RETRIES: a writer loses at most once per other writer's win
    results = await asyncio.gather(*(
        handlers.post_reply(thread_id, c.PostReply(body=f"reply {i}"), member(), RequestMeta())
        for i in range(n)))
    assert sorted(r.number for r in results) == list(range(2, n + 2))
    assert len({r.post_id for r in results}) == n
    records = await any_store.read_stream(thread_stream(thread_id))
    posts = [r.event for r in records if isinstance(r.event, PostAdded)]
    assert [p.number for p in posts] == list(range(1, n + 2))
    assert [p.first_reply for p in posts] == [False, True] + [False] * (n - 1)
    assert {p.post_id: p.number for p in posts[1:]} == {r.post_id: r.number for r in results}
    assert [r.version for r in records] == list(range(1, len(records) + 1))
    kinds = [type_name(r.event) for r in records]
    assert kinds == ["thread_started", "post_added"] + ["post_added", "thread_bumped"] * n


async def test_repliers_beyond_the_retry_budget_win_or_get_409_and_never_share_a_number(
        any_store):
    from service.domain.errors import ConflictError

    handlers = _handlers(any_store)
    thread_id = await _thread(handlers)
    results = await asyncio.gather(*(
        handlers.post_reply(thread_id, c.PostReply(body=f"reply {i}"), member(), RequestMeta())
        for i in range(24)), return_exceptions=True)
    ok = [r for r in results if not isinstance(r, BaseException)]
    assert all(isinstance(r, ConflictError) for r in results if isinstance(r, BaseException))
    assert sorted(r.number for r in ok) == list(range(2, len(ok) + 2))
    posts = [r.event for r in await any_store.read_stream(thread_stream(thread_id))
             if isinstance(r.event, PostAdded)]
    assert [p.number for p in posts] == list(range(1, len(ok) + 2))


async def test_the_store_names_the_transaction_that_holds_the_log_back(pool):
    from events.postgres import PostgresEventStore

    store = PostgresEventStore(pool)
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_current_xact_id()")
        holder_pid = conn.get_server_pid()
        holder = await store.horizon_holder()
        assert holder is not None
        # On a shared cluster an older transaction may hold it instead; ours must then
        # not be the oldest, which is also what the reader sees.
        if holder["pid"] == holder_pid:
            assert holder["seconds"] >= 0
