"""The write side's use-cases over the in-memory store: load, decide, append, nudge."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import pytest

from events import ConcurrencyError, ForumEvent, type_name
from events.codec import encode
from events.members import MemberSuspended
from events.memory import InMemoryEventStore
from events.records import member_stream, thread_stream
from events.threads import PostAdded, PostQuoted, ThreadBumped
from service import commands as c
from service.domain.actors import OPERATOR, Actor
from service.domain.errors import (
    ConflictError,
    ForbiddenError,
    InvalidInputError,
    NameTakenError,
    NotAuthenticatedError,
    NotFoundError,
    QuoteNotFoundError,
    TooSoonError,
)
from service.handlers import CONFLICT_RETRIES, Handlers, RequestMeta, fingerprint
from service.notify import NullNotifier
from tests.builders import NOW, guest, member, moderator, quote, unique_key, unique_slug


class CountingStore(InMemoryEventStore):
    """Records each append call; can let another writer sneak in before the next appends."""

    def __init__(self) -> None:
        super().__init__()
        self.appends: list[tuple[str, int, list[ForumEvent]]] = []
        self.interlopers: list[Any] = []

    async def append(self, stream_id: str, expected_version: int,
                     events: Sequence[ForumEvent], **kwargs: Any) -> int:
        if self.interlopers:
            await self.interlopers.pop(0)()
        position = await super().append(stream_id, expected_version, events, **kwargs)
        self.appends.append((stream_id, expected_version, list(events)))
        return position


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self):
        return self.now


@pytest.fixture
def store() -> CountingStore:
    return CountingStore()


@pytest.fixture
def notifier() -> NullNotifier:
    return NullNotifier()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def handlers(store: CountingStore, notifier: NullNotifier, clock: Clock) -> Handlers:
    return Handlers(store, notifier, hash_password=lambda p: f"hashed:{p}", clock=clock)


def meta(key: str | None = None, body: str = "") -> RequestMeta:
    return RequestMeta(idempotency_key=key, fingerprint=fingerprint(b"k", "POST", "/x", body))


async def new_thread(handlers: Handlers, starter: Actor | None = None,
                     body: str = "first post") -> c.ThreadStartedResult:
    slug = unique_slug()
    await handlers.create_forum(c.CreateForum(slug=slug, title="History"), OPERATOR, meta())
    return await handlers.start_thread(slug, c.StartThread(title="Rome", body=body),
                                       starter or member(), meta())


async def test_create_forum_appends_one_event_and_nudges(handlers, store, notifier):
    slug = unique_slug()
    result = await handlers.create_forum(c.CreateForum(slug=slug, title="History"), OPERATOR,
                                         meta())
    assert (result.slug, result.title, result.position) == (slug, "History", 1)
    assert [(s, v, [type_name(e) for e in es]) for s, v, es in store.appends] == [
        (f"forum-{slug}", 0, ["forum_created"])]
    assert notifier.count == 1


async def test_creating_a_section_twice_is_a_conflict(handlers, store):
    cmd = c.CreateForum(slug=unique_slug(), title="History")
    await handlers.create_forum(cmd, OPERATOR, meta())
    with pytest.raises(ConflictError):
        await handlers.create_forum(cmd, OPERATOR, meta())
    assert await store.head() == 1


async def test_start_thread_appends_thread_started_and_post_one_in_one_append(handlers, store):
    result = await new_thread(handlers)
    stream, version, events = store.appends[-1]
    assert (stream, version) == (thread_stream(result.thread_id), 0)
    assert [type_name(e) for e in events] == ["thread_started", "post_added"]
    assert (result.number, result.page, result.position) == (1, 1, await store.head())
    assert events[1].post_id == result.post_id


async def test_start_thread_in_an_unknown_section_is_not_found_and_appends_nothing(
        handlers, store):
    with pytest.raises(NotFoundError):
        await handlers.start_thread("nowhere", c.StartThread(title="t", body="b"), member(),
                                    meta())
    assert await store.head() == 0


async def test_reply_appends_post_quotes_and_bump_in_one_append(handlers, store, notifier):
    started = await new_thread(handlers)
    second = await handlers.post_reply(started.thread_id, c.PostReply(body="second"),
                                       member(), meta())
    appends_before, nudges_before = len(store.appends), notifier.count
    body = quote(started.post_id) + quote(second.post_id) + "both of you"
    result = await handlers.post_reply(started.thread_id, c.PostReply(body=body), member(),
                                       meta())
    assert len(store.appends) == appends_before + 1
    assert notifier.count == nudges_before + 1
    stream, version, events = store.appends[-1]
    assert (stream, version) == (thread_stream(started.thread_id), 4)
    assert [type(e) for e in events] == [PostAdded, PostQuoted, PostQuoted, ThreadBumped]
    assert [e.quoted_post_id for e in events[1:3]] == [started.post_id, second.post_id]
    assert (result.number, result.page, result.post_id) == (3, 1, events[0].post_id)
    assert result.position == await store.head()


async def test_reply_page_follows_per_page(store, notifier):
    handlers = Handlers(store, notifier, hash_password=str, per_page=2)
    started = await new_thread(handlers)
    pages = [(await handlers.post_reply(started.thread_id, c.PostReply(body="r"), member(),
                                        meta())).page for _ in range(4)]
    assert pages == [1, 2, 2, 3]  # posts 2, 3, 4, 5


async def test_reply_to_unknown_thread_is_not_found_and_appends_nothing(handlers, store):
    with pytest.raises(NotFoundError):
        await handlers.post_reply(424242, c.PostReply(body="x"), member(), meta())
    assert await store.head() == 0


async def test_reply_quoting_another_threads_post_appends_nothing(handlers, store):
    one = await new_thread(handlers)
    two = await new_thread(handlers)
    head = await store.head()
    with pytest.raises(QuoteNotFoundError):
        await handlers.post_reply(two.thread_id, c.PostReply(body=quote(one.post_id) + "x"),
                                  member(), meta())
    assert await store.head() == head


async def test_idempotency_key_replay_returns_the_first_result_and_appends_nothing(
        handlers, store, notifier):
    started = await new_thread(handlers)
    key = unique_key()
    first = await handlers.post_reply(started.thread_id, c.PostReply(body="once"), member(),
                                      meta(key, "once"))
    head, appends, nudges = await store.head(), len(store.appends), notifier.count
    again = await handlers.post_reply(started.thread_id, c.PostReply(body="once"), member(),
                                      meta(key, "once"))
    assert again == first
    assert (await store.head(), len(store.appends), notifier.count) == (head, appends, nudges)


async def test_idempotency_key_with_a_different_body_is_invalid_input(handlers, store):
    started = await new_thread(handlers)
    key = unique_key()
    await handlers.post_reply(started.thread_id, c.PostReply(body="once"), member(),
                              meta(key, "once"))
    head = await store.head()
    with pytest.raises(InvalidInputError, match="Idempotency-Key"):
        await handlers.post_reply(started.thread_id, c.PostReply(body="twice"), member(),
                                  meta(key, "twice"))
    assert await store.head() == head


async def test_idempotency_key_replay_of_a_thread_start_returns_the_same_ids(handlers, store):
    slug = unique_slug()
    await handlers.create_forum(c.CreateForum(slug=slug, title="S"), OPERATOR, meta())
    key, cmd = unique_key(), c.StartThread(title="Rome", body="b")
    first = await handlers.start_thread(slug, cmd, member(), meta(key, "b"))
    head = await store.head()
    again = await handlers.start_thread(slug, cmd, member(), meta(key, "b"))
    assert again == first
    assert await store.head() == head


async def test_idempotency_race_answers_the_loser_with_the_winners_result(handlers, store):
    """Both requests passed the first lookup; the store refuses the second append."""
    started = await new_thread(handlers)
    key = unique_key()
    first = await handlers.post_reply(started.thread_id, c.PostReply(body="once"), member(),
                                      meta(key, "once"))
    head = await store.head()

    async def nothing_stored(_key: str) -> None:
        return None

    store.find_idempotent = nothing_stored  # type: ignore[method-assign]
    again = await handlers.post_reply(started.thread_id, c.PostReply(body="once"), member(),
                                      meta(key, "once"))
    assert again == first
    assert await store.head() == head
    with pytest.raises(InvalidInputError):
        await handlers.post_reply(started.thread_id, c.PostReply(body="other"), member(),
                                  meta(key, "other"))
    assert await store.head() == head


async def test_reply_retries_after_losing_a_race_and_takes_the_next_number(handlers, store):
    started = await new_thread(handlers)

    async def someone_else_replies() -> None:
        records = await store.read_stream(thread_stream(started.thread_id))
        # Append directly: the interloper's own append must not trigger another interloper.
        await InMemoryEventStore.append(store, thread_stream(started.thread_id), len(records), [
            PostAdded(occurred_at=NOW, actor="bob", thread_id=started.thread_id,
                      forum="history", post_id=999_999, number=2, author="bob", guest=False,
                      op=False, first_reply=True, body="sneaked in"),
        ])

    store.interlopers.append(someone_else_replies)
    result = await handlers.post_reply(started.thread_id, c.PostReply(body="mine"), member(),
                                       meta())
    assert result.number == 3
    records = await store.read_stream(thread_stream(started.thread_id))
    numbers = [r.event.number for r in records if isinstance(r.event, PostAdded)]
    assert numbers == [1, 2, 3]
    added = [r.event for r in records if isinstance(r.event, PostAdded)][-1]
    assert added.first_reply is False  # decided again on the fresh state


async def test_reply_gives_up_with_a_conflict_after_the_retry_budget(handlers, store):
    started = await new_thread(handlers)
    head = await store.head()

    async def always_conflict(stream_id: str, expected: int, events: Any, **kw: Any) -> int:
        raise ConcurrencyError(stream_id, expected)

    calls = 0

    async def counting(stream_id: str, expected: int, events: Any, **kw: Any) -> int:
        nonlocal calls
        calls += 1
        return await always_conflict(stream_id, expected, events, **kw)

    store.append = counting  # type: ignore[method-assign]
    with pytest.raises(ConflictError):
        await handlers.post_reply(started.thread_id, c.PostReply(body="x"), member(), meta())
    assert calls == CONFLICT_RETRIES
    assert await store.head() == head


async def test_concurrent_replies_in_one_process_take_turns_and_never_race(handlers, store):
    """Twenty replies to one thread at once, each append yielding to the others first:
    every one is decided on the state its predecessor left (no lost race, no reload),
    numbered 2..21, and the turn table is empty afterwards."""
    started = await new_thread(handlers)
    lost = 0
    append = store.append

    async def yielding(stream_id: str, expected: int, events: Any, **kw: Any) -> int:
        nonlocal lost
        await asyncio.sleep(0)  # let every other request load and decide meanwhile
        try:
            return await append(stream_id, expected, events, **kw)
        except ConcurrencyError:
            lost += 1
            raise

    store.append = yielding  # type: ignore[method-assign]
    results = await asyncio.gather(*(
        handlers.post_reply(started.thread_id, c.PostReply(body=f"reply {i}"), member(),
                            meta()) for i in range(20)))
    assert lost == 0
    assert sorted(r.number for r in results) == list(range(2, 22))  # type: ignore[union-attr]
    assert len(handlers.turns) == 0


async def test_guest_with_a_members_name_in_any_case_is_refused(handlers):
    await handlers.register(c.Register(name="Ann", password="correct horse"), meta())
    for name in ("Ann", "ann", "ANN", " aNn "):
        with pytest.raises(NameTakenError):
            await handlers.guest(name)
    assert (await handlers.guest("bob")).guest


async def test_posting_without_name_or_account_is_not_authenticated(handlers):
    with pytest.raises(NotAuthenticatedError):
        await handlers.guest(None)


async def test_register_twice_in_another_case_is_taken(handlers, store):
    await handlers.register(c.Register(name="Ann", password="correct horse"), meta())
    with pytest.raises(ConflictError):
        await handlers.register(c.Register(name="aNN", password="correct horse"), meta())
    assert await store.head() == 1


async def test_register_stores_a_hash_never_the_password(handlers, store):
    await handlers.register(c.Register(name="ann", password="correct horse"), meta())
    (record,) = await store.read_all(0, 10)
    assert await store.password_hash("member-ann") == "hashed:correct horse"
    assert b"correct horse" not in encode(record.event)  # neither it nor its hash


async def test_starter_bump_then_too_soon_then_allowed_a_day_later(handlers, store, clock):
    ann = member("ann")
    started = await new_thread(handlers, ann)
    await handlers.bump(started.thread_id, ann, meta())
    clock.now = NOW + timedelta(hours=2)
    with pytest.raises(TooSoonError) as refused:
        await handlers.bump(started.thread_id, ann, meta())
    assert refused.value.retry_after == 22 * 3600
    clock.now = NOW + timedelta(hours=24, seconds=1)
    await handlers.bump(started.thread_id, ann, meta())
    bumps = [r.event.reason for r in await store.read_stream(thread_stream(started.thread_id))
             if isinstance(r.event, ThreadBumped)]
    assert bumps == ["starter", "starter"]


async def test_bump_by_a_stranger_is_forbidden_and_by_a_moderator_allowed(handlers):
    started = await new_thread(handlers, member("ann"))
    with pytest.raises(ForbiddenError):
        await handlers.bump(started.thread_id, guest("visitor"), meta())
    for _ in range(3):
        await handlers.bump(started.thread_id, moderator(), meta())


async def test_bump_of_unknown_thread_is_not_found(handlers):
    with pytest.raises(NotFoundError):
        await handlers.bump(1234567, OPERATOR, meta())


async def test_edit_delete_and_like_go_through_the_thread_stream(handlers, store):
    ann, bob = member("ann"), member("bob")
    started = await new_thread(handlers, ann)
    await handlers.edit_post(started.thread_id, started.post_id, c.EditPost(body="better"),
                             ann, meta())
    await handlers.like(started.thread_id, started.post_id, bob, meta(), liked=True)
    with pytest.raises(ConflictError):
        await handlers.like(started.thread_id, started.post_id, bob, meta(), liked=True)
    await handlers.delete_post(started.thread_id, started.post_id, ann, meta())
    kinds = [type_name(r.event) for r in await store.read_stream(
        thread_stream(started.thread_id))]
    assert kinds == ["thread_started", "post_added", "post_edited", "post_liked",
                     "post_deleted"]


async def test_guest_cannot_take_a_members_name_in_fullwidth_letters() -> None:
    from events.memory import InMemoryEventStore
    from service import commands as c
    from service.domain.errors import NameTakenError
    from service.handlers import Handlers, RequestMeta
    from service.notify import NullNotifier

    handlers = Handlers(InMemoryEventStore(), NullNotifier(), hash_password=lambda p: "h")
    await handlers.register(c.Register(name="Kate", password="long enough"), RequestMeta())
    with pytest.raises(NameTakenError):
        await handlers.guest("\uff2b\uff41\uff54\uff45")  # "Kate" in fullwidth letters


async def test_look_alike_registrations_and_guest_names_are_refused():
    handlers = Handlers(InMemoryEventStore(), NullNotifier(), hash_password=lambda p: "h")
    await handlers.register(c.Register(name="alice", password="long enough"), RequestMeta())
    for name in ("al\u0131ce", "ALICE"):
        with pytest.raises(NameTakenError):
            await handlers.register(c.Register(name=name, password="long enough"),
                                    RequestMeta())
        with pytest.raises(NameTakenError):
            await handlers.guest(name, "a" * 32)


async def test_a_guest_name_is_held_by_the_returning_guest_that_used_it(clock):
    handlers = Handlers(InMemoryEventStore(), NullNotifier(), hash_password=str, clock=clock)
    mine, theirs = "a" * 32, "b" * 32
    assert (await handlers.guest("gus", mine)).guest_id == mine  # first write: no hold
    assert (await handlers.guest("gus", theirs)).guest_id == theirs
    await handlers.guest("gus", mine, returning=True)  # came back with its token: held
    with pytest.raises(NameTakenError, match="in use"):
        await handlers.guest("GUS", theirs)
    with pytest.raises(NameTakenError, match="in use"):
        await handlers.guest("gus", theirs, returning=True)
    clock.now += timedelta(days=31)
    assert (await handlers.guest("gus", theirs, returning=True)).guest_id == theirs


async def test_a_role_change_that_loses_a_race_reads_the_member_again(handlers, store):
    """A suspension lands between the role change's read and its append: the change is
    decided again on the member as they now are, and lands (it once retried the same
    stale version until it gave up)."""
    await handlers.register(c.Register(name="Ann", password="correct horse"), meta())
    stream = member_stream("Ann")

    async def a_moderator_suspends_ann() -> None:
        records = await store.read_stream(stream)
        await InMemoryEventStore.append(store, stream, len(records), [
            MemberSuspended(occurred_at=NOW, actor="mod", name="Ann",
                            until=NOW + timedelta(days=1), reason="spam")])

    store.interlopers.append(a_moderator_suspends_ann)
    result = await handlers.change_role("Ann", c.ChangeRole(role="moderator"), OPERATOR, meta())
    assert result.role == "moderator"
    kinds = [type(r.event).__name__ for r in await store.read_stream(stream)]
    assert kinds == ["MemberRegistered", "MemberSuspended", "MemberRoleChanged"]
