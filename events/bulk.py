"""Appending many new streams in one statement, each under its own idempotency key, and the
look-ups that prepare it: what ``forum import`` needs to write at the speed of the
database rather than at one thread per round trip (service/importer.py).

``append_new_streams`` is one statement, so one transaction, and it takes its positions
as every append does (events/postgres.py): ``((transaction id + offset) << 20) | index``,
the index running over the whole statement. A stream's events are written only if its
key could be inserted into ``idempotency`` by the same statement (``ON CONFLICT DO
NOTHING``): a key already there, or inserted meanwhile by a concurrent transaction (the
insert waits for it to end), appends nothing of that stream and is answered as skipped.
So a stream is written whole or not at all, exactly once per key, whether the key was seen
by an earlier check, is in flight in another batch, or belongs to a batch that failed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import asyncpg
import msgspec

from events.catalog import ForumEvent
from events.codec import decode_many
from events.errors import StoreUnavailableError
from events.offset import APPEND_BASE
from events.postgres import UNREACHABLE
from events.store import MAX_EVENTS_PER_APPEND

# The events travel as one JSON array (one encode on the client, one parse here) beside
# two int arrays that say, for each, which stream of the batch it belongs to and its
# version there. A stream's idempotency row points at its last event, like an append's.
_APPEND_NEW_STREAMS = f"""
WITH stream AS (
    SELECT * FROM unnest($1::text[], $2::text[], $3::bytea[], $4::text[], $5::int[])
        WITH ORDINALITY AS s(key, stream_id, response, metadata, last, n)
), fresh AS (
    INSERT INTO idempotency (key, fingerprint, response, position)
    SELECT key, key, response, {APPEND_BASE} | last FROM stream
    ON CONFLICT (key) DO NOTHING
    RETURNING key
), kept AS (
    SELECT s.n, s.stream_id, s.metadata::jsonb AS metadata
    FROM stream s JOIN fresh f ON f.key = s.key
), ins AS (
    INSERT INTO events (position, stream_id, version, type, data, metadata)
    SELECT {APPEND_BASE} | e.i, k.stream_id, e.version, e.data->>'type', e.data, k.metadata
    FROM ROWS FROM (jsonb_array_elements($6::jsonb), unnest($7::int[]), unnest($8::int[]))
        WITH ORDINALITY AS e(data, n, version, i)
    JOIN kept k ON k.n = e.n
    RETURNING 1
)
SELECT array(SELECT key FROM fresh), (SELECT count(*) FROM ins)
"""

_encoder = msgspec.json.Encoder()


@dataclass
class NewStreams:
    """New streams to append in one statement, each with its idempotency key, the answer
    stored under it and the metadata of its events."""

    keys: list[str] = field(default_factory=list)
    stream_ids: list[str] = field(default_factory=list)
    responses: list[bytes] = field(default_factory=list)
    metadata: list[str] = field(default_factory=list)
    lasts: list[int] = field(default_factory=list)
    events: list[ForumEvent] = field(default_factory=list)
    of_stream: list[int] = field(default_factory=list)
    versions: list[int] = field(default_factory=list)

    def add(self, key: str, stream_id: str, events: Sequence[ForumEvent], *,
            response: bytes, metadata: bytes = b"{}") -> None:
        if len(self.events) + len(events) > MAX_EVENTS_PER_APPEND:
            raise ValueError(f"at most {MAX_EVENTS_PER_APPEND} events in one append")
        self.keys.append(key)
        self.stream_ids.append(stream_id)
        self.responses.append(response)
        self.metadata.append(metadata.decode())
        self.events.extend(events)
        self.of_stream.extend([len(self.keys)] * len(events))
        self.versions.extend(range(1, len(events) + 1))
        self.lasts.append(len(self.events))

    def __len__(self) -> int:
        return len(self.keys)


async def append_new_streams(connection: asyncpg.Connection, batch: NewStreams) -> set[str]:
    """Append each stream of ``batch`` from version 1, in one statement; the keys of those
    appended (the others' keys were in ``idempotency`` already: nothing of them is
    written). The streams must be new: a stream that exists fails the whole statement."""
    if not batch:
        return set()
    events = _encoder.encode(batch.events).decode()
    try:
        row = await connection.fetchrow(
            _APPEND_NEW_STREAMS, batch.keys, batch.stream_ids, batch.responses,
            batch.metadata, batch.lasts, events, batch.of_stream, batch.versions)
    except UNREACHABLE as error:
        raise StoreUnavailableError(str(error)) from error
    assert row is not None
    return set(row[0])


async def known_keys(connection: asyncpg.Pool | asyncpg.Connection, keys: Sequence[str]
                     ) -> set[str]:
    """Those of ``keys`` already in ``idempotency`` (committed)."""
    rows = await _fetch(connection, "SELECT key FROM idempotency WHERE key = ANY($1::text[])",
                        list(keys))
    return {r[0] for r in rows}


async def read_streams(connection: asyncpg.Pool | asyncpg.Connection,
                       stream_ids: Sequence[str]
                       ) -> dict[str, list[ForumEvent]]:
    """The events of each of ``stream_ids`` in version order (none: an empty list)."""
    found: dict[str, list[ForumEvent]] = {s: [] for s in stream_ids}
    rows = await _fetch(
        connection,
        "SELECT stream_id, '[' || string_agg(data::text, ',' ORDER BY version) || ']'"
        " FROM events WHERE stream_id = ANY($1::text[]) GROUP BY stream_id",
        list(stream_ids))
    for stream_id, events in rows:
        found[stream_id] = decode_many(events)
    return found


async def _fetch(connection: asyncpg.Pool | asyncpg.Connection, query: str, *args: object
                 ) -> list[asyncpg.Record]:
    try:
        return await connection.fetch(query, *args)  # type: ignore[no-any-return]
    except UNREACHABLE as error:
        raise StoreUnavailableError(str(error)) from error
