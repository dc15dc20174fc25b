"""What an erasure does to one event: pure, so the rewrite of the log is unit-tested
without a database (the transaction that applies it is events/erasure.py).

A subject is a member, or a guest name. Their name becomes a pseudonym wherever an event
shows it: as an author, an actor, a member's name, a quote's attribution (the ``quotes``
a post carries, the ``PostQuoted`` record, and the ``[quote=NAME post=ID]`` tags inside
other people's bodies, which is what the pages show). With ``erase_bodies`` their posts'
bodies become empty, and so does the text quoted from those posts inside other people's
posts. Quotes are matched by post id where the tag gives one (a member and a guest may
have typed the same name), by name where it does not.

Thread titles stay (a thread is everyone's who replied to it), and so does free text in
which someone else typed the name: rewriting other people's words goes beyond what the
erased person's data is. docs/design.md says why erasure rewrites the log at all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgspec

from common.bbcode import quote_tags
from events.catalog import ForumEvent
from events.held import HeldPostApproved, HeldPostRejected, PostHeld, ThreadHeld
from events.members import (
    MemberRegistered,
    MemberRoleChanged,
    MemberSuspended,
    MemberSuspensionLifted,
)
from events.threads import (
    PostAdded,
    PostDeleted,
    PostEdited,
    PostLiked,
    PostQuoted,
    PostUnliked,
    QuoteInfo,
    ThreadStarted,
)

_AUTHORED = (ThreadStarted, PostAdded, PostEdited, PostDeleted, PostHeld, ThreadHeld)
_MEMBER_EVENTS = (MemberRegistered, MemberRoleChanged, MemberSuspended,
                  MemberSuspensionLifted)


@dataclass
class Subject:
    """Whom an erasure is about. ``posts``: the ids of their posts (held ones included,
    a held id being the post id it keeps), gathered from the log before rewriting."""

    name: str
    guest: bool
    pseudonym: str
    erase_bodies: bool
    posts: set[int] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.folded = self.name.casefold()

    def named(self, name: str) -> bool:
        return name.casefold() == self.folded

    @property
    def author_key(self) -> str:
        """``Actor.key`` of a member subject before and after (held posts carry it)."""
        return f"member:{self.folded}"


def wrote(event: ForumEvent, subject: Subject) -> bool:
    """Whether the subject is the author of this post or thread event."""
    return (isinstance(event, _AUTHORED) and event.guest == subject.guest
            and subject.named(event.author))


def gather(event: ForumEvent, subject: Subject) -> None:
    """First pass over the log: note the subject's posts."""
    if isinstance(event, PostAdded) and wrote(event, subject):
        subject.posts.add(event.post_id)
    elif isinstance(event, PostHeld | ThreadHeld) and wrote(event, subject):
        subject.posts.add(event.held_id)


def redact(event: ForumEvent, subject: Subject) -> ForumEvent | None:
    """The event as it reads after the erasure; None when it does not change."""
    changes: dict[str, Any] = {}
    own = wrote(event, subject)
    if own:
        changes["author"] = subject.pseudonym
    if _acted(event, subject):
        changes["actor"] = subject.pseudonym
    if isinstance(event, _MEMBER_EVENTS) and not subject.guest and subject.named(event.name):
        changes["name"] = subject.pseudonym
    if isinstance(event, PostLiked | PostUnliked) and event.guest == subject.guest \
            and subject.named(event.author):
        changes["author"] = subject.pseudonym
    if isinstance(event, PostQuoted) and event.quoted_post_id in subject.posts:
        changes["quoted_author"] = subject.pseudonym
    if isinstance(event, PostHeld | ThreadHeld | HeldPostApproved | HeldPostRejected) \
            and not subject.guest and event.author_key == subject.author_key:
        changes["author_key"] = f"member:{subject.pseudonym.casefold()}"
    if isinstance(event, PostAdded | PostEdited | PostHeld | ThreadHeld):
        if own and subject.erase_bodies:
            changes["body"] = ""
            if not isinstance(event, ThreadHeld):
                changes["quotes"] = []
        else:
            body = rewrite_body(event.body, subject)
            if body != event.body:
                changes["body"] = body
            if not isinstance(event, ThreadHeld):
                quotes = [_requote(q, subject) for q in event.quotes]
                if quotes != event.quotes:
                    changes["quotes"] = quotes
    if not changes:
        return None
    return msgspec.structs.replace(event, **changes)


def _acted(event: ForumEvent, subject: Subject) -> bool:
    """Whether ``actor`` names the subject. An actor is a bare name: a guest's own write
    says so (``guest`` and the same author); anything else was done by a member, a
    moderator or the operator."""
    if not subject.named(event.actor):
        return False
    guest_write = getattr(event, "guest", False) and subject.named(getattr(event, "author", ""))
    return bool(guest_write) == subject.guest


def _requote(quote: QuoteInfo, subject: Subject) -> QuoteInfo:
    if quote.post_id in subject.posts:
        return QuoteInfo(post_id=quote.post_id, number=quote.number, author=subject.pseudonym)
    return quote


def rewrite_body(body: str, subject: Subject) -> str:
    """``body`` with the subject's quote attributions pseudonymous and, when their bodies
    are erased, the text quoted from them gone (an unclosed quote of theirs: to the end).
    Linear: the tags are found in one pass and paired with a stack."""
    if "[" not in body:
        return body
    edits: list[tuple[int, int, str]] = []  # disjoint, in order
    opened: list[tuple[int, bool]] = []  # each open quote: its edit's index, whether theirs
    for tag in quote_tags(body):
        if tag.closer:
            if not opened:
                continue
            index, theirs = opened.pop()
            if theirs and subject.erase_bodies:
                start = edits[index][1]
                # What lies inside goes with it, the edits of nested tags included.
                del edits[index + 1:]
                edits.append((start, tag.start, ""))
            continue
        theirs = (tag.post in subject.posts if tag.post is not None
                  else bool(tag.name) and subject.named(tag.name))
        if theirs:
            post = f" post={tag.post}" if tag.post is not None else ""
            edits.append((tag.start, tag.end, f"[quote={subject.pseudonym}{post}]"))
        else:
            edits.append((tag.start, tag.end, body[tag.start:tag.end]))
        opened.append((len(edits) - 1, theirs))
    if subject.erase_bodies:
        unclosed = next((index for index, theirs in opened if theirs), None)
        if unclosed is not None:
            start = edits[unclosed][1]
            del edits[unclosed + 1:]
            edits.append((start, len(body), ""))
    out: list[str] = []
    position = 0
    for start, end, text in edits:
        out.append(body[position:start])
        out.append(text)
        position = end
    out.append(body[position:])
    return "".join(out)
