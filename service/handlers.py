"""Use-cases of the write side: load a stream, fold it, decide, append, nudge.

Each handler returns a ``Result`` carrying the log position its append reached. Requests
with an ``Idempotency-Key`` are answered from the first request's stored result when the
same key comes again with the same request; the append and that record are one statement,
so a replay can never half-happen.
"""

from __future__ import annotations

import hashlib
import secrets
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TypeVar, cast

import msgspec

from events import (
    ConcurrencyError,
    DuplicateRequestError,
    EventStore,
    ForumEvent,
    IdempotentResult,
    Metadata,
)
from events.members import MemberRegistered, MemberSuspended
from events.records import forum_stream, member_stream, thread_stream
from service import commands as c
from service import held_handlers
from service.auth import Offloader
from service.domain import members, review, sections, threads
from service.domain.actors import Actor
from service.domain.errors import (
    ConflictError,
    InvalidInputError,
    NameTakenError,
    NotAuthenticatedError,
    NotFoundError,
)
from service.domain.text import clean_name, normal_name
from service.namestore import InMemoryNameStore, NameStore
from service.notify import Notifier

R = TypeVar("R", bound=c.Result)
_GUEST_NAME_IN_USE = (
    "this guest name is in use by another guest; choose another name (a guest name stays "
    "with the guest that used it, identified by its guest token, for a while after its "
    "last use)"
)
CONFLICT_RETRIES = 8
THREAD_CACHE_SIZE = 512  # folded threads kept per API process (see _load_thread)
GUEST_NAME_HOLD = timedelta(days=30)


class RequestMeta(msgspec.Struct, frozen=True, kw_only=True):
    """What the HTTP layer knows of a write request besides its body."""

    idempotency_key: str | None = None
    fingerprint: str = ""
    correlation_id: str | None = None


def fingerprint(*parts: bytes | str) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode() if isinstance(part, str) else part)
        digest.update(b"\0")
    return digest.hexdigest()


def page_of(number: int, per_page: int) -> int:
    return (number - 1) // per_page + 1


