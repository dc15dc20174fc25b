"""The one union of every event type, and the tag -> class map."""

from __future__ import annotations

from typing import Final

import msgspec

from events.held import HeldPostApproved, HeldPostRejected, PostHeld, ThreadHeld
from events.members import (
    MemberErased,
    MemberRegistered,
    MemberRoleChanged,
    MemberSuspended,
    MemberSuspensionLifted,
    StreamRedacted,
)
from events.sections import ForumCreated
from events.threads import (
    PostAdded,
    PostDeleted,
    PostEdited,
    PostLiked,
    PostQuoted,
    PostUnliked,
    ThreadBumped,
    ThreadLocked,
    ThreadMoved,
    ThreadStarted,
    ThreadUnlocked,
)

ForumEvent = (
    ForumCreated
    | ThreadStarted
    | PostAdded
    | PostQuoted
    | ThreadBumped
    | PostEdited
    | PostDeleted
    | PostLiked
    | PostUnliked
    | ThreadLocked
    | ThreadUnlocked
    | ThreadMoved
    | MemberRegistered
    | MemberRoleChanged
    | MemberSuspended
    | MemberSuspensionLifted
    | MemberErased
    | StreamRedacted
    | PostHeld
    | ThreadHeld
    | HeldPostApproved
    | HeldPostRejected
)

EVENT_TYPES: Final[dict[str, type[ForumEvent]]] = {
    str(msgspec.inspect.type_info(cls).tag): cls  # type: ignore[attr-defined]
    for cls in ForumEvent.__args__  # type: ignore[attr-defined]
}


def type_name(event: ForumEvent) -> str:
    """The event's stored tag (the ``type`` column)."""
    return event.__struct_config__.tag  # type: ignore[return-value]
