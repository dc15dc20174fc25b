"""Events of a member (stream ``member-{lowercased name}``)."""

from __future__ import annotations

from events.base import Event


class MemberRegistered(Event, tag="member_registered", frozen=True):
    name: str
    password_hash: str
    role: str = "member"


class MemberRoleChanged(Event, tag="member_role_changed", frozen=True):
    """The operator made a member a moderator, or a moderator a member again."""

    name: str
    role: str
