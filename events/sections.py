"""Events of a forum section (stream ``forum-{slug}``)."""

from __future__ import annotations

from events.base import Event


class ForumCreated(Event, tag="forum_created", frozen=True):
    slug: str
    title: str
