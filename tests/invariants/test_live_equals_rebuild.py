"""Invariant 4: projections are functions of the events alone, so live projection (batch by
batch, interleaved with writes at any point) writes the same bytes as a rebuild from the log.

Hypothesis draws sequences of commands (sections, members, guest and member threads,
replies quoting earlier posts, bumps, edits, deletes, likes, locks, moves, time passing,
guests' posts with links held for review, and moderators approving or rejecting them)
that run through ``service.handlers.Handlers`` on the real PostgreSQL store, with live
catch-up passes of small random batch sizes at random points. At the end the live read
models must equal, key by key and byte by byte, a rebuild of the whole log.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis.asyncio import Redis

from events import EventStore
from events.postgres import PostgresEventStore, create_pool
from service import commands as c
from service.domain.actors import OPERATOR, Actor
from service.domain.errors import DomainError
from service.handlers import Handlers, RequestMeta
from service.notify import NullNotifier
from tests.conftest import PG_URL, _create_database, _drop_database, _with_db, unique
from tests.readmodel_dump import assert_equals_rebuild, drop_prefix, settle
from workers.apply import Target
from workers.catch_up import Progress, catch_up
from workers.live import Live
from workers.projections import PROJECTIONS
from workers.readmodels import Keys

META = RequestMeta()
GUESTS = ("ann", "Bob", "cleo")
MEMBERS = ("Dora", "eli")
MODERATOR = Actor("mira", "moderator")
STEPS = (timedelta(minutes=1), timedelta(hours=3), timedelta(days=1), timedelta(days=40),
         timedelta(days=200))
SNIPPETS = ("plain words", "[b]bold[/b] and [i]italic[/i]", "<script>alert(1)</script> & co",
            "[url=https://example.org]a link[/url]", "[quote]unattributed[/quote] yes",
            "üñíçødé — “quotes” ✓", "line one\nline two\r\nline three", "[b]unclosed")


@dataclass
class ThreadInfo:
    thread_id: int
    starter: Actor
    posts: list[tuple[int, Actor]] = field(default_factory=list)


class World:
    """Drives the write side with commands named by small integers, so the same driver
    serves Hypothesis (which shrinks integers well) and seeded random workloads.
    Commands the domain refuses are simply skipped."""

    OPS = ("reply", "start", "reply", "edit", "reply", "like", "bump", "reply", "delete",
           "unlike", "lock", "move", "unlock", "time", "start", "forum", "register",
           "approve", "spam", "reject", "approve")

    def __init__(self, store: EventStore, start: datetime | None = None) -> None:
        self.now = start or datetime(2011, 6, 8, 9, 0, tzinfo=UTC)
        self.handlers = Handlers(store, NullNotifier(), hash_password=lambda p: "plain:" + p,
                                 clock=lambda: self.now)
        self.forums: list[str] = []
        self.members: list[Actor] = []
        self.threads: list[ThreadInfo] = []
        # posts held for review (a guest's post with a link, the default policy): held id
        # -> the thread (None: a held new thread) and its author
        self.held: dict[int, tuple[ThreadInfo | None, Actor, c.HeldResult]] = {}
        self.decided = 0
        self.applied = 0
        self.refused = 0

    @property
    def people(self) -> list[Actor]:
        return [*(Actor(n, "guest") for n in GUESTS), *self.members, MODERATOR]

    @staticmethod
    def _pick(items: Sequence, n: int):  # type: ignore[no-untyped-def]
        return items[n % len(items)]

    def _quotes(self, thread: ThreadInfo, n: int, before: int | None = None) -> str:
        """``n % 3`` quotes of earlier posts of ``thread`` (only those before number
        ``before`` when given)."""
        candidates = thread.posts[: before - 1] if before is not None else thread.posts
        out = []
        for k in range(n % 3 if candidates else 0):
            post_id, author = candidates[(n // 3 + 7 * k) % len(candidates)]
            out.append(f"[quote={author.name} post={post_id}]quoted text {k}[/quote]\n")
        return "".join(out)

    async def do(self, op: str, a: int, b: int, c_: int, text: str) -> None:
        self.now += timedelta(seconds=1 + a % 7)
        try:
            await self._do(op, a, b, c_, text)
            self.applied += 1
        except DomainError:
            self.refused += 1

    async def _do(self, op: str, a: int, b: int, n: int, text: str) -> None:
        h = self.handlers
        if op == "time":
            self.now += self._pick(STEPS, a)
        elif op == "forum":
            slug = f"s{a % 3}"
            await h.create_forum(c.CreateForum(slug=slug, title=text or slug), OPERATOR, META)
            self.forums.append(slug)
        elif op == "register":
            name = self._pick(MEMBERS, a)
            await h.register(c.Register(name=name, password="password-" + name), META)
            self.members.append(Actor(name, "member"))
        elif op == "start" and self.forums:
            who = self._pick(self.people, b)
            result = await h.start_thread(self._pick(self.forums, a), c.StartThread(
                title=text or "a title", body=self._pick(SNIPPETS, n) + text), who, META)
            if isinstance(result, c.HeldResult):
                self.held[result.held_id] = (None, who, result)
            else:
                self.threads.append(ThreadInfo(result.thread_id, who,
                                               [(result.post_id, who)]))
        elif op in ("approve", "reject") and self.held:
            await self._decide(op, a)
        elif not self.threads:
            return
        else:
            await self._thread_op(op, self._pick(self.threads, a), b, n, text)

    async def _thread_op(self, op: str, t: ThreadInfo, b: int, n: int, text: str) -> None:
        h = self.handlers
        post_id, author = self._pick(t.posts, b)
        number = t.posts.index((post_id, author)) + 1
        # the post's author when a member, else the moderator (guests cannot edit)
        changer = author if (author.role == "member" and n % 2) else MODERATOR
        if op in ("reply", "spam"):
            who = self._pick(self.people, b)
            body = self._quotes(t, n) + (text or self._pick(SNIPPETS, n))
            if op == "spam":  # held when a guest writes it
                body += " www.example.com"
            result = await h.post_reply(t.thread_id, c.PostReply(body=body), who, META)
            if isinstance(result, c.HeldResult):
                self.held[result.held_id] = (t, who, result)
            else:
                t.posts.append((result.post_id, who))
        elif op == "bump":
            who = t.starter if n % 3 else MODERATOR
            await h.bump(t.thread_id, who, META)
        elif op == "edit":
            body = self._quotes(t, n, before=number) + "edited: " + (text or "x")
            await h.edit_post(t.thread_id, post_id, c.EditPost(body=body), changer, META)
        elif op == "delete":
            await h.delete_post(t.thread_id, post_id, changer, META)
        elif op in ("like", "unlike") and self.members:
            liker = self._pick(self.members, n)
            await h.like(t.thread_id, post_id, liker, META, liked=op == "like")
        elif op in ("lock", "unlock"):
            await h.set_locked(t.thread_id, MODERATOR, META, locked=op == "lock")
        elif op == "move" and self.forums:
            await h.move(t.thread_id, c.MoveThread(forum=self._pick(self.forums, n)),
                         MODERATOR, META)

    async def _decide(self, op: str, a: int) -> None:
        held_id = self._pick(sorted(self.held), a)
        thread, author, held = self.held.pop(held_id)
        result = await self.handlers.decide_held(held_id, MODERATOR, META,
                                                 approve=op == "approve")
        self.decided += 1
        if isinstance(result, c.RejectedResult):
            return
        if thread is None:
            self.threads.append(ThreadInfo(held.thread_id, author, [(held_id, author)]))
        else:
            assert result.number == len(thread.posts) + 1  # the next number: no gap
            thread.posts.append((held_id, author))

    async def seed(self) -> None:
        """Sections, members and two threads, so random commands have something to act
        on from the start."""
        for i, op in enumerate(("forum", "forum", "register", "register")):
            await self.do(op, i, 0, 0, "")
        await self.do("start", 0, 0, 0, "a guest's thread")
        await self.do("start", 1, 3, 1, "a member's thread")
        assert len(self.threads) == 2 and len(self.members) == 2

    async def random_commands(self, rng: random.Random, count: int) -> None:
        for _ in range(count):
            await self.do(rng.choice(self.OPS), rng.randrange(1000), rng.randrange(1000),
                          rng.randrange(1000), rng.choice(("", "", "words", "Ω [b]x[/b]")))


async def live_targets(redis: Redis, keys: Keys) -> list[Target]:
    names = list(PROJECTIONS)
    pointers = await redis.mget(*(keys.active(n) for n in names))
    assert all(pointers), f"a projection has no live namespace: {pointers}"
    return [Target(PROJECTIONS[n], keys.namespace(n, p.decode()))
            for n, p in zip(names, pointers, strict=True)]


async def one_batch(store: EventStore, redis: Redis, targets: list[Target], *, batch: int
                    ) -> Progress:
    """One batch of a catch-up pass, as a delivery that stops early would leave it (a
    deadline already past lets only the first batch be read)."""
    return await catch_up(store, redis, targets, batch=batch, deadline=0.0)


async def activate(store: EventStore, redis: Redis, keys: Keys) -> None:
    """Give every projection a live namespace while the log is still empty, so everything
    after is projected live (a worker's first tick does the same)."""
    assert await store.head() == 0
    await Live(store, redis, keys).tick()
    await live_targets(redis, keys)


@asynccontextmanager
async def fresh_store(template: str) -> AsyncIterator[PostgresEventStore]:
    name = await _create_database(template)
    pool = await create_pool(_with_db(PG_URL, name), min_size=1, max_size=8)
    try:
        yield PostgresEventStore(pool)
    finally:
        await pool.close()
        await _drop_database(name)


COMMAND = st.tuples(
    st.sampled_from((*World.OPS, "project")),
    st.integers(0, 999), st.integers(0, 999), st.integers(0, 999),
    st.one_of(st.just(""), st.sampled_from(SNIPPETS), st.text(max_size=12)),
)


@pytest.mark.slow
@settings(max_examples=20, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture,
                                 HealthCheck.too_slow])