class Handlers:
    def __init__(
        self,
        store: EventStore,
        notifier: Notifier,
        *,
        hash_password: Callable[[str], str],
        verify_password: Callable[[str | None, str], bool] = lambda stored, given: False,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        per_page: int = 25,
        hold: str = review.DEFAULT_POLICY,
        names: NameStore | None = None,
        guest_name_hold: timedelta = GUEST_NAME_HOLD,
        guest_key: bytes | None = None,
    ) -> None:
        self.store = store
        self.names: NameStore = names if names is not None else InMemoryNameStore()
        self.guest_name_hold = guest_name_hold
        # Derives the guest_token of a first guest write made with an Idempotency-Key.
        self.guest_key = guest_key if guest_key is not None else secrets.token_bytes(32)
        self.notifier = notifier
        self.hash_password = hash_password
        self.verify_password = verify_password
        self.clock = clock
        self.per_page = per_page
        self.offload = Offloader()  # password hashing: off the event loop, a few at once
        self.hold = review.policy(hold)
        self._threads: OrderedDict[int, tuple[threads.Thread, int]] = OrderedDict()

    # -- plumbing ---------------------------------------------------------------------

    async def _first_answer(self, meta: RequestMeta, *kinds: type[R]) -> R | None:
        if meta.idempotency_key is None:
            return None
        first = await self.store.find_idempotent(meta.idempotency_key)
        if first is None:
            return None
        return self._replayed(first, meta, *kinds)

    async def _first_or_held(self, meta: RequestMeta, kind: type[R]) -> R | c.HeldResult | None:
        """The first answer of a write that may have been held for review."""
        first = await self._first_answer(meta, c.HeldResult, kind)
        return cast("R | c.HeldResult | None", first)

    @staticmethod
    def _replayed(first: IdempotentResult, meta: RequestMeta, *kinds: type[R]) -> R:
        """The first answer again; ``kinds``: what it may have been (a write that may be
        held answers a HeldResult or its usual result), tried in order."""
        if first.fingerprint != meta.fingerprint:
            raise InvalidInputError(
                "this Idempotency-Key was already used for a different request"
            )
        for kind in kinds[:-1]:
            try:
                result = msgspec.json.decode(first.response, type=kind)
                break
            except msgspec.ValidationError:
                continue
        else:
            result = msgspec.json.decode(first.response, type=kinds[-1])
        result.position = first.position
        return result

    async def _append(
        self, stream: str, version: int, new: Sequence[ForumEvent], result: R, meta: RequestMeta
    ) -> R:
        idempotency = None
        if meta.idempotency_key is not None:
            idempotency = IdempotentResult(
                key=meta.idempotency_key, fingerprint=meta.fingerprint,
                response=msgspec.json.encode(result), position=0,
            )
        metadata = Metadata(
            correlation_id=meta.correlation_id, idempotency_key=meta.idempotency_key
        )
        try:
            result.position = await self.store.append(
                stream, version, new, metadata=metadata, idempotency=idempotency
            )
        except DuplicateRequestError as duplicate:
            first = IdempotentResult(
                key=duplicate.key, fingerprint=duplicate.fingerprint,
                response=duplicate.response, position=duplicate.position,
            )
            return self._replayed(first, meta, type(result))
        self.notifier.notify()
        return result

    async def _retrying(self, attempt: Callable[[], Awaitable[R]]) -> R:
        """Optimistic concurrency: a writer that lost a race reloads and decides again."""
        for _ in range(CONFLICT_RETRIES):
            try:
                return await attempt()
            except ConcurrencyError:
                continue
        raise ConflictError("the thread is busy; try again")

    async def _load_thread(self, thread_id: int) -> tuple[threads.Thread | None, int]:
        """The thread folded from its stream, and its version.

        Folded threads are kept (least recently used out) and brought up to date by reading
        only the events after the kept version, so a write to a long thread does not
        re-read and re-fold all of it (that made a reply cost O(posts in the thread)).
        A kept state only ever advances by committed events, in version order, without an
        await in between; decisions only read it. A request that decides on a state that
        a concurrent request advanced past the version it was handed appends with a stale
        expected version, fails, and retries: optimistic concurrency still decides.
        """
        kept = self._threads.get(thread_id)
        records = await self.store.read_stream(thread_stream(thread_id),
                                               kept[1] if kept else 0)
        kept = self._threads.get(thread_id)  # another request may have advanced it
        thread, version = kept if kept else (None, 0)
        for record in records:
            if record.version == version + 1:
                thread, version = threads.evolve(thread, record.event), record.version
        if thread is not None:
            self._threads[thread_id] = (thread, version)
            self._threads.move_to_end(thread_id)
            if len(self._threads) > THREAD_CACHE_SIZE:
                self._threads.popitem(last=False)
        return thread, version

    async def _forum_exists(self, slug: str) -> bool:
        return bool(await self.store.read_stream(forum_stream(slug)))

    async def guest(self, guest_name: str | None, guest_id: str | None = None,
                    returning: bool = False) -> Actor:
        """A guest writing under ``guest_name`` with the identity ``guest_id`` (a digest of
        its guest token; see service/guests.py); ``returning`` when the request sent that
        token back (rather than being issued it now).

        Refused with 409 when the name looks like a member's or a reserved name
        (confusable skeletons, not just case), or like a guest name held by another guest
        identity. A guest name is *held* by a returning guest: writing with its token sent
        back takes (atomically) or renews the hold, which lapses after ``guest_name_hold``
        without use (FORUM_GUEST_NAME_DAYS, 30 days by default). A first write, issued its
        token just now, holds nothing: a client that never sends tokens back can keep
        writing under a free name, and a write that fails leaves no hold for a token
        nobody received. Rights (OP mark, starter's bump) follow the identity either way."""
        if guest_name is None:
            raise NotAuthenticatedError(
                "to post as a guest, give a temporary guest_name; or sign in as a member"
            )
        name = clean_name(guest_name, "guest_name")  # normalised before the member lookup
        records = await self.store.read_stream(member_stream(name))
        actor = members.guest(name, [r.event for r in records])
        like = await self.names.member_like(name)
        if like is not None:
            raise NameTakenError(
                f"{name!r} looks like the member name {like!r}: sign in to post as them, "
                "or choose another guest name"
            )
        if guest_id is not None:
            now = self.clock()
            since = now - self.guest_name_hold
            if returning:
                allowed = await self.names.claim_guest(name, guest_id, now, since)
            else:
                allowed = await self.names.guest_holder(name, guest_id, since) is None
            if not allowed:
                raise NameTakenError(_GUEST_NAME_IN_USE)
        return Actor(actor.name, "guest", guest_id=guest_id)

    # -- sections ---------------------------------------------------------------------

    async def create_forum(self, cmd: c.CreateForum, actor: Actor, meta: RequestMeta
                           ) -> c.ForumCreatedResult:
        if (first := await self._first_answer(meta, c.ForumCreatedResult)) is not None:
            return first
        stream = forum_stream(cmd.slug)
        existing = await self.store.read_stream(stream)
        new = sections.create_forum(
            [r.event for r in existing], slug=cmd.slug, title=cmd.title, actor=actor,
            now=self.clock(),
        )
        created = new[0]
        result = c.ForumCreatedResult(slug=cmd.slug, title=getattr(created, "title", cmd.title))
        try:
            return await self._append(stream, 0, new, result, meta)
        except ConcurrencyError as error:
            raise ConflictError(f"section {cmd.slug!r} exists already") from error

    # -- threads ----------------------------------------------------------------------

    async def start_thread(self, slug: str, cmd: c.StartThread, actor: Actor,
                           meta: RequestMeta) -> c.ThreadStartedResult | c.HeldResult:
        if (first := await self._first_or_held(meta, c.ThreadStartedResult)) is not None:
            return first
        if not await self._forum_exists(slug):
            raise NotFoundError(f"no section {slug!r}")
        thread_id = (await self.store.next_ids("thread"))[0]
        post_id = (await self.store.next_ids("post"))[0]
        reason = review.hold_reason(self.hold, actor, cmd.body)
        if reason is not None:
            new = review.hold_thread(
                thread_id=thread_id, post_id=post_id, forum=slug, title=cmd.title,
                body=cmd.body, actor=actor, now=self.clock(), reason=reason,
            )
            held = c.HeldResult(held=True, held_id=post_id, thread_id=thread_id)
            return await self._append(thread_stream(thread_id), 0, new, held, meta)
        new = threads.start_thread(
            thread_id=thread_id, post_id=post_id, forum=slug, title=cmd.title, body=cmd.body,
            actor=actor, now=self.clock(),
        )
        result = c.ThreadStartedResult(thread_id=thread_id, post_id=post_id)
        return await self._append(thread_stream(thread_id), 0, new, result, meta)

    async def post_reply(self, thread_id: int, cmd: c.PostReply, actor: Actor,
                         meta: RequestMeta) -> c.ReplyResult | c.HeldResult:
        if (first := await self._first_or_held(meta, c.ReplyResult)) is not None:
            return first
        post_id: int | None = None
        reason = review.hold_reason(self.hold, actor, cmd.body)

        async def attempt() -> c.ReplyResult | c.HeldResult:
            nonlocal post_id
            loaded, version = await self._load_thread(thread_id)
            thread = threads.visible(loaded)
            if thread is None:
                raise NotFoundError("no such thread")
            if post_id is None:
                post_id = (await self.store.next_ids("post"))[0]
            if reason is not None:
                new = review.hold_reply(thread, post_id=post_id, body=cmd.body, actor=actor,
                                        now=self.clock(), reason=reason)
                held = c.HeldResult(held=True, held_id=post_id, thread_id=thread_id)
                return await self._append(thread_stream(thread_id), version, new, held, meta)
            new = threads.post_reply(
                thread, post_id=post_id, body=cmd.body, actor=actor, now=self.clock()
            )
            number = thread.count + 1
            result = c.ReplyResult(
                thread_id=thread_id, post_id=post_id, number=number,
                page=page_of(number, self.per_page),
            )
            return await self._append(thread_stream(thread_id), version, new, result, meta)

        return await self._retrying(attempt)

    async def _change_thread(
        self, thread_id: int, meta: RequestMeta, kind: type[R],
        decide: Callable[[threads.Thread | None], list[ForumEvent]],
        result: Callable[[threads.Thread], R],
    ) -> R:
        if (first := await self._first_answer(meta, kind)) is not None:
            return first

        async def attempt() -> R:
            loaded, version = await self._load_thread(thread_id)
            thread = threads.visible(loaded)
            new = decide(thread)
            assert thread is not None  # decide refuses a missing thread
            return await self._append(thread_stream(thread_id), version, new, result(thread),
                                      meta)

        return await self._retrying(attempt)

    async def bump(self, thread_id: int, actor: Actor, meta: RequestMeta
                   ) -> c.ThreadChangedResult:
        return await self._change_thread(
            thread_id, meta, c.ThreadChangedResult,
            lambda t: threads.bump(t, actor=actor, now=self.clock()),
            lambda t: c.ThreadChangedResult(thread_id=t.thread_id),
        )

    async def set_locked(self, thread_id: int, actor: Actor, meta: RequestMeta, *,
                         locked: bool) -> c.ThreadChangedResult:
        return await self._change_thread(
            thread_id, meta, c.ThreadChangedResult,
            lambda t: threads.set_locked(t, actor=actor, now=self.clock(), locked=locked),
            lambda t: c.ThreadChangedResult(thread_id=t.thread_id),
        )

    async def move(self, thread_id: int, cmd: c.MoveThread, actor: Actor, meta: RequestMeta
                   ) -> c.ThreadChangedResult:
        if not await self._forum_exists(cmd.forum):
            raise NotFoundError(f"no section {cmd.forum!r}")
        return await self._change_thread(
            thread_id, meta, c.ThreadChangedResult,
            lambda t: threads.move(t, to_forum=cmd.forum, actor=actor, now=self.clock()),
            lambda t: c.ThreadChangedResult(thread_id=t.thread_id),
        )

    # -- posts ------------------------------------------------------------------------

    async def edit_post(self, thread_id: int, post_id: int, cmd: c.EditPost, actor: Actor,
                        meta: RequestMeta) -> c.PostChangedResult:
        return await self._change_thread(
            thread_id, meta, c.PostChangedResult,
            lambda t: threads.edit_post(
                t, post_id=post_id, body=cmd.body, actor=actor, now=self.clock()
            ),
            lambda t: c.PostChangedResult(post_id=post_id, thread_id=t.thread_id),
        )

    async def delete_post(self, thread_id: int, post_id: int, actor: Actor, meta: RequestMeta
                          ) -> c.PostChangedResult:
        return await self._change_thread(
            thread_id, meta, c.PostChangedResult,
            lambda t: threads.delete_post(t, post_id=post_id, actor=actor, now=self.clock()),
            lambda t: c.PostChangedResult(post_id=post_id, thread_id=t.thread_id),
        )

    async def like(self, thread_id: int, post_id: int, actor: Actor, meta: RequestMeta, *,
                   liked: bool) -> c.PostChangedResult:
        return await self._change_thread(
            thread_id, meta, c.PostChangedResult,
            lambda t: threads.like(t, post_id=post_id, actor=actor, now=self.clock(),
                                   liked=liked),
            lambda t: c.PostChangedResult(post_id=post_id, thread_id=t.thread_id),
        )

    async def decide_held(self, held_id: int, actor: Actor, meta: RequestMeta, *,
                          approve: bool) -> c.ApprovedResult | c.RejectedResult:
        """Approve or reject a held post (service/held_handlers.py)."""
        return await held_handlers.decide_held(self, held_id, actor, meta, approve=approve)

    # -- members ----------------------------------------------------------------------

    async def change_role(self, name: str, cmd: c.ChangeRole, actor: Actor, meta: RequestMeta
                          ) -> c.MemberResult:
        if (first := await self._first_answer(meta, c.MemberResult)) is not None:
            return first
        stream = member_stream(name.strip())
        existing = await self.store.read_stream(stream)
        new = members.change_role([r.event for r in existing], role=cmd.role, actor=actor,
                                  now=self.clock())
        found = members.member([r.event for r in existing])
        assert found is not None  # change_role refuses a missing member
        result = c.MemberResult(name=found.name, role=cmd.role)
        return await self._retrying(
            lambda: self._append(stream, len(existing), new, result, meta))

    async def suspend(self, name: str, cmd: c.Suspend, actor: Actor, meta: RequestMeta
                      ) -> c.SuspensionResult:
        return await self._judge(name, meta, lambda existing: members.suspend(
            existing, name, until=cmd.until, reason=cmd.reason, actor=actor,
            now=self.clock()))

    async def lift_suspension(self, name: str, actor: Actor, meta: RequestMeta
                              ) -> c.SuspensionResult:
        return await self._judge(name, meta, lambda existing: members.lift_suspension(
            existing, name, actor=actor, now=self.clock()))

    async def _judge(self, name: str, meta: RequestMeta,
                     decide: Callable[[list[ForumEvent]], list[ForumEvent]]
                     ) -> c.SuspensionResult:
        """Suspend or reinstate: decide on the member's stream and append, deciding again
        after a lost race (a role change or another moderator's decision meanwhile)."""
        if (first := await self._first_answer(meta, c.SuspensionResult)) is not None:
            return first
        stream = member_stream(name.strip())

        async def attempt() -> c.SuspensionResult:
            existing = [r.event for r in await self.store.read_stream(stream)]
            (event,) = decide(existing)
            suspended = event if isinstance(event, MemberSuspended) else None
            result = c.SuspensionResult(
                name=getattr(event, "name", name), suspended=suspended is not None,
                until=suspended.until if suspended else None,
                reason=suspended.reason if suspended else None)
            return await self._append(stream, len(existing), [event], result, meta)
        return await self._retrying(attempt)

    async def sign_in(self, name: str, password: str) -> MemberRegistered:
        """The member these credentials belong to; one refusal (NotAuthenticatedError) for
        every kind of miss. A suspended member with the right password is 403."""
        found, history = None, []
        if 0 < len(name) <= 64 and len(password) <= members.PASSWORD_MAX:
            # Not clean_name: a member registered before a name rule still signs in.
            normal = normal_name(name)
            if normal:
                history = [r.event for r in await self.store.read_stream(member_stream(normal))]
                found = members.member(history)
        if not await self.offload.run(self.verify_password,
                                      found.password_hash if found else None, password[:1024]):
            raise NotAuthenticatedError("wrong name or password")
        assert found is not None
        members.check_not_suspended(members.standing(history), self.clock())
        return found

    async def register(self, cmd: c.Register, meta: RequestMeta) -> c.MemberResult:
        if (first := await self._first_answer(meta, c.MemberResult)) is not None:
            return first
        name = clean_name(cmd.name)
        members.check_password(cmd.password)
        stream = member_stream(name)
        existing = await self.store.read_stream(stream)
        new = members.register(
            [r.event for r in existing], name=name, password=cmd.password,
            password_hash=await self.offload.run(self.hash_password, cmd.password),
            now=self.clock(),
        )
        # Claimed before the append: of two look-alike names registering at once, one
        # claim fails. Claiming again for the same name is harmless (a retry, a replay).
        holder = await self.names.claim_member(name)
        if holder is not None:
            raise NameTakenError(f"the name {name!r} is taken: it looks like {holder!r}")
        try:
            return await self._append(stream, len(existing), new, c.MemberResult(name=name),
                                      meta)
        except ConcurrencyError as error:
            raise ConflictError(f"the name {name!r} is taken") from error
