"""The event store on PostgreSQL (asyncpg).

Gap safety (ARCHITECTURE invariant 2). A position taken from a sequence at INSERT becomes
visible only at COMMIT, so transactions commit out of position order and a reader that
trusts "highest position seen" silently skips the late one. Here a position is the
writer's transaction id plus the log's offset, shifted left by 20 bits, plus the event's
index in its append. Transaction ids are handed out in order and every id below the oldest
running transaction's (``pg_snapshot_xmin``) belongs to a transaction that has finished. A
reader reads only below that horizon (plus the same offset, shifted alike), within one
statement so horizon, offset and rows share a snapshot: nothing can ever appear behind
what it has read, rolled-back appends leave holes that need no waiting, and appends never
wait on each other (unlike a table lock), so commits share WAL flushes. The price: one
long-running transaction anywhere in the cluster holds readers back until it ends;
``forum status`` shows that as lag.

The offset (events/offset.py, migration 0008) is 0 on the cluster a log was written on; it
is raised by ``forum migrate`` when the log has moved to a cluster whose transaction
counter is lower (invariant 8), so that the log stays readable and new events follow it.
Appends must run at READ COMMITTED (the default): the raise relies on an append's statement
taking its snapshot, hence the offset it reads, after its lock on the table is granted.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg
import msgspec

from events.catalog import ForumEvent, type_name
from events.codec import decode, decode_many, encode
from events.errors import ConcurrencyError, DuplicateRequestError, StoreUnavailableError
from events.offset import APPEND_BASE, OFFSET, log_ahead
from events.records import IdempotentResult, Metadata, PostLocation, RecordedEvent
from events.store import MAX_EVENTS_PER_APPEND

_APPEND_WRITES = f"""
WITH cur AS (
    SELECT coalesce(max(version), 0) AS v FROM events WHERE stream_id = $1
), ins AS (
    INSERT INTO events (position, stream_id, version, type, data, metadata)
    SELECT {APPEND_BASE} | e.i, $1, $2 + e.i, e.type, e.data::jsonb, $5::jsonb
    FROM unnest($3::text[], $4::text[]) WITH ORDINALITY AS e(type, data, i)
    WHERE (SELECT v FROM cur) = $2
    RETURNING position
), idem AS (
    INSERT INTO idempotency (key, fingerprint, response, position)
    SELECT $6, $7, $8, (SELECT max(position) FROM ins)
    WHERE $6::text IS NOT NULL AND EXISTS (SELECT 1 FROM ins)
)"""
_APPEND_ANSWER = """
SELECT (SELECT max(position) FROM ins) AS position, (SELECT v FROM cur) AS current
"""
_APPEND = _APPEND_WRITES + _APPEND_ANSWER

# A registration: the member's credential is written by the statement that appends the
# member_registered event, and only if the events were (the guard of the idempotency
# record). One statement is one transaction, so a crash leaves both or neither: no member
# who can never sign in, no credential of a member who does not exist. Writing the row
# before the append would be worse still: of two registrations of one name racing each
# other, the loser could overwrite the winner's password. A row already there belongs to
# no event of this (new) stream, so the registration's hash replaces it.
_APPEND_WITH_CREDENTIAL = _APPEND_WRITES + """, cred AS (
    INSERT INTO credentials (member, password_hash)
    SELECT $1, $9 WHERE EXISTS (SELECT 1 FROM ins)
    ON CONFLICT (member) DO UPDATE
        SET password_hash = excluded.password_hash, updated_at = now()
)""" + _APPEND_ANSWER

_APPEND_WITHIN = f"""
WITH ins AS (
    INSERT INTO events (position, stream_id, version, type, data)
    SELECT {APPEND_BASE} | e.i, e.stream, e.version, e.type, e.data::jsonb
    FROM unnest($1::text[], $2::int[], $3::text[], $4::text[])
        WITH ORDINALITY AS e(stream, version, type, data, i)
    RETURNING position
)
SELECT max(position) FROM ins
"""

# What asyncpg raises when PostgreSQL is away: every store maps these to
# StoreUnavailableError (503 with Retry-After, a one-line CLI error).
UNREACHABLE = (OSError, asyncpg.CannotConnectNowError, asyncpg.ConnectionDoesNotExistError,
               asyncpg.InterfaceError, TimeoutError)

_HORIZON = f"(((pg_snapshot_xmin(pg_current_snapshot())::text)::bigint + {OFFSET}) << 20)"

_READ_ALL = f"""
SELECT position, stream_id, version, data, metadata, recorded_at
FROM events
WHERE position > $1 AND position < (SELECT {_HORIZON})
ORDER BY position
LIMIT $2
"""

# A page of the log for projections as ONE row: the positions, and the events as one JSON
# array decoded in one call. Per-row decoding on the client (a Record, a str, a datetime
# and the metadata for each event) cost more than everything PostgreSQL does here. Both
# aggregates read the page's rows in the same order, whatever it is; read_feed sorts in
# the rare case it is not the position order (no sort in SQL, which costs every page).
_READ_FEED = f"""
SELECT array_agg(position), '[' || string_agg(data::text, ',') || ']'
FROM (SELECT position, data FROM events
      WHERE position > $1 AND position < (SELECT {_HORIZON})
      ORDER BY position LIMIT $2) page
