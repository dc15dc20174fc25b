"""Events of a member (stream ``member-{lowercased name}``)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from events.base import Event


class MemberRegistered(Event, tag="member_registered", frozen=True):
    """A member joined. Their password hash is not here: credentials live in the
    ``credentials`` table (migration 0007), never in the log. Events written before that
    carry a ``password_hash`` field, which decoding ignores (unknown fields are allowed)."""

    name: str
    role: str = "member"


class MemberRoleChanged(Event, tag="member_role_changed", frozen=True):
    """The operator made a member a moderator, or a moderator a member again."""

    name: str
    role: str


class MemberSuspended(Event, tag="member_suspended", frozen=True):
    """A moderator or the operator (``actor``) suspended a member: no sign-in and no
    writes until ``until`` (None: until lifted). A later suspension replaces this one."""

    name: str
    reason: str
    until: datetime | None = None


class MemberSuspensionLifted(Event, tag="member_suspension_lifted", frozen=True):
    """The member's suspension ended early, by a moderator's or the operator's decision."""

    name: str


class MemberErased(Event, tag="member_erased", frozen=True):
    """A member's (or, with ``guest``, a guest name's) personal data was erased: every
    event that named them was rewritten to ``name``, a pseudonym, and with ``content``
    "erase" their posts' bodies were emptied (events/redaction.py). The erased name is
    in no event, this one included. Projections take it as "what you built from the log
    before this position is stale": the workers rebuild the read models from the
    rewritten log (workers/erasures.py), so live projection and a replay agree."""

    name: str
    content: Literal["keep", "erase"]
    guest: bool = False


class StreamRedacted(Event, tag="stream_redacted", frozen=True):
    """Events of this stream were rewritten by an erasure (the ``MemberErased`` at the same
    time says whose). It tells a writer that keeps the stream folded (the service's thread
    cache) to fold it again from the start: its state may hold the erased name. No
    projection reads it."""
