"""Hold for review through the write side's use-cases (in-memory store): which writes are
held, and a moderator's decision racing another writer."""

from __future__ import annotations

import pytest

from events.held import HeldPostApproved, PostHeld, ThreadHeld
from events.memory import InMemoryEventStore
from events.records import thread_stream
from events.threads import PostAdded
from service import commands as c
from service.domain.errors import ConflictError, ForbiddenError, NotFoundError
from service.handlers import Handlers, RequestMeta, fingerprint
from service.notify import NullNotifier
from tests.builders import guest, member, moderator, unique_key, unique_slug

LINK = "see https://spam.example"


async def setup(hold: str = "guest-links") -> tuple[Handlers, InMemoryEventStore, str]:
    store = InMemoryEventStore()
    handlers = Handlers(store, NullNotifier(), hash_password=str, hold=hold)
    slug = unique_slug()
    await handlers.create_forum(c.CreateForum(slug=slug, title="T"), moderator(),
                                RequestMeta())
    return handlers, store, slug


async def events(store: InMemoryEventStore, thread_id: int) -> list[object]:
    return [r.event for r in await store.read_stream(thread_stream(thread_id))]


async def test_the_policy_decides_which_writes_are_held():
    handlers, store, slug = await setup()
    started = await handlers.start_thread(slug, c.StartThread(title="T", body="b"),
                                          guest(), RequestMeta())
    assert isinstance(started, c.ThreadStartedResult)
    tid = started.thread_id
    held = await handlers.post_reply(tid, c.PostReply(body=LINK), guest("gus"), RequestMeta())
    assert isinstance(held, c.HeldResult) and held.held and held.thread_id == tid
    assert isinstance((await events(store, tid))[-1], PostHeld)
    assert await store.locate_held(held.held_id) == tid
    assert await store.locate_post(held.held_id) is None
    published = await handlers.post_reply(tid, c.PostReply(body=LINK), member(),
                                          RequestMeta())
    assert isinstance(published, c.ReplyResult) and published.number == 2
    new = await handlers.start_thread(slug, c.StartThread(title="T", body=LINK), guest(),
                                      RequestMeta())
    assert isinstance(new, c.HeldResult)
    (first,) = await events(store, new.thread_id)
    assert isinstance(first, ThreadHeld)
    assert await store.locate_held(new.held_id) == new.thread_id
    with pytest.raises(NotFoundError):
        await handlers.post_reply(new.thread_id, c.PostReply(body="x"), member(),
                                  RequestMeta())
    with pytest.raises(NotFoundError):
        await handlers.bump(new.thread_id, moderator(), RequestMeta())

    off, _, off_slug = await setup("off")
    result = await off.start_thread(off_slug, c.StartThread(title="T", body=LINK), guest(),
                                    RequestMeta())
    assert isinstance(result, c.ThreadStartedResult)
    with pytest.raises(ValueError, match="FORUM_HOLD"):
        await setup("sometimes")


async def test_an_approval_that_loses_a_race_with_a_reply_takes_the_number_after_it():
    handlers, store, slug = await setup()
    tid = (await handlers.start_thread(slug, c.StartThread(title="T", body="b"), member(),
                                       RequestMeta())).thread_id
    held = await handlers.post_reply(tid, c.PostReply(body=LINK), guest(), RequestMeta())
    assert isinstance(held, c.HeldResult)
    mod = moderator()
    with pytest.raises(ForbiddenError):
        await handlers.decide_held(held.held_id, member(), RequestMeta(), approve=True)
    with pytest.raises(NotFoundError):
        await handlers.decide_held(123456789, mod, RequestMeta(), approve=True)

    appended = store.append
    raced = False
    # The racing reply comes from another API process (its own Handlers): this one's
    # writers of the thread take turns and could not race each other.
    other = Handlers(store, NullNotifier(), hash_password=str, hold="guest-links")

    async def append_after_a_reply(stream, expected, new, **kwargs):  # type: ignore[no-untyped-def]
        nonlocal raced
        if not raced and any(isinstance(e, HeldPostApproved) for e in new):
            raced = True
            await other.post_reply(tid, c.PostReply(body="quick"), member(), RequestMeta())
        return await appended(stream, expected, new, **kwargs)

    store.append = append_after_a_reply  # type: ignore[method-assign]
    result = await handlers.decide_held(held.held_id, mod, RequestMeta(), approve=True)
    assert raced and isinstance(result, c.ApprovedResult)
    assert (result.post_id, result.number) == (held.held_id, 3)
    numbers = [e.number for e in await events(store, tid) if isinstance(e, PostAdded)]
    assert numbers == [1, 2, 3]
    with pytest.raises(ConflictError):
        await handlers.decide_held(held.held_id, mod, RequestMeta(), approve=False)


async def test_a_decision_replayed_with_its_idempotency_key_answers_the_first_answer():
    handlers, _store, slug = await setup()
    tid = (await handlers.start_thread(slug, c.StartThread(title="T", body="b"), member(),
                                       RequestMeta())).thread_id
    held = await handlers.post_reply(tid, c.PostReply(body=LINK), guest(), RequestMeta())
    key = unique_key()
    meta = RequestMeta(idempotency_key=key, fingerprint=fingerprint(b"k", "POST", "/r", key))
    first = await handlers.decide_held(held.held_id, moderator(), meta, approve=False)
    again = await handlers.decide_held(held.held_id, moderator(), meta, approve=False)
    assert again == first and isinstance(again, c.RejectedResult)
