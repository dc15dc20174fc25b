"""``forum import FILE``: append threads of an existing board from JSON Lines.

A line is ``{forum, title, posts: [{author, created_at, body, id?}]}``. Each thread goes
through the same decisions as the API, with the posts' original times. Authors are guests
unless a member of that name exists. Quotes may name the old board's post ``id``s of the
same thread; they are mapped to the new ids.

Idempotent: each line is appended under an idempotency key derived from its content, so
importing the same file again (or the rest of a file after an import that stopped) adds
nothing twice. A malformed line is reported with its number and nothing of it is
appended; the lines around it are imported, and the command exits non-zero at the end.

At the speed of the database: the file is read as a stream, in batches of whole lines
(about ``BATCH_POSTS`` posts). For a batch, the keys already imported, the members among
its authors and the sections it needs are looked up in one query each, its ids are taken
from the sequences in one query per kind, its threads are decided, and all of them are
appended in ONE statement, so one transaction (events/bulk.py). While a batch is written
the next one is read and decided, on another connection: this process's CPU and
PostgreSQL's overlap. Batches are written one after another, in file order, so threads
get ids and positions in the order of the file. A batch is committed whole or not at all;
when the import stops (PostgreSQL refused or went away, the process was killed), what was
committed stays and running the same command again imports the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import msgspec

from events import ConcurrencyError, ForumEvent, Metadata
from events.bulk import NewStreams, append_new_streams, known_keys, read_streams
from events.errors import StoreUnavailableError
from events.postgres import PostgresEventStore, create_pool
from events.records import forum_stream, member_stream, thread_stream
from service.domain import sections, threads
from service.domain.actors import OPERATOR, Actor
from service.domain.errors import DomainError
from service.domain.members import member
from service.domain.text import check_slug, clean_name
from service.settings import Settings

# A batch closes once it holds this many posts or bytes of input (a line is never split).
# Large enough that the per-batch round trips cost nothing, small enough that the next
# batch is decided while this one is written, and that memory stays small.
BATCH_POSTS = 2_000
BATCH_BYTES = 4 << 20
# Authors' names and members looked up are remembered, up to this many: beyond, forgotten
# (memory must not grow with the file); a name forgotten is looked up again.
NAMES_KEPT = 100_000


class ImportedPost(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    author: str
    created_at: datetime
    body: str
    id: int | None = None


class ImportedThread(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    forum: str
    title: str
    posts: list[ImportedPost]


@dataclass
class Report:
    imported: int = 0
    posts: int = 0
    skipped: int = 0
    malformed: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)
    """The malformed lines, when no ``on_error`` was given to the importer."""


ErrorSink = Callable[[int, str], None]
ProgressSink = Callable[[int, int], None]
"""Told, after each batch is written, the bytes of the file read so far and the posts
imported so far."""


_decoder = msgspec.json.Decoder(ImportedThread)
_QUOTE_ID = re.compile(r"(\[quote=[^\]\[]*?\bpost=)(\d{1,19})", re.IGNORECASE)


class LineError(Exception):
    pass


class ImportStoppedError(Exception):
    """The import stopped at ``line``: every line before it is imported (or skipped, or
    reported malformed), nothing of it or after it is."""

    def __init__(self, line: int, cause: BaseException, report: Report) -> None:
        self.line, self.cause, self.report = line, cause, report
        super().__init__(f"stopped at line {line}: {cause}")


# What makes an import stop rather than refuse one line: the database refused a batch or
# could not be reached.
_STOPPING = (asyncpg.PostgresError, asyncpg.InterfaceError, StoreUnavailableError, OSError)


@dataclass
class _Line:
    number: int
    thread: ImportedThread
    key: str


@dataclass
class _Chunk:
    """Whole lines of the file, decoded, and the malformed ones among them."""

    first: int
    end: int  # bytes of the file read up to the end of this chunk
    lines: list[_Line] = field(default_factory=list)
    errors: list[tuple[int, str]] = field(default_factory=list)
    posts: int = 0
    size: int = 0


@dataclass
class _Batch:
    chunk: _Chunk
    streams: NewStreams
    lines: list[_Line]
    skipped: int


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
    """The idempotency key of a line: its content, whatever its place in the file."""
    return "import:" + hashlib.sha256(msgspec.json.encode(thread)).hexdigest()


def chunks(lines: Iterable[bytes]) -> Iterator[_Chunk]:
    """The file's lines, decoded, in chunks of about ``BATCH_POSTS`` posts."""
    read = 0
    chunk = _Chunk(first=1, end=0)
    number = 0
    for number, raw in enumerate(lines, start=1):
        read += len(raw)
        if not raw.strip():
            continue
        try:
            thread = parse(raw)
        except LineError as error:
            chunk.errors.append((number, str(error)))
        else:
            chunk.lines.append(_Line(number, thread, line_key(thread)))
            chunk.posts += len(thread.posts)
        chunk.size += len(raw)
        if chunk.posts >= BATCH_POSTS or chunk.size >= BATCH_BYTES:
            chunk.end = read
            yield chunk
            chunk = _Chunk(first=number + 1, end=read)
    chunk.end = read
    if chunk.lines or chunk.errors:
        yield chunk


