"""``forum import FILE``: append threads of an existing board from JSON Lines.

A line is ``{forum, title, posts: [{author, created_at, body, id?}]}``. Each thread goes
through the same decisions as the API, with the posts' original times. Authors are guests
unless a member of that name exists. A line is appended in one append under an idempotency
key derived from its content, so importing the same file again adds nothing. A malformed
line is reported with its number and nothing of it is appended. Quotes may name the old
board's post ``id``s of the same thread; they are mapped to the new ids.
"""

from __future__ import annotations

import hashlib
import re
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import msgspec

from events import DuplicateRequestError, EventStore, ForumEvent, IdempotentResult, Metadata
from events.postgres import PostgresEventStore, create_pool
from events.records import forum_stream, member_stream, thread_stream
from service.domain import sections, threads
from service.domain.actors import OPERATOR, Actor
from service.domain.errors import DomainError
from service.domain.members import member
from service.domain.text import clean_name
from service.settings import Settings


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
    errors: list[tuple[int, str]] = field(default_factory=list)


_decoder = msgspec.json.Decoder(ImportedThread)
_QUOTE_ID = re.compile(r"(\[quote=[^\]\[]*?\bpost=)(\d{1,19})", re.IGNORECASE)


class LineError(Exception):
    pass


class Importer:
    def __init__(self, store: EventStore) -> None:
        self.store = store
        self._members: dict[str, bool] = {}
        self._forums: set[str] = set()

    async def _actor(self, name: str) -> Actor:
        name = clean_name(name, "author")
        key = name.casefold()
        if key not in self._members:
            records = await self.store.read_stream(member_stream(name))
            self._members[key] = member([r.event for r in records]) is not None
        return Actor(name, "member" if self._members[key] else "guest")

    async def _ensure_forum(self, slug: str, when: datetime) -> None:
        if slug in self._forums:
            return
        existing = await self.store.read_stream(forum_stream(slug))
        if not existing:
            new = sections.create_forum([], slug=slug, title=slug.replace("-", " ").title(),
                                        actor=OPERATOR, now=when)
            try:
                await self.store.append(forum_stream(slug), 0, new)
            except Exception:  # created meanwhile by someone else: fine
                if not await self.store.read_stream(forum_stream(slug)):
                    raise
        self._forums.add(slug)

    async def _decide(self, line: ImportedThread) -> tuple[int, list[ForumEvent]]:
        if not line.posts:
            raise LineError("a thread needs at least one post")
        previous = None
        for post in line.posts:
            if post.created_at.tzinfo is None:
                raise LineError("created_at must carry a time zone (RFC 3339)")
            if previous is not None and post.created_at < previous:
                raise LineError("posts must be in the order they were written")
            previous = post.created_at
        thread_id = (await self.store.next_ids("thread"))[0]
        post_ids = await self.store.next_ids("post", len(line.posts))
        old_to_new = {p.id: new for p, new in zip(line.posts, post_ids, strict=True)
                      if p.id is not None}

        def mapped(body: str) -> str:
            def swap(m: re.Match[str]) -> str:
                return m[1] + str(old_to_new.get(int(m[2]), int(m[2])))

            return _QUOTE_ID.sub(swap, body)

        first = line.posts[0]
        new = threads.start_thread(
            thread_id=thread_id, post_id=post_ids[0], forum=line.forum, title=line.title,
            body=mapped(first.body), actor=await self._actor(first.author),
            now=first.created_at.astimezone(UTC),
        )
        state = threads.fold(new)
        for post, post_id in zip(line.posts[1:], post_ids[1:], strict=True):
            more = threads.post_reply(
                state, post_id=post_id, body=mapped(post.body),
                actor=await self._actor(post.author), now=post.created_at.astimezone(UTC),
            )
            for event in more:
                state = threads.evolve(state, event)
            new.extend(more)
        return thread_id, new

    async def line(self, raw: bytes, report: Report, number: int) -> None:
        try:
            parsed = _decoder.decode(raw)
        except msgspec.ValidationError as error:
            raise LineError(str(error)) from error
        except (msgspec.DecodeError, UnicodeDecodeError) as error:
            raise LineError(f"not JSON: {error}") from error
        key = "import:" + hashlib.sha256(msgspec.json.encode(parsed)).hexdigest()
        if await self.store.find_idempotent(key) is not None:
            report.skipped += 1
            return
        try:
            thread_id, new = await self._decide(parsed)
            await self._ensure_forum(parsed.forum, parsed.posts[0].created_at.astimezone(UTC))
        except DomainError as error:
            raise LineError(error.detail) from error
        idempotency = IdempotentResult(key=key, fingerprint=key,
                                       response=b'{"thread_id":%d}' % thread_id, position=0)
        try:
            await self.store.append(thread_stream(thread_id), 0, new, idempotency=idempotency,
                                    metadata=Metadata(correlation_id=f"import-line-{number}"))
        except DuplicateRequestError:
            report.skipped += 1
            return
        report.imported += 1
        report.posts += len(parsed.posts)

    async def lines(self, lines: Iterable[bytes]) -> Report:
        report = Report()
        for number, raw in enumerate(lines, start=1):
            if not raw.strip():
                continue
            try:
                await self.line(raw, report, number)
            except LineError as error:
                report.errors.append((number, str(error)))
        return report


def read_lines(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        yield from handle


async def run(settings: Settings, path: Path) -> int:
    pool = await create_pool(settings.database_url, min_size=1, max_size=4)
    try:
        report = await Importer(PostgresEventStore(pool)).lines(read_lines(path))
    finally:
        await pool.close()
    for number, message in report.errors:
        sys.stderr.write(f"{path}:{number}: {message}\n")
    sys.stdout.write(
        f"imported {report.imported} threads ({report.posts} posts); "
        f"{report.skipped} already imported; {len(report.errors)} malformed lines\n"
    )
    return 1 if report.errors else 0
