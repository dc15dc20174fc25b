"""The write side of hold for review: a moderator approves or rejects a held post.

Apart from service/handlers.py only to keep that module small (``Handlers.decide_held``
calls it; it uses the handlers' plumbing). Held writes themselves are decided in
``Handlers.post_reply`` and ``start_thread``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from events.records import thread_stream
from service import commands as c
from service.domain import review
from service.domain.actors import Actor
from service.domain.errors import ForbiddenError, NotFoundError

if TYPE_CHECKING:
    from service.handlers import Handlers, RequestMeta


async def decide_held(handlers: Handlers, held_id: int, actor: Actor, meta: RequestMeta, *,
                      approve: bool) -> c.ApprovedResult | c.RejectedResult:
    """Approve or reject a held post (service/domain/review.py)."""
    kind: type[c.ApprovedResult] | type[c.RejectedResult] = (
        c.ApprovedResult if approve else c.RejectedResult)
    if (first := await handlers._first_answer(meta, kind)) is not None:
        return first
    if not actor.moderates:  # before the lookup: others learn nothing of held ids
        raise ForbiddenError("only moderators and the operator decide about held posts")
    thread_id = await handlers.store.locate_held(held_id)
    if thread_id is None:
        raise NotFoundError("no such held post")
    found = thread_id

    async def attempt() -> c.ApprovedResult | c.RejectedResult:
        thread, version = await handlers._load_thread(found)
        result: c.ApprovedResult | c.RejectedResult
        if approve:
            new = review.approve(thread, held_id=held_id, actor=actor, now=handlers.clock())
            assert thread is not None
            number = 1 if not thread.published else thread.count + 1
            result = c.ApprovedResult(post_id=held_id, number=number, thread_id=found,
                                      page=(number - 1) // handlers.per_page + 1)
        else:
            new = review.reject(thread, held_id=held_id, actor=actor, now=handlers.clock())
            result = c.RejectedResult(id=held_id, thread_id=found)
        return await handlers._append(thread_stream(found), version, new, result, meta)

    return await handlers._retrying(thread_stream(found), attempt)