"""

_HEAD = f"""
SELECT coalesce(max(position), 0) FROM events WHERE position < (SELECT {_HORIZON})
"""

# How far behind readers of the log are, in seconds, from one snapshot (one statement,
# so the horizon, the head and the ages agree). An event at or above the horizon is
# committed (this snapshot sees it) but not readable: a transaction older than it is still
# running somewhere on the cluster. Its recorded_at is now() at its own transaction's
# start, so its age is how long readers have been held back from it; the lowest such
# position is the oldest, near enough (an append is one statement: its transaction id is
# taken as it starts). Then, for each checkpoint asked, the age of the oldest readable
# event after it. Ages are PostgreSQL's clock against PostgreSQL's clock.
_LAG = f"""
WITH h AS MATERIALIZED (SELECT {_HORIZON} AS horizon)
SELECT
    (SELECT coalesce(max(position), 0) FROM events
     WHERE position < (SELECT horizon FROM h)),
    (SELECT greatest(0, extract(epoch FROM now() - recorded_at))::float8 FROM events
     WHERE position >= (SELECT horizon FROM h) ORDER BY position LIMIT 1),
    ARRAY(SELECT coalesce((SELECT greatest(0, extract(epoch FROM now() - e.recorded_at))::float8
                           FROM events e
                           WHERE e.position > a.after AND e.position < (SELECT horizon FROM h)
                           ORDER BY e.position LIMIT 1), 0)
          FROM unnest($1::bigint[]) WITH ORDINALITY AS a(after, i) ORDER BY a.i)
