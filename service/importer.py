"""``forum import FILE``: append threads of an existing board from JSON Lines.

Each line (service/import_lines.py) goes through the same decisions as the API, with the
posts' original times. Authors are guests unless a member of that name exists.

Idempotent: each line is appended under an idempotency key derived from its content, so
importing the same file again, or again after an import that stopped half-way, adds
nothing twice. A malformed line is reported with its number and nothing of it is
appended; the lines around it are imported, and the command exits non-zero at the end.

At the speed of the database: the file is read as a stream, in chunks of whole lines of
about ``BATCH_POSTS`` posts. For a chunk, the keys already imported, the members among its
authors and the sections it needs are looked up in one query each and its ids are taken
from the sequences in one query per kind; its threads are decided; all of them are
appended in ONE statement, so one transaction (events/bulk.py). Three chunks are in hand
at once: while one is written (on a connection of its own) the next is decided and the
look-ups of the one after it run, so this process's CPU and PostgreSQL's overlap and no
round trip waits on the critical path. Chunks are written one after another, in file
order, so threads get ids and positions in the order of the file. A chunk is committed
whole or not at all; when the import stops (PostgreSQL refused a chunk or went away, the
process was killed), what was committed stays, and running the same command again
imports the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import sys
from collections.abc import Callable, Coroutine, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import msgspec

from events import ConcurrencyError, Metadata
from events.bulk import NewStreams, append_new_streams, known_keys, read_streams
from events.errors import StoreUnavailableError
from events.postgres import PostgresEventStore, create_pool
from events.records import forum_stream, member_stream, thread_stream
from events.store import MAX_EVENTS_PER_APPEND
from service.domain import sections
from service.domain.actors import OPERATOR, Actor
from service.domain.errors import DomainError
from service.domain.members import member
from service.domain.text import check_slug, clean_name
from service.import_lines import Chunk, Line, LineError, Oversized, chunks, decide, read_lines
from service.settings import Settings

# Authors' names and whether they are members are remembered, up to this many; beyond,
# forgotten (memory must not grow with the file): a name forgotten is looked up again.
NAMES_KEPT = 100_000
# Above the containers three chunks in hand hold at once (decoded posts, the threads'
# folded state): see ``_collector_aside``.
_GC_THRESHOLD = 200_000


@dataclass
class Report:
    imported: int = 0
    posts: int = 0
    skipped: int = 0
    malformed: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)
    """The malformed lines, when the importer was given no ``on_error``."""


ErrorSink = Callable[[int, str], None]
ProgressSink = Callable[[int, int], None]
"""Told, after each chunk is written, the bytes of the file read up to its end and the
posts imported so far."""


class ImportStoppedError(Exception):
    """The import stopped at ``line``: every line before it is imported (or was there
    already, or is reported malformed); nothing of it or after it is."""

    def __init__(self, line: int, cause: BaseException, report: Report) -> None:
        self.line, self.cause, self.report = line, cause, report
        super().__init__(f"stopped at line {line}: {cause}")


# What stops an import rather than refusing one line: the database refused a chunk, or
# could not be reached.
_STOPPING = (asyncpg.PostgresError, asyncpg.InterfaceError, StoreUnavailableError, OSError)


@dataclass
class _Looked:
    """What a chunk's look-ups found: the lines to decide and the ids for them."""

    chunk: Chunk
    lines: list[Line]
    skipped: int
    missing_forums: set[str]
    thread_ids: list[int]
    post_ids: list[int]


@dataclass
class _Part:
    """Decided lines of a chunk written by one statement: all of them, but when their
    events exceed what one statement may hold (a thread of hundreds of thousands of
    posts)."""

    first: int  # the number of its first line
    streams: NewStreams = field(default_factory=NewStreams)
    lines: list[Line] = field(default_factory=list)


@dataclass
class _Batch:
    chunk: Chunk
    parts: list[_Part]
    skipped: int


