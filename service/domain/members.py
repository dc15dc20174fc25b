"""Members: registration, and the rule that a guest may not take a member's name."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import msgspec

from events.catalog import ForumEvent
from events.members import MemberRegistered, MemberRoleChanged
from service.domain.actors import Actor
from service.domain.errors import (
    ConflictError,
    ForbiddenError,
    InvalidInputError,
    NameTakenError,
    NotFoundError,
)
from service.domain.text import clean_name

PASSWORD_MIN = 8
PASSWORD_MAX = 1024


ROLES = ("member", "moderator")


def member(events: Sequence[ForumEvent]) -> MemberRegistered | None:
    """The member as registered, with the role they hold now."""
    found: MemberRegistered | None = None
    for event in events:
        if isinstance(event, MemberRegistered):
            found = event
        elif isinstance(event, MemberRoleChanged) and found is not None:
            found = msgspec.structs.replace(found, role=event.role)
    return found


def change_role(existing: Sequence[ForumEvent], *, role: str, actor: Actor, now: datetime
                ) -> list[ForumEvent]:
    if actor.role != "operator":
        raise ForbiddenError("only the operator may change roles")
    if role not in ROLES:
        raise InvalidInputError(f"role must be one of {', '.join(ROLES)}")
    current = member(existing)
    if current is None:
        raise NotFoundError("no such member")
    if current.role == role:
        raise ConflictError(f"{current.name} is already a {role}")
    return [MemberRoleChanged(occurred_at=now, actor=actor.name, name=current.name, role=role)]


def register(
    existing: Sequence[ForumEvent], *, name: str, password: str, password_hash: str,
    now: datetime,
) -> list[ForumEvent]:
    name = clean_name(name)
    check_password(password)
    if member(existing) is not None:
        raise NameTakenError(f"the name {name!r} is taken")
    return [MemberRegistered(occurred_at=now, actor=name, name=name, password_hash=password_hash)]


def check_password(password: str) -> None:
    if not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
        raise InvalidInputError(
            f"password must be {PASSWORD_MIN} to {PASSWORD_MAX} characters long"
        )


def guest(name: str, member_events: Sequence[ForumEvent]) -> Actor:
    """A guest posting under a temporary name, unless a member holds that name."""
    name = clean_name(name, "guest_name")
    if member(member_events) is not None:
        raise NameTakenError(
            f"{name!r} is a member's name: sign in to post as them, or choose another guest name"
        )
    return Actor(name, "guest")
