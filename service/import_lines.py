"""The lines of a ``forum import`` file, decoded, checked, keyed, chunked and decided, with
no I/O (service/importer.py looks up and writes).

A line is ``{forum, title, posts: [{author, created_at, body, id?}]}``: a thread of an
existing board. ``decide`` puts it through the same decisions as the API, with the posts'
original times, and maps quotes of the old board's post ``id``s to the new ids.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import BinaryIO

import msgspec

from events import ForumEvent
from service.domain import threads
from service.domain.actors import Actor

# A chunk closes once it holds this many posts or bytes of input (a line is never split).
# Large enough that a chunk's round trips cost nothing, small enough that the next chunk
# is decided while this one is written, and that memory stays small.
BATCH_POSTS = 5_000
BATCH_BYTES = 4 << 20
# A line (one thread) longer than this is refused unread: a file without line breaks,
# or with a broken one, must not be read into memory whole.
MAX_LINE_BYTES = 256 << 20


class ImportedPost(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    author: str
    created_at: datetime
    body: str
    id: int | None = None


class ImportedThread(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    forum: str
    title: str
    posts: list[ImportedPost]


class LineError(Exception):
    """A line refused: its number and this message are reported, nothing of it written."""


@dataclass(frozen=True)
class Oversized:
    """A line longer than ``MAX_LINE_BYTES``, in place of its bytes (``read_lines``)."""

    size: int


def read_lines(handle: BinaryIO, limit: int = MAX_LINE_BYTES) -> Iterator[bytes | Oversized]:
    """The lines of a file opened for reading bytes, each at most ``limit`` bytes long (a
    longer one is skipped and stands as ``Oversized``)."""
    while line := handle.readline(limit + 1):
        if len(line) <= limit or line.endswith(b"\n"):
            yield line
            continue
        size = len(line)
        while rest := handle.readline(1 << 20):
            size += len(rest)
            if rest.endswith(b"\n"):
                break
        yield Oversized(size)


@dataclass
class Line:
    number: int
    thread: ImportedThread
    key: str


@dataclass
class Chunk:
    """Consecutive lines of the file, decoded, and the malformed ones among them."""

    first: int  # the number of its first line
    end: int = 0  # bytes of the file read up to its end
    lines: list[Line] = field(default_factory=list)
    errors: list[tuple[int, str]] = field(default_factory=list)
    posts: int = 0
    size: int = 0


_decoder = msgspec.json.Decoder(ImportedThread)
_QUOTE_ID = re.compile(r"(\[quote=[^\]\[]*?\bpost=)(\d{1,19})", re.IGNORECASE)


def parse(raw: bytes) -> ImportedThread:
    """A line, decoded and checked for what needs no database; LineError otherwise."""
    try:
        thread = _decoder.decode(raw)
    except msgspec.ValidationError as error:
        raise LineError(str(error)) from error
    except (msgspec.DecodeError, UnicodeDecodeError) as error:
        raise LineError(f"not JSON: {error}") from error
    if not thread.posts:
        raise LineError("a thread needs at least one post")
    previous = None
    for post in thread.posts:
        if post.created_at.tzinfo is None:
            raise LineError("created_at must carry a time zone (RFC 3339)")
        if previous is not None and post.created_at < previous:
            raise LineError("posts must be in the order they were written")
        previous = post.created_at
    return thread


def line_key(thread: ImportedThread) -> str:
    """The idempotency key of a line: its content, wherever it is in whichever file (the
    same as imports before batching used, so a file imported by them is recognised)."""
    return "import:" + hashlib.sha256(msgspec.json.encode(thread)).hexdigest()


def chunks(lines: Iterable[bytes | Oversized]) -> Iterator[Chunk]:
    """The file's lines, decoded, in chunks of about ``BATCH_POSTS`` posts, read lazily."""
    read = 0
    chunk = Chunk(first=1)
    for number, raw in enumerate(lines, start=1):
        if isinstance(raw, Oversized):
            read += raw.size
            chunk.errors.append((number, f"the line is longer than {MAX_LINE_BYTES:,} "
                                         f"bytes ({raw.size:,})"))
            continue
        read += len(raw)
        if not raw.strip():
            continue
        try:
            thread = parse(raw)
        except LineError as error:
            chunk.errors.append((number, str(error)))
        else:
            chunk.lines.append(Line(number, thread, line_key(thread)))
            chunk.posts += len(thread.posts)
        chunk.size += len(raw)
        if chunk.posts >= BATCH_POSTS or chunk.size >= BATCH_BYTES:
            chunk.end = read
            yield chunk
            chunk = Chunk(first=number + 1)
    chunk.end = read
    if chunk.lines or chunk.errors:
        yield chunk


def decide(thread: ImportedThread, thread_id: int, post_ids: list[int],
           actor: Callable[[str], Actor]) -> list[ForumEvent]:
    """The events the service would append for this thread, posted at the original times
    by ``actor(author as written)``, with these ids. DomainError or LineError when the
    rules refuse."""
    old_to_new = {p.id: new for p, new in zip(thread.posts, post_ids, strict=True)
                  if p.id is not None}

    def mapped(body: str) -> str:
        if not old_to_new:
            return body

        def swap(m: re.Match[str]) -> str:
            return m[1] + str(old_to_new.get(int(m[2]), int(m[2])))

        return _QUOTE_ID.sub(swap, body)

    first = thread.posts[0]
    new = threads.start_thread(
        thread_id=thread_id, post_id=post_ids[0], forum=thread.forum, title=thread.title,
        body=mapped(first.body), actor=actor(first.author),
        now=first.created_at.astimezone(UTC),
    )
    state = threads.fold(new)
    for post, post_id in zip(thread.posts[1:], post_ids[1:], strict=True):
        more = threads.post_reply(
            state, post_id=post_id, body=mapped(post.body), actor=actor(post.author),
            now=post.created_at.astimezone(UTC),
        )
        for event in more:
            state = threads.evolve(state, event)
        new.extend(more)
    return new