class Importer:
    def __init__(self, store: PostgresEventStore, *, on_error: ErrorSink | None = None,
                 on_progress: ProgressSink | None = None) -> None:
        self.store = store
        self._pool = store.pool
        if self._pool.get_max_size() < 2:  # one connection writes, another looks up
            raise ValueError("the importer needs a pool of at least two connections")
        self._on_error = on_error
        self._on_progress = on_progress
        self._names: dict[str, str | LineError] = {}  # as written -> as kept, or refused
        self._members: dict[str, bool] = {}  # casefolded name -> a member's
        self._actors: dict[str, Actor] = {}  # as written -> who
        self._forums: set[str] = set()  # sections known to exist

    # -- authors --------------------------------------------------------------------------

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
        actor = self._actors.get(written)
        if actor is None:
            name = self._name(written)
            actor = Actor(name, "member" if self._members[name.casefold()] else "guest")
            if len(self._actors) >= NAMES_KEPT:
                self._actors.clear()
            self._actors[written] = actor
        return actor

    async def _learn_members(self, lines: list[Line]) -> None:
        """Whether each author of ``lines`` is a member, remembered for ``_actor``."""
        written = {post.author for line in lines for post in line.thread.posts}
        keys = set()
        for name in written:
            with contextlib.suppress(LineError):
                keys.add(self._name(name).casefold())
        if len(self._members) + len(keys) > NAMES_KEPT:
            self._members.clear()
            self._actors.clear()
        wanted = keys - self._members.keys()
        if not wanted:
            return
        found = await read_streams(self._pool, [member_stream(k) for k in wanted])
        for key in wanted:
            self._members[key] = member(found[member_stream(key)]) is not None

    # -- sections -------------------------------------------------------------------------

    async def _missing_forums(self, lines: list[Line]) -> set[str]:
        """The sections ``lines`` name that do not exist (yet)."""
        unknown = set()
        for line in lines:
            if line.thread.forum not in self._forums:
                with contextlib.suppress(DomainError):
                    unknown.add(check_slug(line.thread.forum))
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
        if slug in self._forums:
            return
        new = sections.create_forum([], slug=slug, title=slug.replace("-", " ").title(),
                                    actor=OPERATOR, now=when)
        # Created meanwhile (by an operator, or for a chunk whose look-ups ran before the
        # one before it was decided): there it is.
        with contextlib.suppress(ConcurrencyError):
            await self.store.append(forum_stream(slug), 0, new)
        self._forums.add(slug)

    # -- the three stages -----------------------------------------------------------------

    async def _look_up(self, chunk: Chunk) -> _Looked:
        """Everything a chunk's decisions need from the database."""
        lines: list[Line] = []
        seen: set[str] = set()
        for line in chunk.lines:  # the same line twice in a chunk: the first one counts
            if line.key not in seen:
                seen.add(line.key)
                lines.append(line)
        known = await known_keys(self._pool, [line.key for line in lines])
        lines = [line for line in lines if line.key not in known]
        await self._learn_members(lines)
        missing = await self._missing_forums(lines)
        thread_ids: list[int] = []
        post_ids: list[int] = []
        if lines:
            thread_ids = await self.store.next_ids("thread", len(lines))
            post_ids = await self.store.next_ids(
                "post", sum(len(line.thread.posts) for line in lines))
        return _Looked(chunk, lines, len(chunk.lines) - len(lines), missing, thread_ids,
                       post_ids)

    async def _decide(self, looked: _Looked) -> _Batch:
        """A chunk's threads decided (its malformed lines added to its errors), and the
        sections they need created."""
        chunk, at = looked.chunk, 0
        parts = [_Part(chunk.first)]
        for line, thread_id in zip(looked.lines, looked.thread_ids, strict=True):
            ids = looked.post_ids[at:at + len(line.thread.posts)]
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
            if len(new) > MAX_EVENTS_PER_APPEND:
                chunk.errors.append((line.number, f"the thread makes {len(new):,} events, "
                                     f"more than one append may hold ({MAX_EVENTS_PER_APPEND:,})"))
                continue
            if len(parts[-1].streams.events) + len(new) > MAX_EVENTS_PER_APPEND:
                parts.append(_Part(line.number))
            if line.thread.forum in looked.missing_forums:
                await self._create_forum(line.thread.forum,
                                         line.thread.posts[0].created_at.astimezone(UTC))
            parts[-1].streams.add(line.key, thread_stream(thread_id), new,
                                  response=b'{"thread_id":%d}' % thread_id,
                                  metadata=msgspec.json.encode(
                                      Metadata(correlation_id=f"import-line-{line.number}")))
            parts[-1].lines.append(line)
        chunk.errors.sort()
        return _Batch(chunk, parts, looked.skipped)

    def _tell(self, errors: list[tuple[int, str]], report: Report) -> None:
        for number, message in errors:
            report.malformed += 1
            if self._on_error is not None:
                self._on_error(number, message)
            else:
                report.errors.append((number, message))

    async def _write(self, connection: asyncpg.Connection, batch: _Batch,
                     report: Report) -> None:
        """Write a chunk, a part (one statement, one transaction) after another. Its
        malformed lines are told once the lines around them are in, so that an import
        that stops has told nothing of what is left to do."""
        for part in batch.parts:
            try:
                appended = await append_new_streams(connection, part.streams)
            except _STOPPING as error:
                stop = batch.chunk.first if part is batch.parts[0] else part.first
                self._tell([e for e in batch.chunk.errors if e[0] < stop], report)
                raise ImportStoppedError(stop, error, report) from error
            for line in part.lines:
                if line.key in appended:
                    report.imported += 1
                    report.posts += len(line.thread.posts)
                else:  # imported meanwhile: by a chunk still in flight, or by someone else
                    report.skipped += 1
        self._tell(batch.chunk.errors, report)
        report.skipped += batch.skipped
        if self._on_progress is not None:
            self._on_progress(batch.chunk.end, report.posts)

    async def lines(self, lines: Iterable[bytes | Oversized]) -> Report:
        """Import ``lines`` (a file's, in order). Raises ImportStoppedError when the
        database refuses a chunk or cannot be reached."""
        with _collector_aside():
            return await self._lines(lines)

    async def _lines(self, lines: Iterable[bytes | Oversized]) -> Report:
        report = Report()
        pending: list[asyncio.Future[Any]] = []

        def started(coroutine: Coroutine[Any, Any, Any]) -> asyncio.Future[Any]:
            pending[:] = [f for f in pending if not f.done()]  # each awaited already
            future = asyncio.ensure_future(coroutine)
            pending.append(future)
            return future

        async def outcome(future: asyncio.Future[Any], first: int) -> Any:
            try:
                return await future
            except _STOPPING as error:
                raise ImportStoppedError(first, error, report) from error

        async with self._pool.acquire() as connection:
            try:
                read: Iterator[Chunk] = chunks(lines)
                chunk = next(read, None)
                looking = started(self._look_up(chunk)) if chunk else None
                writing: tuple[asyncio.Future[Any], int] | None = None
                while chunk is not None and looking is not None:
                    try:
                        looked: _Looked = await outcome(looking, chunk.first)
                        chunk = next(read, None)
                        looking = started(self._look_up(chunk)) if chunk else None
                        batch = await outcome(started(self._decide(looked)),
                                              looked.chunk.first)
                    except ImportStoppedError:
                        if writing is not None:  # that one may have failed first
                            await outcome(*writing)
                        raise
                    if writing is not None:
                        await outcome(*writing)
                    writing = (started(self._write(connection, batch, report)),
                               batch.chunk.first)
                if writing is not None:
                    await outcome(*writing)
            finally:
                for future in pending:  # interrupted: a write in flight is rolled back
                    if not future.done():
                        future.cancel()
                    with contextlib.suppress(BaseException):
                        await future
        return report


