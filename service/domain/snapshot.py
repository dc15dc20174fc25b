"""A thread's write-side state as bytes, and back: what a snapshot holds. Pure.

A snapshot is the fold (service/domain/threads.py ``Thread``) at some version of the
stream, so that a load reads it and only the events after it. It holds what the decisions
need and nothing else: no post's body (service/domain/posts.py), but a held post's body
(approving publishes it). The posts' arrays go in as they are, so encoding and decoding
cost about a copy of them, not a walk over every post.

``FOLD_VERSION`` names the shape and the meaning of the state: raise it whenever
``Thread``, ``Posts``, ``HeldPost`` or ``evolve`` change what a state holds or how an
event changes it (an upcaster that changes an old event's effect included). A snapshot
of another version is ignored (its row is overwritten by the next snapshot), and the
stream is folded from the start instead: tests/unit/test_snapshot_property.py fails
while a field is left out.

Times are msgpack timestamps: a time kept with an offset other than UTC comes back as the
same instant in UTC.
"""

from __future__ import annotations

import sys
from array import array
from datetime import datetime
from typing import Final

import msgspec

from service.domain.posts import Posts
from service.domain.threads import HeldPost, Thread

FOLD_VERSION: Final = 1


class _Posts(msgspec.Struct, array_like=True, frozen=True):
    ids: bytes
    numbers: bytes
    authors: bytes
    flags: bytes
    created: bytes
    names: list[str]
    edited: dict[int, datetime]
    likers: dict[int, frozenset[str]]
    odd_created: dict[int, datetime]


class _Thread(msgspec.Struct, array_like=True, frozen=True):
    thread_id: int
    forum: str
    title: str
    author: str
    guest: bool
    created_at: datetime
    bumped_at: datetime
    locked: bool
    count: int
    last_starter_bump: datetime | None
    guest_id: str | None
    published: bool
    held: list[HeldPost]
    decided: list[int]
    posts: _Posts


_encoder: Final = msgspec.msgpack.Encoder()
_decoder: Final = msgspec.msgpack.Decoder(_Thread)
_SWAP: Final = sys.byteorder != "little"  # stored little-endian, whatever wrote them


def _raw(values: array[int]) -> bytes:
    if _SWAP:
        values = array(values.typecode, values)
        values.byteswap()
    return values.tobytes()


def _filled(values: array[int], raw: bytes) -> array[int]:
    values.frombytes(raw)
    if _SWAP:
        values.byteswap()
    return values


def encode(thread: Thread) -> bytes:
    posts = thread.posts
    return _encoder.encode(_Thread(
        thread_id=thread.thread_id, forum=thread.forum, title=thread.title,
        author=thread.author, guest=thread.guest, created_at=thread.created_at,
        bumped_at=thread.bumped_at, locked=thread.locked, count=thread.count,
        last_starter_bump=thread.last_starter_bump, guest_id=thread.guest_id,
        published=thread.published, held=list(thread.held.values()),
        decided=sorted(thread.decided),
        posts=_Posts(ids=_raw(posts.ids), numbers=_raw(posts.numbers),
                     authors=_raw(posts.authors), flags=bytes(posts.flags),
                     created=_raw(posts.created), names=posts.names, edited=posts.edited,
                     likers=posts.likers, odd_created=posts.odd_created),
    ))


def decode(data: bytes) -> Thread:
    """The state ``encode`` was given. Raises ``msgspec.DecodeError`` on bytes it did not
    write (or ``ValueError`` on arrays of the wrong size)."""
    s = _decoder.decode(data)
    p = s.posts
    posts = Posts()
    _filled(posts.ids, p.ids)
    _filled(posts.numbers, p.numbers)
    _filled(posts.authors, p.authors)
    posts.flags = bytearray(p.flags)
    _filled(posts.created, p.created)
    if not len(posts.ids) == len(posts.numbers) == len(posts.authors) == len(posts.flags) \
            == len(posts.created):
        raise ValueError("a snapshot's post arrays do not match")
    posts.names = [sys.intern(name) for name in p.names]
    posts.name_ids = {name: i for i, name in enumerate(posts.names)}
    posts.edited, posts.likers, posts.odd_created = p.edited, p.likers, p.odd_created
    posts.likes = sum(map(len, p.likers.values()))
    return Thread(
        thread_id=s.thread_id, forum=s.forum, title=s.title, author=s.author,
        guest=s.guest, created_at=s.created_at, bumped_at=s.bumped_at, locked=s.locked,
        posts=posts, count=s.count, last_starter_bump=s.last_starter_bump,
        guest_id=s.guest_id, published=s.published,
        held={h.held_id: h for h in s.held}, decided=set(s.decided),
    )
