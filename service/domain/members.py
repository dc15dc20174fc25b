"""Members: registration, roles, suspensions, and the rule that a guest may not take a
member's name."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import msgspec

from events.catalog import ForumEvent
from events.members import (
    MemberRegistered,
    MemberRoleChanged,
    MemberSuspended,
    MemberSuspensionLifted,
)
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
REASON_MAX = 500


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


def register(existing: Sequence[ForumEvent], *, name: str, password: str, now: datetime
             ) -> list[ForumEvent]:
    """The fact of joining; the password's hash is stored apart from it, as a credential
    (events/store.py), never in the log."""
    name = clean_name(name)
    check_password(password)
    if member(existing) is not None:
        raise NameTakenError(f"the name {name!r} is taken")
    return [MemberRegistered(occurred_at=now, actor=name, name=name)]


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


# -- standing: what authorization needs of a member, folded from their stream -----------

class Standing(msgspec.Struct, frozen=True, gc=False):
    """A member's name, current role and last suspension not lifted (which may have run
    out: see ``suspension``). Small and bounded (a name, a role, a reason of at most
    REASON_MAX characters), so a cache of them has a byte bound by its entry bound."""

    name: str
    role: str
    suspended: MemberSuspended | None = None


def evolve(standing: Standing | None, event: ForumEvent) -> Standing | None:
    if isinstance(event, MemberRegistered):
        return Standing(event.name, event.role)
    if standing is None:
        return None
    if isinstance(event, MemberRoleChanged):
        return msgspec.structs.replace(standing, role=event.role)
    if isinstance(event, MemberSuspended):
        return msgspec.structs.replace(standing, suspended=event)
    if isinstance(event, MemberSuspensionLifted):
        return msgspec.structs.replace(standing, suspended=None)
    return standing


def standing(events: Sequence[ForumEvent]) -> Standing | None:
    found: Standing | None = None
    for event in events:
        found = evolve(found, event)
    return found


def suspension(standing: Standing | None, now: datetime) -> MemberSuspended | None:
    """The suspension in force now. One whose ``until`` has passed is simply over: no
    event marks its end."""
    if standing is None or standing.suspended is None:
        return None
    until = standing.suspended.until
    return standing.suspended if until is None or until > now else None


def suspended_detail(suspended: MemberSuspended) -> str:
    end = ("until it is lifted" if suspended.until is None
           else f"until {suspended.until.isoformat().replace('+00:00', 'Z')}")
    return f"{suspended.name} is suspended {end}: {suspended.reason}"


def check_not_suspended(standing: Standing | None, now: datetime) -> None:
    """A suspended member may neither sign in nor write (403 with the reason and end)."""
    if (suspended := suspension(standing, now)) is not None:
        raise ForbiddenError(suspended_detail(suspended))


def _may_judge(target: Standing | None, name: str, actor: Actor) -> Standing:
    if not actor.moderates:
        raise ForbiddenError("only moderators and the operator may suspend members")
    if name.strip().casefold() == "operator" and target is None:
        raise ForbiddenError("the operator cannot be suspended")
    if target is None:
        raise NotFoundError("no such member")
    if target.role == "moderator" and actor.role != "operator":
        raise ForbiddenError("only the operator may suspend or reinstate a moderator")
    return target


def suspend(existing: Sequence[ForumEvent], name: str, *, until: datetime | None,
            reason: str, actor: Actor, now: datetime) -> list[ForumEvent]:
    """Moderators and the operator suspend members; a moderator neither the operator nor
    another moderator. Suspending a suspended member replaces the suspension (to extend
    or shorten it)."""
    target = _may_judge(standing(existing), name, actor)
    # Printable text on one line: no control or format characters (PostgreSQL's jsonb
    # cannot even hold NUL), runs of spaces and line breaks as one space.
    reason = " ".join("".join(ch if ch.isprintable() else " " for ch in reason).split())
    if not reason:
        raise InvalidInputError("give a reason for the suspension")
    if len(reason) > REASON_MAX:
        raise InvalidInputError(f"reason is longer than {REASON_MAX} characters")
    if until is not None:
        if until.tzinfo is None:
            raise InvalidInputError("until must be a time with a time zone, e.g. ...Z")
        if until <= now:
            raise InvalidInputError("until must be in the future")
    return [MemberSuspended(occurred_at=now, actor=actor.name, name=target.name,
                            reason=reason, until=until)]


def lift_suspension(existing: Sequence[ForumEvent], name: str, *, actor: Actor,
                    now: datetime) -> list[ForumEvent]:
    target = _may_judge(standing(existing), name, actor)
    if suspension(target, now) is None:
        raise ConflictError(f"{target.name} is not suspended")
    return [MemberSuspensionLifted(occurred_at=now, actor=actor.name, name=target.name)]
