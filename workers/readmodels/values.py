"""What the reads answer (workers/readmodels/reads.py): plain typed values, nothing of HTTP.

A thread page's posts come as ``PostEntry``: the post (``PostHead``, decoded from what is
stored for it, workers/readmodels/stored_posts.py) with the author's live counters and the
like count beside it. Every value carries
``position``: the lowest checkpoint of the read models it came from; ``seen``, all of
their checkpoints, and ``spaces``, the namespaces (generations) it was read from: what a
value shows is the same whenever ``seen`` and ``spaces`` are. ``seen`` alone is not
enough: an erasure rebuilds every read model into a new namespace that reaches the same
checkpoints with other bytes (docs/design.md, "Erasure and export").
"""

from __future__ import annotations

from typing import Annotated, Final

import msgspec

# RFC 3339, UTC ("2011-06-08T14:03:00.000Z").
Time = Annotated[str, msgspec.Meta(extra_json_schema={"extra": {"format": "date-time"}})]


class ThreadSummary(msgspec.Struct):
    """A thread as lists show it."""

    id: int
    title: str
    forum: str
    author: str
    guest: bool
    posts: int
    replies: int
    created_at: Time
    bumped_at: Time
    locked: bool


class Section(msgspec.Struct):
    slug: str
    title: str
    threads: int
    posts: int


class HeldItem(msgspec.Struct):
    """A post or new thread held for review, as the held projection stores it (JSON)."""

    id: int
    thread_id: int
    forum: str
    title: str | None  # the new thread's title when the whole thread is held
    author: str
    guest: bool
    body: str
    created_at: str
    new_thread: bool


class StoredQuote(msgspec.Struct):
    post_id: int
    number: int
    author: str


class AuthorHead(msgspec.Struct):
    name: str
    guest: bool
    op: bool


class PostHead(msgspec.Struct):
    """A post as a read shows it, but for the author's counters and the likes: the JSON
    route encodes it and splices those in before its closing ``}}``. Field order is the
    contract: ``author`` must come last."""

    id: int
    thread_id: int
    number: int
    created_at: str
    edited_at: str | None
    deleted: bool
    body: str
    html: str
    quotes: list[StoredQuote]
    author: AuthorHead


_held_item: Final = msgspec.json.Decoder(HeldItem).decode


class PostEntry(msgspec.Struct, frozen=True):
    """One post of a page: the post and what a read adds: the author's counters and the
    like count, as the decimal bytes Redis holds them."""

    post: PostHead
    threads: bytes
    posts: bytes
    reputation: bytes
    likes: bytes

    def head(self) -> PostHead:
        """What a page shows of the post."""
        return self.post


class ThreadPage(msgspec.Struct, frozen=True):
    thread: ThreadSummary
    posts: list[PostEntry]
    page: int
    pages: int
    per_page: int
    position: int
    seen: tuple[int, ...]
    spaces: tuple[str, ...] = ()


class OnePost(msgspec.Struct, frozen=True):
    """A post read alone, by id, with the page of its thread it is on."""

    post: PostEntry
    page: int
    position: int
    seen: tuple[int, ...] = ()
    spaces: tuple[str, ...] = ()


class Listing(msgspec.Struct, frozen=True):
    """A page of threads: a section's by last bump, the unanswered, a year's archive."""

    threads: list[ThreadSummary]
    page: int
    pages: int
    position: int
    seen: tuple[int, ...]
    spaces: tuple[str, ...] = ()


class SectionPage(msgspec.Struct, frozen=True):
    forum: Section
    listing: Listing

    @property
    def position(self) -> int:
        return self.listing.position

    @property
    def seen(self) -> tuple[int, ...]:
        return self.listing.seen

    @property
    def spaces(self) -> tuple[str, ...]:
        return self.listing.spaces


class YearCount(msgspec.Struct):
    year: int
    threads: int


class ArchiveYears(msgspec.Struct, frozen=True):
    forum: Section
    years: list[YearCount]
    position: int
    seen: tuple[int, ...]
    spaces: tuple[str, ...] = ()


class Forums(msgspec.Struct, frozen=True):
    forums: list[Section]
    position: int
    seen: tuple[int, ...]
    spaces: tuple[str, ...] = ()


class UserStats(msgspec.Struct, frozen=True):
    name: str
    guest: bool
    joined: str | None
    threads: int
    posts: int
    reputation: int
    position: int
    seen: tuple[int, ...] = ()
    spaces: tuple[str, ...] = ()


class RecentPost(msgspec.Struct, frozen=True):
    """One of an author's last posts, with the thread it is in."""

    id: int
    number: int
    thread: ThreadSummary
    created_at: str


class Activity(msgspec.Struct, frozen=True):
    """An author's last threads and posts, newest first (the profile page)."""

    threads: list[ThreadSummary]
    posts: list[RecentPost]
    position: int
    seen: tuple[int, ...] = ()
    spaces: tuple[str, ...] = ()


class HeldQueue(msgspec.Struct, frozen=True):
    items: list[bytes]  # each a HeldItem as JSON
    page: int
    pages: int
    position: int
    seen: tuple[int, ...] = ()
    spaces: tuple[str, ...] = ()

    def held(self) -> list[HeldItem]:
        return [_held_item(item) for item in self.items]


class Revision(msgspec.Struct, frozen=True):
    """One earlier version of a post: when it was written and its body's HTML."""

    written_at: str
    html: str


class Revisions(msgspec.Struct, frozen=True):
    """An edited post's history: the post as it is now and its earlier versions, oldest
    first (``older``: how many more, older still, are not listed)."""

    post: PostHead
    earlier: list[Revision]
    older: int
    position: int
    seen: tuple[int, ...] = ()
    spaces: tuple[str, ...] = ()