@given(commands=st.lists(COMMAND, min_size=10, max_size=60))
async def test_live_projection_equals_a_rebuild(commands, template_database, redis):
    async with fresh_store(template_database) as store:
        keys = Keys(unique("forumtest-prop-"))
        try:
            await activate(store, redis, keys)
            world = World(store)
            await world.seed()
            for op, a, b, n, text in commands:
                if op == "project":  # a live pass: a few batches of a small random size
                    for _ in range(1 + b % 4):
                        await one_batch(store, redis, await live_targets(redis, keys),
                                       batch=1 + a % 17)
                else:
                    await world.do(op, a, b, n, text)
            head = await settle(store, redis, keys, batch=1 + len(commands) % 11)
            live = await assert_equals_rebuild(store, redis, keys)
            assert min(int(value[1]) for key, value in live.items()  # type: ignore[index]
                       if key.startswith("thread_page:") and key.endswith(":checkpoint")
                       ) >= head
        finally:
            await drop_prefix(redis, keys.prefix)


async def test_a_long_random_history_projected_live_equals_a_rebuild(store, redis, keys):
    """One longer, seeded history (a few hundred commands) with passes of varying size."""
    rng = random.Random(20240608)
    await activate(store, redis, keys)
    world = World(store)
    await world.seed()
    for _ in range(12):
        await world.random_commands(rng, 30)
        for _ in range(rng.randrange(1, 4)):
            await one_batch(store, redis, await live_targets(redis, keys),
                           batch=rng.randrange(1, 40))
    await world.do("start", 0, 0, 0, "www.example.com")  # a guest's: still pending
    await settle(store, redis, keys, batch=25)
    assert world.applied > 200, (world.applied, world.refused)
    assert world.decided > 5 and world.held, (world.decided, len(world.held))
    live = await assert_equals_rebuild(store, redis, keys)
    assert live["held:*:{p0-0}:held:pending"][1], "the held queue was compared too"
    assert sum(1 for k in live if _is_posts(k)) \
        == len(world.threads)


def _is_posts(key: str) -> bool:
    """A thread page's list of posts, in a dump of the read models."""
    return key.startswith("thread_page:*:") and ":t:" in key and key.endswith(":posts")