def decide(thread: ImportedThread, thread_id: int, post_ids: list[int],
           actor: Callable[[str], Actor]) -> list[ForumEvent]:
    """The events the service would append for this thread, posted at the original times
    by these authors, with these ids. DomainError or LineError when the rules refuse."""
    old_to_new = {p.id: new for p, new in zip(thread.posts, post_ids, strict=True)
                  if p.id is not None}

    def mapped(body: str) -> str:
        if not old_to_new or "post=" not in body.lower():
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


class Importer:
    def __init__(self, store: PostgresEventStore, *, on_error: ErrorSink | None = None,
                 on_progress: ProgressSink | None = None) -> None:
        self.store = store
        self._pool = store.pool
        self._on_error = on_error
        self._on_progress = on_progress
        self._names: dict[str, str | LineError] = {}  # as written -> as kept, or refused
        self._members: dict[str, bool] = {}  # casefolded name -> is a member
        self._forums: set[str] = set()  # sections known to exist

    # -- looking up what a batch needs, in one query each ---------------------------------

    def _name(self, written: str) -> str:
        kept = self._names.get(written)
        if kept is None:
            try:
                kept = clean_name(written, "author")
            except DomainError as error:
                kept = LineError(error.detail)
            if len(self._names) >= NAMES_KEPT:
                self._names.clear()
            self._names[written] = kept
        if isinstance(kept, LineError):
            raise kept
        return kept

    def _actor(self, written: str) -> Actor:
        name = self._name(written)
        return Actor(name, "member" if self._members[name.casefold()] else "guest")

    async def _learn_members(self, lines: list[_Line]) -> None:
        """Whether each author of ``lines`` is a member, remembered for ``_actor``."""
        keys: set[str] = set()
        for line in lines:
            for post in line.thread.posts:
                with contextlib.suppress(LineError):
                    keys.add(self._name(post.author).casefold())
        if len(self._members) + len(keys) > NAMES_KEPT:
            self._members.clear()
        wanted = keys - self._members.keys()
        if not wanted:
            return
        found = await read_streams(self._pool, [member_stream(k) for k in wanted])
        for key in wanted:
            self._members[key] = member(found[member_stream(key)]) is not None

    async def _missing_forums(self, slugs: set[str]) -> set[str]:
        """Those of ``slugs`` that do not exist yet (the others are remembered)."""
        unknown = sorted(slugs - self._forums)
        if not unknown:
            return set()
        found = await read_streams(self._pool, [forum_stream(s) for s in unknown])
        missing = set()
        for slug in unknown:
            if found[forum_stream(slug)]:
                self._forums.add(slug)
            else:
                missing.add(slug)
        return missing

    async def _create_forum(self, slug: str, when: datetime) -> None:
        new = sections.create_forum([], slug=slug, title=slug.replace("-", " ").title(),
                                    actor=OPERATOR, now=when)
        with contextlib.suppress(ConcurrencyError):  # created meanwhile by someone else
            await self.store.append(forum_stream(slug), 0, new)
        self._forums.add(slug)

    async def _prepare(self, chunk: _Chunk) -> _Batch:
        """Decide a chunk's lines: what to append, and its malformed lines added to its
        errors. Appends nothing but the sections its lines need."""
        lines: list[_Line] = []
        seen: set[str] = set()
        for line in chunk.lines:  # the same line twice in a chunk: the first one counts
            if line.key not in seen:
                seen.add(line.key)
                lines.append(line)
        known = await known_keys(self._pool, [line.key for line in lines])
        lines = [line for line in lines if line.key not in known]
        skipped = len(chunk.lines) - len(lines)
        await self._learn_members(lines)
        slugs = set()
        for line in lines:
            with contextlib.suppress(DomainError):
                slugs.add(check_slug(line.thread.forum))
        missing = await self._missing_forums(slugs)
        thread_ids = await self.store.next_ids("thread", len(lines)) if lines else []
        post_ids = await self.store.next_ids("post", sum(len(x.thread.posts) for x in lines)
                                             ) if lines else []
        streams = NewStreams()
        decided: list[_Line] = []
        at = 0
        for line, thread_id in zip(lines, thread_ids, strict=True):
            ids = post_ids[at:at + len(line.thread.posts)]
            at += len(ids)
            try:
                check_slug(line.thread.forum)
                new = decide(line.thread, thread_id, ids, self._actor)
            except DomainError as error:
                chunk.errors.append((line.number, error.detail))
                continue
            except LineError as error:
                chunk.errors.append((line.number, str(error)))
                continue
            if line.thread.forum in missing:
                missing.discard(line.thread.forum)
                await self._create_forum(line.thread.forum,
                                         line.thread.posts[0].created_at.astimezone(UTC))
            streams.add(line.key, thread_stream(thread_id), new,
                        response=b'{"thread_id":%d}' % thread_id,
                        metadata=msgspec.json.encode(
                            Metadata(correlation_id=f"import-line-{line.number}")))
            decided.append(line)
        chunk.errors.sort()
        return _Batch(chunk, streams, decided, skipped)

    # -- writing ------------------------------------------------------------------------

    async def _write(self, connection: asyncpg.Connection, batch: _Batch,
                     report: Report) -> None:
        appended = await append_new_streams(connection, batch.streams)
        # Told once the batch is in: an import that stops tells what is left to do.
        for number, message in batch.chunk.errors:
            report.malformed += 1
            if self._on_error is not None:
                self._on_error(number, message)
            else:
                report.errors.append((number, message))
        report.skipped += batch.skipped
        for line in batch.lines:
            if line.key in appended:
                report.imported += 1
                report.posts += len(line.thread.posts)
            else:  # imported meanwhile: by an earlier batch still in flight, or elsewhere
                report.skipped += 1
        if self._on_progress is not None:
            self._on_progress(batch.chunk.end, report.posts)

    async def lines(self, lines: Iterable[bytes]) -> Report:
        """Import ``lines`` (a file's, in order). Raises ImportStoppedError when the database
        refuses a batch or goes away."""
        report = Report()
        async with self._pool.acquire() as connection:
            writing: tuple[asyncio.Future[None], int] | None = None

            async def settle() -> None:
                """Wait for the batch being written; ImportStoppedError if it failed."""
                if writing is None:
                    return
                future, first = writing
                try:
                    await future
                except _STOPPING as error:
                    raise ImportStoppedError(first, error, report) from error

            try:
                for chunk in chunks(lines):
                    try:
                        batch = await self._prepare(chunk)
                    except _STOPPING as error:
                        await settle()
                        raise ImportStoppedError(chunk.first, error, report) from error
                    await settle()
                    writing = (asyncio.ensure_future(self._write(connection, batch, report)),
                               chunk.first)
                await settle()
            finally:
                if writing is not None and not writing[0].done():
                    writing[0].cancel()  # interrupted: the statement is rolled back
                    with contextlib.suppress(BaseException):
                        await writing[0]
        return report


