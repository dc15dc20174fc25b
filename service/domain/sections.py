"""A forum section: created by the operator or a moderator."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from events.catalog import ForumEvent
from events.sections import ForumCreated
from service.domain.actors import Actor
from service.domain.errors import AlreadyExistsError, ForbiddenError
from service.domain.text import check_slug, clean_title


def create_forum(
    existing: Sequence[ForumEvent], *, slug: str, title: str, actor: Actor, now: datetime
) -> list[ForumEvent]:
    if not actor.moderates:
        raise ForbiddenError("only the operator or a moderator may create sections")
    slug = check_slug(slug)
    title = clean_title(title)
    if existing:
        raise AlreadyExistsError(f"section {slug!r} exists already")
    return [ForumCreated(occurred_at=now, actor=actor.name, slug=slug, title=title)]
