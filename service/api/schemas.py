"""The JSON bodies the API answers, as the OpenAPI document (/api/schema) describes them.

Declarations only. Reads send JSON spliced from ready bytes (service/api/bodies.py, which
also encodes the read values ThreadSummary, Section and YearCount: declared with the
reads, workers/readmodels/values.py, and search's SearchPage: workers/readmodels/search.py)
and writes encode their command results (service/commands.py); these Structs mirror that
JSON field for field so the document tells the truth without decoding anything on the
read path.
tests/e2e/test_openapi.py checks real answers against them (and Schemathesis does too).
Fields that are sometimes absent are ``UNSET`` (not required), never ``None``.
"""

from __future__ import annotations

from typing import Any

import msgspec
from msgspec import UNSET, UnsetType

from service.errors import Problem
from workers.readmodels.search import Found, FoundThread, SearchPage
from workers.readmodels.values import Section, ThreadSummary, Time, YearCount

__all__ = [
    "ArchiveYear", "ArchiveYears", "Author", "EventsPage", "ForumCreated", "Forums",
    "Found", "FoundThread", "Health", "HeldResult", "LoggedEvent", "MemberRegistered",
    "Post", "PostChanged", "PostOnPage", "Problem", "Quote", "Readiness", "ReplyPosted",
    "RoleChanged", "SearchPage", "Section", "SessionIssued", "ThreadChanged", "ThreadList",
    "ThreadPage", "ThreadStarted", "ThreadSummary", "UnansweredList", "UserProfile",
    "YearCount",
]

# A position of the event log: pass it back (X-Min-Position, after), never do arithmetic.
Position = int


# -- reads ------------------------------------------------------------------------------

class Author(msgspec.Struct):
    name: str
    guest: bool
    op: bool
    threads: int
    posts: int
    reputation: int


class Quote(msgspec.Struct):
    post_id: int
    number: int
    author: str


class Post(msgspec.Struct):
    id: int
    thread_id: int
    number: int
    created_at: Time
    edited_at: Time | None
    deleted: bool
    body: str
    html: str
    quotes: list[Quote]
    author: Author
    likes: int


class PostOnPage(Post):
    """One post read alone: with the page of its thread it is on."""

    page: int


class ThreadPage(msgspec.Struct):
    thread: ThreadSummary
    posts: list[Post]
    page: int
    pages: int
    per_page: int


class ThreadList(msgspec.Struct):
    forum: Section
    threads: list[ThreadSummary]
    page: int
    pages: int


class UnansweredList(msgspec.Struct):
    threads: list[ThreadSummary]
    page: int
    pages: int


class ArchiveYears(msgspec.Struct):
    forum: Section
    years: list[YearCount]


class ArchiveYear(msgspec.Struct):
    forum: str
    year: int
    threads: list[ThreadSummary]
    page: int
    pages: int


class Forums(msgspec.Struct):
    forums: list[Section]
    page: int
    pages: int


class UserProfile(msgspec.Struct):
    name: str
    guest: bool
    joined: Time | None
    threads: int
    posts: int
    reputation: int


class LoggedEvent(msgspec.Struct):
    position: Position
    stream: str
    version: int
    type: str
    data: dict[str, Any]
    recorded_at: Time
    metadata: dict[str, Any]


class EventsPage(msgspec.Struct):
    events: list[LoggedEvent]
    after: Position
    last: Position


# -- writes -----------------------------------------------------------------------------

class ForumCreated(msgspec.Struct):
    slug: str
    title: str
    position: Position


class ThreadStarted(msgspec.Struct):
    thread_id: int
    post_id: int
    position: Position
    number: int | UnsetType = UNSET
    page: int | UnsetType = UNSET
    guest_token: str | UnsetType = UNSET


class ReplyPosted(msgspec.Struct):
    thread_id: int
    post_id: int
    number: int
    page: int
    position: Position
    guest_token: str | UnsetType = UNSET


class HeldResult(msgspec.Struct):
    """A guest's (or new member's) post held for a moderator's review: not yet shown."""

    held: bool
    held_id: int
    thread_id: int
    position: Position
    guest_token: str | UnsetType = UNSET


class ThreadChanged(msgspec.Struct):
    thread_id: int
    position: Position
    guest_token: str | UnsetType = UNSET


class PostChanged(msgspec.Struct):
    post_id: int
    thread_id: int
    position: Position


class MemberRegistered(msgspec.Struct):
    name: str
    position: Position
    role: str | UnsetType = UNSET


class RoleChanged(msgspec.Struct):
    name: str
    role: str
    position: Position


class SessionIssued(msgspec.Struct):
    token: str
    name: str
    role: str


class SessionsRevoked(msgspec.Struct):
    name: str
    revoked: int


# -- operators --------------------------------------------------------------------------

class Health(msgspec.Struct):
    status: str


class Readiness(msgspec.Struct, kw_only=True):
    """The answer of /ready and of /ready/writes (service/readiness.py decides it).
    ``status`` is the route's own verdict, "ready" (200) or "not ready" (503): ``reads``
    for /ready, ``writes`` for /ready/writes; both are always there, and ``reasons`` say
    why not, and what is degraded."""

    status: str
    reads: str
    """"ready": Redis answers, every read model exists and is within the lag limit."""
    writes: str
    """"ready": PostgreSQL answers."""
    postgres: str
    redis: str
    broker: str
    """Reported, never required: writes succeed and projection goes on without it."""
    reasons: list[str]
    max_lag_seconds: float
    head: Position | UnsetType = UNSET
    projections: dict[str, Position | None] | UnsetType = UNSET
    rebuilding: list[str] | UnsetType = UNSET
    lag_seconds: float | UnsetType = UNSET
    """The furthest-behind read model's: the age of the oldest event it has not projected,
    including events committed but held behind the log's read horizon. Absent while
    PostgreSQL does not answer (then it cannot be measured)."""
    horizon_held_seconds: float | UnsetType = UNSET
    """Age of the oldest committed event not readable yet because a transaction on the
    PostgreSQL cluster holds the log's read horizon; 0: none waits."""