def read_lines(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        yield from handle


async def run(settings: Settings, path: Path) -> int:
    from service.progress import file_reporter

    def refused(number: int, message: str) -> None:
        sys.stderr.write(f"{path}:{number}: {message}\n")

    progress = file_reporter(_size(path), verb="importing", label=f"import {path}",
                             unit="posts")
    pool = await create_pool(settings.database_url, min_size=2, max_size=4)
    stopped: ImportStoppedError | None = None
    try:
        importer = Importer(PostgresEventStore(pool), on_error=refused, on_progress=progress)
        try:
            report = await importer.lines(read_lines(path))
        except ImportStoppedError as error:
            stopped, report = error, error.report
    finally:
        await pool.close()
        progress.end()
    said = (f"imported {report.imported} threads ({report.posts} posts); "
            f"{report.skipped} already imported; {report.malformed} malformed lines")
    if stopped is not None:
        sys.stderr.write(
            f"{path}:{stopped.line}: the import stopped here: {_why(stopped.cause)}\n"
            f"Every line before line {stopped.line} is imported, nothing from it on. Run "
            "the same command again to import the rest: lines imported already are "
            "skipped.\n")
        sys.stdout.write(said + " before stopping\n")
        return 1
    sys.stdout.write(said + "\n")
    return 1 if report.malformed else 0


def _size(path: Path) -> int:
    return path.stat().st_size


def _why(cause: BaseException) -> str:
    if isinstance(cause, asyncpg.PostgresError):
        return f"PostgreSQL refused: {cause}"
    return f"cannot reach PostgreSQL: {cause}"