"""

_UNREADABLE = f"""
SELECT count(*) FROM events WHERE position >= (SELECT {_HORIZON})
"""

# Who holds the horizon: the oldest transaction with an id, a session's or a prepared
# one's (a prepared transaction has no session, and holds the horizon until it is
# committed or rolled back). A role without pg_read_all_stats sees other roles' sessions
# with their transaction ids but without state or start time (NULL here).
_HOLDER = """
SELECT kind, pid, datname, usename, application_name, state, seconds FROM (
    SELECT 'session' AS kind, pid, datname, usename::text, application_name, state,
           extract(epoch FROM now() - xact_start)::float8 AS seconds,
           age(backend_xid) AS age
    FROM pg_stat_activity WHERE backend_xid IS NOT NULL
    UNION ALL
    SELECT 'prepared transaction', NULL, database, owner::text, gid, 'prepared',
           extract(epoch FROM now() - prepared)::float8, age(transaction)
    FROM pg_prepared_xacts
) holders ORDER BY age DESC LIMIT 1
"""


class LogLag(msgspec.Struct, frozen=True, kw_only=True):
    """How far behind readers of the log are, from one snapshot."""

    head: int
    """The newest readable position."""
    held_seconds: float
    """Age of the oldest committed event not readable yet (a transaction somewhere on the
    cluster holds the read horizon); 0: none waits."""
    behind_seconds: list[float]
    """For each position asked: age of the oldest readable event after it; 0: none."""


_READ_STREAM = """
SELECT position, stream_id, version, data, metadata, recorded_at
FROM events WHERE stream_id = $1 AND version > $2 ORDER BY version
"""

# A page of one stream as ONE row, as _READ_FEED reads the log: a cold load of a long
# thread reads its tail page by page (service/thread_loading.py), each page decoded in
# one call.
_READ_STREAM_PAGE = """
SELECT array_agg(version), '[' || string_agg(data::text, ',') || ']'
FROM (SELECT version, data FROM events WHERE stream_id = $1 AND version > $2
      ORDER BY version LIMIT $3) page
