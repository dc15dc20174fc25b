"""A person's data rights (API.md, "Data rights and backups"): erasure and export.

Erasure rewrites the log (events/erasure.py; the rules per event in events/redaction.py),
then the workers rebuild the read models from it (workers/erasures.py). Who may ask is
decided here: the member, proving it with their password as well as their session (an
erasure cannot be undone, so a stolen token alone must not do it), or the operator.
Export reads the log, which holds everything the board knows a member wrote, streamed
post by post so its memory does not grow with the member's history.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Literal

import asyncpg
import msgspec

from events import EventStore, decode
from events.erasure import Erased, erase
from events.members import MemberErased, MemberRegistered
from events.records import member_stream
from events.redaction import Subject
from events.threads import PostAdded, PostDeleted, PostEdited
from service.auth import Offloader
from service.domain.actors import Actor
from service.domain.errors import ForbiddenError, NotAuthenticatedError, NotFoundError
from service.domain.members import member
from service.domain.names import forms
from service.domain.text import normal_name

Content = Literal["keep", "erase"]

# Posts of a member in the order an export writes them: each post's events together.
_POSTS = """
SELECT data FROM events
WHERE type IN ('post_added', 'post_edited', 'post_deleted')
  AND lower(data->>'author') = lower($1) AND data->>'guest' = 'false'
ORDER BY (data->>'post_id')::bigint, position
"""


def pseudonym() -> str:
    """A name that says nothing about the person: random, not derived from the name (a
    digest of it could be reversed by trying names)."""
    return f"anon-{secrets.token_hex(5)}"


class ExportedPost(msgspec.Struct, frozen=True):
    thread_id: int
    post_id: int
    number: int
    created_at: datetime
    body: str
    edited_at: datetime | None = None
    deleted: bool = False


class ExportedProfile(msgspec.Struct, frozen=True):
    name: str
    role: str
    joined: datetime


class MemberExport(msgspec.Struct, frozen=True):
    """The shape of an export (written in pieces by ``DataRights.export``)."""

    profile: ExportedProfile
    posts: list[ExportedPost]


class DataRights:
    def __init__(self, pool: asyncpg.Pool, store: EventStore, *,
                 verify_password: Callable[[str | None, str], bool], offload: Offloader,
                 clock: Callable[[], datetime]) -> None:
        self.pool = pool
        self.store = store
        self.verify_password = verify_password
        self.offload = offload
        self.clock = clock

    async def erase_member(self, name: str, content: Content, actor: Actor,
                           password: str | None) -> Erased:
        """``actor`` erases the member ``name``: the operator, or the member themself with
        their password."""
        registered = await self._member(name)
        own = actor.role != "operator"
        if own:
            if actor.guest or actor.name.casefold() != registered.name.casefold():
                raise ForbiddenError("only the member or the operator may erase a member")
            stored = await self.store.password_hash(member_stream(registered.name))
            if not await self.offload.run(self.verify_password, stored,
                                          (password or "")[:1024]):
                raise NotAuthenticatedError("erasing your account needs your password")
        chosen = pseudonym()
        subject = Subject(registered.name, False, chosen, content == "erase")
        # The member erasing themself acts under the pseudonym: the event names nobody.
        return await erase(self.pool, subject, actor=chosen if own else "operator",
                           now=self.clock(), pseudonym_forms=forms(chosen))

    async def erase_guest(self, name: str, content: Content) -> Erased:
        """The operator erases every post written under a guest name."""
        typed = normal_name(name)
        if not typed:
            raise NotFoundError("no such guest name")
        try:
            return await erase(self.pool, Subject(typed, True, pseudonym(),
                                                  content == "erase"),
                               actor="operator", now=self.clock())
        except LookupError as error:
            raise NotFoundError("no post was written under this guest name") from error

    async def check_export(self, name: str, actor: Actor) -> MemberRegistered:
        registered = await self._member(name)
        if actor.role != "operator" and (
                actor.guest or actor.name.casefold() != registered.name.casefold()):
            raise ForbiddenError("only the member or the operator may export a member's data")
        return registered

    async def export(self, registered: MemberRegistered) -> AsyncIterator[bytes]:
        """The member's profile and every post they wrote, as one JSON document in pieces:
        ``{"profile": {...}, "posts": [{thread_id, post_id, number, created_at, body,
        edited_at, deleted}, ...]}``."""
        profile = ExportedProfile(registered.name, registered.role, registered.occurred_at)
        yield b'{"profile":' + msgspec.json.encode(profile) + b',"posts":['
        first = True
        async for post in self._posts(registered.name):
            yield (b"" if first else b",") + msgspec.json.encode(post)
            first = False
        yield b"]}"

    async def _posts(self, name: str) -> AsyncIterator[ExportedPost]:
        current: ExportedPost | None = None
        async with self.pool.acquire() as conn, conn.transaction(readonly=True):
            async for row in conn.cursor(_POSTS, name, prefetch=500):
                event = decode(row[0])
                if isinstance(event, PostAdded):
                    if current is not None:
                        yield current
                    current = ExportedPost(event.thread_id, event.post_id, event.number,
                                           event.occurred_at, event.body)
                elif current is None:
                    continue  # an edit of a post whose addition is not the member's
                elif isinstance(event, PostEdited):
                    current = msgspec.structs.replace(current, body=event.body,
                                                      edited_at=event.occurred_at)
                elif isinstance(event, PostDeleted):
                    current = msgspec.structs.replace(current, deleted=True)
        if current is not None:
            yield current

    async def _member(self, name: str) -> MemberRegistered:
        normal = normal_name(name)
        history = [r.event for r in await self.store.read_stream(member_stream(normal))] \
            if normal else []
        found = member(history)
        if found is None or any(isinstance(e, MemberErased) for e in history):
            raise NotFoundError("no such member")
        return found


async def erase_guest_name(database_url: str, name: str, content: Content) -> Erased:
    """``forum erase-guest``: the operator's erasure of a guest name."""
    from datetime import UTC

    from events.postgres import PostgresEventStore, create_pool

    pool = await create_pool(database_url, min_size=1, max_size=2)
    try:
        rights = DataRights(pool, PostgresEventStore(pool), verify_password=lambda s, p: False,
                            offload=Offloader(), clock=lambda: datetime.now(UTC))
        return await rights.erase_guest(name, content)
    finally:
        await pool.close()
