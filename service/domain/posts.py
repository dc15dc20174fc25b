"""A thread's posts as the write side's decisions need them, in a few flat arrays. Pure.

What the decisions read of a post (service/domain/threads.py, review.py): its number,
author, whether a guest wrote it and whether the thread's starter did, when it was written
and last edited, whether it is deleted and who likes it. Never its body: a reply quoting
it takes the number and the author, an edit or a deletion carries what it changes. So a
post costs about 25 bytes here (its id, number, author as an index into the thread's
names, flags, creation time in microseconds), against a kilobyte or more as an object
with its body: a thread of 50,000 posts is about 1.3 MB, its snapshot the same bytes
(service/domain/snapshot.py), and the API process's cache of folded threads holds many
(service/thread_cache.py). Edits, likes and creation times that are not plain UTC are
rare and kept aside by post id.

Rows are in post id order, not number order: ids come from a sequence taken before the
append (a held post is numbered when approved), so a lookup is a binary search and an
insertion almost always an append at the end.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from sys import intern
from typing import Final

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND: Final = timedelta(microseconds=1)
_GUEST, _OP, _DELETED = 1, 2, 4
_NONE: Final[frozenset[str]] = frozenset()

# Bytes an entry costs beyond the arrays (a dict slot, a key, a value): the estimate of
# service/thread_cache.py. Measured with tracemalloc (tests/unit/test_thread_cache.py).
_NAME_BYTES: Final = 120
_EDITED_BYTES: Final = 150
_LIKED_BYTES: Final = 330
_LIKER_BYTES: Final = 80
_ODD_BYTES: Final = 200


@dataclass(frozen=True, slots=True)
class Post:
    """One post as the decisions see it: read from the arrays when asked for."""

    post_id: int
    number: int
    author: str
    guest: bool
    op: bool
    created_at: datetime
    edited_at: datetime | None = None
    deleted: bool = False
    likers: frozenset[str] = _NONE  # casefolded names


class Posts:
    """The posts of one thread, by post id."""

    __slots__ = ("authors", "created", "edited", "flags", "ids", "likers", "likes",
                 "name_ids", "names", "numbers", "odd_created")

    def __init__(self) -> None:
        self.ids = array("q")
        self.numbers = array("i")
        self.authors = array("I")  # index into names
        self.flags = bytearray()
        self.created = array("q")  # microseconds since 1970 UTC, 0 when in odd_created
        self.names: list[str] = []
        self.name_ids: dict[str, int] = {}
        self.edited: dict[int, datetime] = {}
        self.likers: dict[int, frozenset[str]] = {}
        self.likes = 0  # the likers of all posts, counted for nbytes
        self.odd_created: dict[int, datetime] = {}  # not a UTC datetime: kept as it was

    # -- reading ------------------------------------------------------------------------

    def _row(self, post_id: int) -> int:
        row = bisect_left(self.ids, post_id)
        return row if row < len(self.ids) and self.ids[row] == post_id else -1

    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, post_id: object) -> bool:
        return isinstance(post_id, int) and self._row(post_id) >= 0

    def __iter__(self) -> Iterator[int]:
        return iter(self.ids)

    def values(self) -> Iterator[Post]:
        return (self[post_id] for post_id in self.ids)

    def get(self, post_id: int) -> Post | None:
        row = self._row(post_id)
        if row < 0:
            return None
        flags = self.flags[row]
        created = self.odd_created.get(post_id) or _EPOCH + self.created[row] * _MICROSECOND
        return Post(post_id=post_id, number=self.numbers[row],
                    author=self.names[self.authors[row]], guest=bool(flags & _GUEST),
                    op=bool(flags & _OP), created_at=created,
                    edited_at=self.edited.get(post_id), deleted=bool(flags & _DELETED),
                    likers=self.likers.get(post_id, _NONE))

    def __getitem__(self, post_id: int) -> Post:
        post = self.get(post_id)
        if post is None:
            raise KeyError(post_id)
        return post

    def __eq__(self, other: object) -> bool:
        """Equal when they hold the same posts, however they were built (a snapshot's
        arrays and a fold's may name the authors in another order)."""
        if not isinstance(other, Posts):
            return NotImplemented
        return self.ids == other.ids and all(self.get(i) == other.get(i) for i in self.ids)

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"Posts({[self.get(i) for i in self.ids]!r})"

    def nbytes(self) -> int:
        """About what these posts take in memory, in bytes, without walking them."""
        arrays = sum(a.buffer_info()[1] * a.itemsize
                     for a in (self.ids, self.numbers, self.authors, self.created))
        return (arrays + len(self.flags) + 400 + len(self.names) * _NAME_BYTES
                + len(self.edited) * _EDITED_BYTES + len(self.likers) * _LIKED_BYTES
                + self.likes * _LIKER_BYTES + len(self.odd_created) * _ODD_BYTES)

    # -- changing (service/domain/threads.py evolve) -------------------------------------

    def _name(self, name: str) -> int:
        found = self.name_ids.get(name)
        if found is None:
            found = self.name_ids[intern(name)] = len(self.names)
            self.names.append(intern(name))
        return found

    def add(self, post_id: int, *, number: int, author: str, guest: bool, op: bool,
            created_at: datetime) -> None:
        row = len(self.ids)
        if row and self.ids[-1] >= post_id:
            row = bisect_left(self.ids, post_id)
            if self.ids[row] == post_id:
                raise ValueError(f"post {post_id} is there already")
        if created_at.tzinfo is UTC:
            micros = (created_at - _EPOCH) // _MICROSECOND
        else:
            micros, self.odd_created[post_id] = 0, created_at
        self.ids.insert(row, post_id)
        self.numbers.insert(row, number)
        self.authors.insert(row, self._name(author))
        self.flags.insert(row, (_GUEST if guest else 0) | (_OP if op else 0))
        self.created.insert(row, micros)

    def _existing(self, post_id: int) -> int:
        row = self._row(post_id)
        if row < 0:
            raise KeyError(post_id)
        return row

    def edit(self, post_id: int, at: datetime) -> None:
        self._existing(post_id)
        self.edited[post_id] = at

    def delete(self, post_id: int) -> None:
        self.flags[self._existing(post_id)] |= _DELETED

    def like(self, post_id: int, who: str) -> None:
        self._existing(post_id)
        before = self.likers.get(post_id, _NONE)
        self.likers[post_id] = after = before | {intern(who)}
        self.likes += len(after) - len(before)

    def unlike(self, post_id: int, who: str) -> None:
        self._existing(post_id)
        before = self.likers.get(post_id, _NONE)
        left = before - {who}
        self.likes -= len(before) - len(left)
        if left:
            self.likers[post_id] = left
        else:
            self.likers.pop(post_id, None)