"""

_metadata_decoder = msgspec.json.Decoder(Metadata)
_SEQUENCES = {"thread": "thread_ids", "post": "post_ids"}


def _record(row: asyncpg.Record) -> RecordedEvent:
    return RecordedEvent(
        position=row[0],
        stream_id=row[1],
        version=row[2],
        event=decode(row[3]),
        metadata=_metadata_decoder.decode(row[4]),
        recorded_at=row[5],
    )


class PostgresEventStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        # The highest position this process has seen committed (its own appends, or the
        # last look at the table): a position at or below it needs no query to be known.
        self._highest = 0

    @property
    def pool(self) -> asyncpg.Pool:
        """For writers that need a connection of their own (events/bulk.py)."""
        return self._pool

    async def append(
        self,
        stream_id: str,
        expected_version: int,
        events: Sequence[ForumEvent],
        *,
        metadata: Metadata | None = None,
        idempotency: IdempotentResult | None = None,
        password_hash: str | None = None,
    ) -> int:
        if not events:
            raise ValueError("nothing to append")
        if len(events) > MAX_EVENTS_PER_APPEND:
            raise ValueError(f"at most {MAX_EVENTS_PER_APPEND} events in one append")
        args: list[Any] = [
            stream_id,
            expected_version,
            [type_name(e) for e in events],
            [encode(e).decode() for e in events],
            msgspec.json.encode(metadata or Metadata()).decode(),
            idempotency.key if idempotency else None,
            idempotency.fingerprint if idempotency else None,
            idempotency.response if idempotency else None,
        ]
        if password_hash is not None:
            args.append(password_hash)
        try:
            row = await self._fetchrow(
                _APPEND if password_hash is None else _APPEND_WITH_CREDENTIAL, *args)
        except asyncpg.UniqueViolationError as error:
            if error.constraint_name == "idempotency_pkey" and idempotency is not None:
                first = await self.find_idempotent(idempotency.key)
                if first is not None:
                    raise DuplicateRequestError(
                        first.key, first.fingerprint, first.response, first.position
                    ) from error
            raise ConcurrencyError(stream_id, expected_version) from error
        assert row is not None
        if row["position"] is None:
            raise ConcurrencyError(stream_id, expected_version, row["current"])
        position = int(row["position"])
        self._highest = max(self._highest, position)
        return position

    async def read_stream(self, stream_id: str, after_version: int = 0
                          ) -> list[RecordedEvent]:
        if "\x00" in stream_id:  # text cannot hold NUL: no such stream (not a 503)
            return []
        rows = await self._fetch(_READ_STREAM, stream_id, after_version)
        return [_record(r) for r in rows]

    async def read_stream_page(self, stream_id: str, after_version: int, limit: int
                               ) -> list[tuple[int, ForumEvent]]:
        if "\x00" in stream_id:
            return []
        row = await self._fetchrow(_READ_STREAM_PAGE, stream_id, after_version, limit)
        if row is None or row[0] is None:
            return []
        page = list(zip(row[0], decode_many(row[1]), strict=True))
        if row[0] != sorted(row[0]):
            page.sort(key=lambda item: item[0])
        return page

    async def password_hash(self, stream_id: str) -> str | None:
        if "\x00" in stream_id:
            return None
        found = await self._fetchval(
            "SELECT password_hash FROM credentials WHERE member = $1", stream_id)
        return None if found is None else str(found)

    async def read_all(self, after: int, limit: int) -> list[RecordedEvent]:
        rows = await self._fetch(_READ_ALL, after, limit)
        return [_record(r) for r in rows]

    async def read_feed(self, after: int, limit: int) -> list[tuple[int, ForumEvent]]:
        row = await self._fetchrow(_READ_FEED, after, limit)
        if row is None or row[0] is None:
            return []
        feed = list(zip(row[0], decode_many(row[1]), strict=True))
        if row[0] != sorted(row[0]):
            feed.sort(key=lambda item: item[0])
        return feed

    async def head(self) -> int:
        return int(await self._fetchval(_HEAD))

    async def last_position(self) -> int:
        # Not the visible head: a long transaction elsewhere on the cluster holds that back,
        # and a position a write has just answered may lie beyond it for a while.
        return int(await self._fetchval("SELECT coalesce(max(position), 0) FROM events"))

    async def has_position(self, position: int) -> bool:
        if position > self._highest:
            self._highest = max(self._highest, await self.last_position())
        return position <= self._highest

    async def ahead_of_cluster(self) -> bool:
        """The log lies beyond this cluster's transaction counter: restored or replicated
        from another cluster, and ``forum migrate`` not run since. Readers see none of
        what lies beyond, and new events would be placed before it (events/offset.py)."""
        try:
            return await log_ahead(self._pool)
        except UNREACHABLE as error:
            raise StoreUnavailableError(str(error)) from error

    async def horizon_holder(self) -> dict[str, Any] | None:
        """The oldest transaction with an id anywhere on the cluster: readers of the log
        cannot see past it. None when there is none; ``seconds`` is how long it has run."""
        row = await self._fetchrow(
            "SELECT pid, datname, application_name, state,"
            " extract(epoch FROM now() - xact_start)::float8 AS seconds"
            " FROM pg_stat_activity WHERE backend_xid IS NOT NULL"
            " ORDER BY age(backend_xid) DESC LIMIT 1"
        )
        return None if row is None else dict(row)

    async def lag(self, after: Sequence[int]) -> LogLag:
        """How far behind readers are (``LogLag``), ``after``: checkpoints of readers."""
        row = await self._fetchrow(_LAG, list(after))
        assert row is not None
        return LogLag(head=int(row[0]), held_seconds=float(row[1] or 0.0),
                      behind_seconds=[float(s) for s in row[2]])

    async def unreadable(self) -> int:
        """How many committed events wait behind the read horizon."""
        return int(await self._fetchval(_UNREADABLE))

    async def horizon_held_by(self) -> dict[str, Any] | None:
        """The oldest transaction with an id on the cluster, a session's or a prepared
        one's: readers of the log cannot see past it. ``kind``, ``pid`` (None for a
        prepared transaction), ``datname``, ``usename``, ``application_name`` (a prepared
        transaction's gid), ``state``, ``seconds`` it has run (None when this role may
        not see it). None when there is none. Names other databases' sessions: for the
        operator (``forum status``), never for an unauthenticated route."""
        row = await self._fetchrow(_HOLDER)
        return None if row is None else dict(row)

    async def find_idempotent(self, key: str) -> IdempotentResult | None:
        row = await self._fetchrow(
            "SELECT key, fingerprint, response, position FROM idempotency WHERE key = $1", key
        )
        if row is None:
            return None
        return IdempotentResult(
            key=row[0], fingerprint=row[1], response=bytes(row[2]), position=row[3]
        )

    async def locate_post(self, post_id: int) -> PostLocation | None:
        row = await self._fetchrow(
            "SELECT (data->>'thread_id')::bigint, (data->>'number')::int FROM events"
            " WHERE type = 'post_added'"
            " AND (data->>'post_id')::bigint = $1 LIMIT 1",
            post_id,
        )
        return None if row is None else PostLocation(int(row[0]), int(row[1]))

    async def added_post(self, post_id: int) -> ForumEvent | None:
        data = await self._fetchval(
            "SELECT data::text FROM events WHERE type = 'post_added'"
            " AND (data->>'post_id')::bigint = $1 LIMIT 1",
            post_id,
        )
        return None if data is None else decode(data)

    async def locate_held(self, held_id: int) -> int | None:
        thread_id = await self._fetchval(
            "SELECT (data->>'thread_id')::bigint FROM events"
            " WHERE type IN ('post_held', 'thread_held')"
            " AND (data->>'held_id')::bigint = $1 LIMIT 1",
            held_id,
        )
        return None if thread_id is None else int(thread_id)

    async def secret(self, name: str) -> str:
        return str(await self._fetchval("SELECT secret FROM service_keys WHERE name = $1", name))

    async def next_ids(self, kind: str, count: int = 1) -> list[int]:
        sequence = _SEQUENCES[kind]
        rows = await self._fetch(
            f"SELECT nextval('{sequence}') FROM generate_series(1, $1)", count
        )
        return [int(r[0]) for r in rows]

    async def _fetch(self, query: str, *args: Any) -> list[asyncpg.Record]:
        try:
            return await self._pool.fetch(query, *args)  # type: ignore[no-any-return]
        except UNREACHABLE as error:
            raise StoreUnavailableError(str(error)) from error

    async def _fetchrow(self, query: str, *args: Any) -> asyncpg.Record | None:
        rows = await self._fetch(query, *args)
        return rows[0] if rows else None

    async def _fetchval(self, query: str, *args: Any) -> Any:
        row = await self._fetchrow(query, *args)
        return None if row is None else row[0]


async def append_within(connection: asyncpg.Connection,
                        appends: Sequence[tuple[str, int, ForumEvent]]) -> int:
    """Append ``(stream, version, event)``s, each at its stream's next version, inside the
    caller's transaction, which must keep other writers of those streams out
    (events/erasure.py locks the table). One statement: positions come from the
    transaction id like every append's, so one transaction may append only once."""
    row = await connection.fetchrow(
        _APPEND_WITHIN, [a[0] for a in appends], [a[1] for a in appends],
        [type_name(a[2]) for a in appends], [encode(a[2]).decode() for a in appends])
    assert row is not None and row[0] is not None
    return int(row[0])


async def _keep_session(connection: asyncpg.Connection) -> None:
    """Pool release without asyncpg's default reset query (``SELECT
    pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL``): that is one more round
    trip for every statement, and the store's statements leave no session state behind
    (single statements, no LISTEN, SET or advisory lock). An open transaction is still
    rolled back by the pool before this is called."""


async def create_pool(url: str, *, min_size: int = 2, max_size: int = 20,
                      server_settings: dict[str, str] | None = None) -> asyncpg.Pool:
    """A pool whose connections fail fast: a write must not hang when PostgreSQL is away."""
    try:
        pool = await asyncpg.create_pool(
            url, min_size=min_size, max_size=max_size, timeout=5, command_timeout=30,
            reset=_keep_session, server_settings=server_settings,
        )
    except (OSError, asyncpg.CannotConnectNowError, TimeoutError) as error:
        raise StoreUnavailableError(str(error)) from error
    assert pool is not None
    return pool
