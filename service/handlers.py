"""Use-cases of the write side: load a stream, fold it, decide, append, nudge.

Each handler returns a ``Result`` carrying the log position its append reached. Requests
with an ``Idempotency-Key`` are answered from the first request's stored result when the
same key comes again with the same request; the append and that record are one statement,
so a replay can never half-happen.
"""

from __future__ import annotations

from collections.abc import Callable

from events import ConcurrencyError, ForumEvent
from events.records import forum_stream, thread_stream
from service import commands as c
from service import held_handlers
from service.domain import review, sections, threads
from service.domain.actors import Actor
from service.domain.errors import ConflictError, NotFoundError
from service.handling import (  # re-exported: the HTTP layer and tests import them here
    CONFLICT_RETRIES,
    GUEST_NAME_HOLD,
    THREAD_CACHE_BYTES,
    R,
    RequestMeta,
    fingerprint,
    page_of,
)
from service.member_handlers import MemberUseCases

__all__ = ["CONFLICT_RETRIES", "GUEST_NAME_HOLD", "THREAD_CACHE_BYTES", "Handlers",
           "RequestMeta", "fingerprint", "page_of"]


class Handlers(MemberUseCases):
    """Every use-case of the write side: threads and sections here, members and guests in
    service/member_handlers.py, the plumbing in service/handling.py."""

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

        return await self._retrying(thread_stream(thread_id), attempt)

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

        return await self._retrying(thread_stream(thread_id), attempt)

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
