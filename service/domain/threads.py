"""A thread: its state folded from its stream, and the pure decisions about it.

Where a reply is decided. No I/O here: the handler loads the stream, folds it with
``evolve``, calls a decision with the request and the clock, and appends what it returns.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from common.bbcode import quote_refs
from events.catalog import ForumEvent
from events.held import HeldPostApproved, HeldPostRejected, PostHeld, ThreadHeld
from events.threads import (
    PostAdded,
    PostDeleted,
    PostEdited,
    PostLiked,
    PostQuoted,
    PostUnliked,
    QuoteInfo,
    ThreadBumped,
    ThreadLocked,
    ThreadMoved,
    ThreadStarted,
    ThreadUnlocked,
)
from service.domain.actors import Actor
from service.domain.errors import (
    ConflictError,
    ForbiddenError,
    NotFoundError,
    QuoteNotFoundError,
    ThreadLockedError,
    TooSoonError,
)
from service.domain.posts import Post, Posts
from service.domain.text import clean_body, clean_title

STARTER_BUMP_INTERVAL = timedelta(hours=24)
MAX_QUOTES = 50


@dataclass
class HeldPost:
    """A post waiting for a moderator (service/domain/review.py decides about it)."""

    held_id: int
    author: str
    guest: bool
    author_key: str
    op: bool
    body: str
    created_at: datetime
    quotes: list[QuoteInfo] = field(default_factory=list)
    guest_id: str | None = None
    opening: bool = False  # the opening post of a held new thread


@dataclass
class Thread:
    thread_id: int
    forum: str
    title: str
    author: str
    guest: bool
    created_at: datetime
    bumped_at: datetime
    locked: bool = False
    posts: Posts = field(default_factory=Posts)  # without bodies: none is decided on
    count: int = 0
    last_starter_bump: datetime | None = None
    guest_id: str | None = None  # the starting guest's identity (see ThreadStarted)
    # Hold for review: False while the thread itself is held (it began with ThreadHeld
    # and was not approved); pending held posts by held id; ids already decided.
    published: bool = True
    held: dict[int, HeldPost] = field(default_factory=dict)
    decided: set[int] = field(default_factory=set)

    @property
    def unanswered(self) -> bool:
        return self.count <= 1


def fold(events: Iterable[ForumEvent]) -> Thread | None:
    thread: Thread | None = None
    for event in events:
        thread = evolve(thread, event)
    return thread


def visible(thread: Thread | None) -> Thread | None:
    """The thread as readers and writers other than moderators deciding a hold know it:
    a held new thread does not exist yet."""
    return thread if thread is not None and thread.published else None


def evolve(thread: Thread | None, event: ForumEvent) -> Thread | None:
    match event:
        case ThreadStarted():
            started = Thread(
                thread_id=event.thread_id, forum=event.forum, title=event.title,
                author=event.author, guest=event.guest,
                created_at=event.occurred_at, bumped_at=event.occurred_at,
                guest_id=event.guest_id,
            )
            if thread is not None:  # a held thread, approved: keep what was decided
                started.held, started.decided = thread.held, thread.decided
            return started
        case ThreadHeld():
            held = Thread(
                thread_id=event.thread_id, forum=event.forum, title=event.title,
                author=event.author, guest=event.guest, created_at=event.occurred_at,
                bumped_at=event.occurred_at, published=False, guest_id=event.guest_id,
            )
            held.held[event.held_id] = HeldPost(
                held_id=event.held_id, author=event.author, guest=event.guest,
                author_key=event.author_key, op=True, body=event.body,
                created_at=event.occurred_at, guest_id=event.guest_id, opening=True,
            )
            return held
    assert thread is not None, f"{type(event).__name__} before ThreadStarted"
    match event:
        case PostAdded():
            thread.posts.add(event.post_id, number=event.number, author=event.author,
                             guest=event.guest, op=event.op, created_at=event.occurred_at)
            thread.count = event.number
        case ThreadBumped():
            thread.bumped_at = event.occurred_at
            if event.reason == "starter":
                thread.last_starter_bump = event.occurred_at
        case PostEdited():
            thread.posts.edit(event.post_id, event.occurred_at)
        case PostDeleted():
            thread.posts.delete(event.post_id)
        case PostLiked():
            thread.posts.like(event.post_id, event.actor.casefold())
        case PostUnliked():
            thread.posts.unlike(event.post_id, event.actor.casefold())
        case ThreadLocked():
            thread.locked = True
        case ThreadUnlocked():
            thread.locked = False
        case ThreadMoved():
            thread.forum = event.to_forum
        case PostHeld():
            thread.held[event.held_id] = HeldPost(
                held_id=event.held_id, author=event.author, guest=event.guest,
                author_key=event.author_key, op=event.op, body=event.body,
                created_at=event.occurred_at, quotes=list(event.quotes),
                guest_id=event.guest_id,
            )
        case HeldPostApproved() | HeldPostRejected():
            thread.held.pop(event.held_id, None)
            thread.decided.add(event.held_id)
        case PostQuoted():
            pass
    return thread


def _quotes(thread: Thread | None, body: str, quoting_post_id: int) -> list[QuoteInfo]:
    refs = quote_refs(body)
    if len(refs) > MAX_QUOTES:
        raise QuoteNotFoundError(f"a post may quote at most {MAX_QUOTES} posts")
    quotes = []
    for ref in refs:
        post = thread.posts.get(ref.post_id) if thread else None
        if post is None or post.post_id == quoting_post_id:
            raise QuoteNotFoundError(f"post {ref.post_id} is not a post of this thread")
        if post.deleted:
            raise QuoteNotFoundError(f"post {ref.post_id} was deleted and cannot be quoted")
        quotes.append(QuoteInfo(post_id=post.post_id, number=post.number, author=post.author))
    return quotes


def _quoted_events(
    thread_id: int, post_id: int, quotes: list[QuoteInfo], actor: Actor, now: datetime
) -> list[PostQuoted]:
    return [
        PostQuoted(
            occurred_at=now, actor=actor.name, thread_id=thread_id, post_id=post_id,
            quoted_post_id=q.post_id, quoted_number=q.number, quoted_author=q.author,
        )
        for q in quotes
    ]


def start_thread(
    *, thread_id: int, post_id: int, forum: str, title: str, body: str, actor: Actor,
    now: datetime,
) -> list[ForumEvent]:
    title = clean_title(title)
    body = clean_body(body)
    _quotes(None, body, post_id)  # nothing to quote yet: any [quote post=…] is refused
    return [
        ThreadStarted(
            occurred_at=now, actor=actor.name, thread_id=thread_id, forum=forum, title=title,
            author=actor.name, guest=actor.guest, guest_id=actor.guest_id,
        ),
        PostAdded(
            occurred_at=now, actor=actor.name, thread_id=thread_id, forum=forum,
            post_id=post_id, number=1, author=actor.name, guest=actor.guest, op=True,
            first_reply=False, body=body, guest_id=actor.guest_id,
        ),
    ]


def post_reply(
    thread: Thread | None, *, post_id: int, body: str, actor: Actor, now: datetime
) -> list[ForumEvent]:
    if thread is None:
        raise NotFoundError("no such thread")
    if thread.locked and not actor.moderates:
        raise ThreadLockedError("the thread is locked and takes no replies")
    body = clean_body(body)
    quotes = _quotes(thread, body, post_id)
    number = thread.count + 1
    return [
        PostAdded(
            occurred_at=now, actor=actor.name, thread_id=thread.thread_id, forum=thread.forum,
            post_id=post_id, number=number, author=actor.name, guest=actor.guest,
            op=actor.same_person(thread.author, thread.guest, thread.guest_id),
            first_reply=number == 2, body=body, quotes=quotes, guest_id=actor.guest_id,
        ),
        *_quoted_events(thread.thread_id, post_id, quotes, actor, now),
        ThreadBumped(
            occurred_at=now, actor=actor.name, thread_id=thread.thread_id, forum=thread.forum,
            reason="reply",
        ),
    ]


def bump(thread: Thread | None, *, actor: Actor, now: datetime) -> list[ForumEvent]:
    if thread is None:
        raise NotFoundError("no such thread")
    if actor.moderates:
        reason = "moderator"
    elif actor.same_person(thread.author, thread.guest, thread.guest_id):
        if thread.locked:
            raise ThreadLockedError("the thread is locked")
        last = thread.last_starter_bump
        if last is not None and now - last < STARTER_BUMP_INTERVAL:
            wait = STARTER_BUMP_INTERVAL - (now - last)
            raise TooSoonError(
                "the thread's starter may bump it once every 24 hours",
                retry_after=max(1, int(wait.total_seconds())),
            )
        reason = "starter"
    else:
        raise ForbiddenError("only the thread's starter or a moderator may bump it")
    return [
        ThreadBumped(
            occurred_at=now, actor=actor.name, thread_id=thread.thread_id, forum=thread.forum,
            reason=reason,  # type: ignore[arg-type]
        )
    ]


def _post(thread: Thread | None, post_id: int) -> tuple[Thread, Post]:
    post = thread.posts.get(post_id) if thread is not None else None
    if thread is None or post is None:
        raise NotFoundError("no such post")
    return thread, post


def may_change(actor: Actor, author: str, guest: bool) -> bool:
    """Whether ``actor`` may edit or delete a post by ``author`` (the pages show the
    controls by the same rule the decisions below refuse by)."""
    return actor.moderates or (not actor.guest and actor.same_person(author, guest))


def may_like(actor: Actor, author: str, guest: bool) -> bool:
    """Whether ``actor`` may like (or unlike) a post by ``author``: members, not their own."""
    return not (actor.guest or actor.role == "operator") and not actor.same_person(author, guest)


def _may_change(post: Post, actor: Actor) -> None:
    if not may_change(actor, post.author, post.guest):
        raise ForbiddenError("only the post's author or a moderator may change it")


def edit_post(
    thread: Thread | None, *, post_id: int, body: str, actor: Actor, now: datetime
) -> list[ForumEvent]:
    thread, post = _post(thread, post_id)
    _may_change(post, actor)
    if post.deleted:
        raise ConflictError("a deleted post cannot be edited")
    if thread.locked and not actor.moderates:
        raise ThreadLockedError("the thread is locked")
    body = clean_body(body)
    quotes = _quotes(thread, body, post_id)
    for q in quotes:
        if q.number >= post.number:
            raise QuoteNotFoundError(f"post {q.post_id} comes after this one")
    return [
        PostEdited(
            occurred_at=now, actor=actor.name, thread_id=thread.thread_id, post_id=post_id,
            number=post.number, author=post.author, guest=post.guest, op=post.op,
            created_at=post.created_at, body=body, quotes=quotes,
        ),
        *_quoted_events(thread.thread_id, post_id, quotes, actor, now),
    ]


def delete_post(
    thread: Thread | None, *, post_id: int, actor: Actor, now: datetime
) -> list[ForumEvent]:
    thread, post = _post(thread, post_id)
    _may_change(post, actor)
    if post.deleted:
        raise ConflictError("the post is already deleted")
    return [
        PostDeleted(
            occurred_at=now, actor=actor.name, thread_id=thread.thread_id, forum=thread.forum,
            post_id=post_id, number=post.number, author=post.author, guest=post.guest,
            op=post.op, created_at=post.created_at, edited_at=post.edited_at,
        )
    ]


def like(
    thread: Thread | None, *, post_id: int, actor: Actor, now: datetime, liked: bool
) -> list[ForumEvent]:
    thread, post = _post(thread, post_id)
    if actor.guest or actor.role == "operator":
        raise ForbiddenError("only members can give reputation")
    if actor.same_person(post.author, post.guest):
        raise ForbiddenError("you cannot like your own post")
    if post.deleted:
        raise ConflictError("the post is deleted")
    who = actor.name.casefold()
    if liked == (who in post.likers):
        raise ConflictError("you already like this post" if liked else "you do not like this post")
    likes = len(post.likers) + (1 if liked else -1)
    kind = PostLiked if liked else PostUnliked
    return [
        kind(
            occurred_at=now, actor=actor.name, thread_id=thread.thread_id, post_id=post_id,
            number=post.number, author=post.author, guest=post.guest, likes=likes,
        )
    ]


def set_locked(thread: Thread | None, *, actor: Actor, now: datetime, locked: bool
               ) -> list[ForumEvent]:
    if thread is None:
        raise NotFoundError("no such thread")
    if not actor.moderates:
        raise ForbiddenError("only moderators may lock or unlock threads")
    if thread.locked == locked:
        raise ConflictError("the thread is already " + ("locked" if locked else "unlocked"))
    kind = ThreadLocked if locked else ThreadUnlocked
    return [kind(occurred_at=now, actor=actor.name, thread_id=thread.thread_id)]


def move(thread: Thread | None, *, to_forum: str, actor: Actor, now: datetime
         ) -> list[ForumEvent]:
    if thread is None:
        raise NotFoundError("no such thread")
    if not actor.moderates:
        raise ForbiddenError("only moderators may move threads")
    if thread.forum == to_forum:
        raise ConflictError(f"the thread is already in {to_forum!r}")
    return [
        ThreadMoved(
            occurred_at=now, actor=actor.name, thread_id=thread.thread_id,
            from_forum=thread.forum, to_forum=to_forum, posts=thread.count,
            created_at=thread.created_at, bumped_at=thread.bumped_at,
            unanswered=thread.unanswered,
        )
    ]
