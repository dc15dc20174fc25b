"""Events of a member (stream ``member-{lowercased name}``)."""

from __future__ import annotations

from events.base import Event


class MemberRegistered(Event, tag="member_registered", frozen=True):
    name: str
    password_hash: str
    role: str = "member"