@contextlib.contextmanager
def _collector_aside() -> Iterator[None]:
    """Keep the cyclic garbage collector out of the way, as a rebuild does
    (workers/rebuild.py ``collect_per_batch``): a chunk allocates tens of thousands of
    containers and frees them all once written, none in a cycle; at the default threshold
    the collector ran several times per chunk and rescanned the chunks in hand (about a
    tenth of the import's CPU). Cycles are still collected, later. Restored after."""
    before = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(max(before[0], _GC_THRESHOLD), *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()


def read_file(path: Path) -> Iterator[bytes | Oversized]:
    with path.open("rb") as handle:
        yield from read_lines(handle)


async def run(settings: Settings, path: Path) -> int:
    from service.progress import file_reporter

    def refused(number: int, message: str) -> None:
        sys.stderr.write(f"{path}:{number}: {message}\n")

    progress = file_reporter(_size(path), verb="importing", label=f"import {path}",
                             unit="posts")
    stopped: ImportStoppedError | None = None
    try:
        pool = await create_pool(settings.database_url, min_size=2, max_size=4)
        try:
            importer = Importer(PostgresEventStore(pool), on_error=refused,
                                on_progress=progress)
            report = await importer.lines(read_file(path))
        except ImportStoppedError as error:
            stopped, report = error, error.report
        finally:
            await pool.close()
    finally:
        progress.end()
    said = (f"imported {report.imported} threads ({report.posts} posts); "
            f"{report.skipped} already imported; {report.malformed} malformed lines")
    if stopped is not None:
        sys.stderr.write(
            f"{path}:{stopped.line}: the import stopped here: {_why(stopped.cause)}\n"
            f"Every line before line {stopped.line} is imported, nothing from it on. Run "
            "the same command again to import the rest: lines imported already are "
            "skipped.\n")
        sys.stdout.write(said + " before it stopped\n")
        return 1
    sys.stdout.write(said + "\n")
    return 1 if report.malformed else 0


def _size(path: Path) -> int:
    return path.stat().st_size


def _why(cause: BaseException) -> str:
    if isinstance(cause, asyncpg.PostgresError):
        return f"PostgreSQL refused: {cause}"
    return f"cannot reach PostgreSQL: {cause}"
