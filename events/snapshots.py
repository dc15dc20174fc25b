"""Snapshots of streams' folded state: bytes a writer made, kept by stream with the stream
version they reflect (migration 0011). The log knows nothing of what is inside; the write
side encodes and decodes them (service/domain/snapshot.py) and says which shape it reads
(``fold_version``): a row of another shape is not returned.

A snapshot is a cache of the log, never a fact: losing every row costs only longer loads.
An erasure (events/erasure.py) deletes the rows of every stream it rewrote, in its
transaction, holding ``snapshots`` locked against saves meanwhile. A save therefore
refuses to store a state older than a ``stream_redacted`` event of its stream: a writer
that folded the stream before the erasure and saves after it would bring the erased name
back.
"""

from __future__ import annotations

from typing import Protocol

import asyncpg
import msgspec

from events.errors import StoreUnavailableError
from events.postgres import UNREACHABLE


class Snapshot(msgspec.Struct, frozen=True):
    version: int
    data: bytes


class SnapshotStore(Protocol):
    async def load(self, stream_id: str, fold_version: int) -> Snapshot | None:
        """The stream's snapshot, if there is one of this ``fold_version``."""
        ...

    async def save(self, stream_id: str, version: int, fold_version: int, data: bytes
                   ) -> bool:
        """Keep ``data`` as the state at ``version`` unless a newer snapshot of the same
        ``fold_version`` is kept, or an erasure rewrote the stream after ``version``.
        True if it was kept."""
        ...


class NoSnapshots:
    """No snapshot is ever kept: every load folds the stream from its start."""

    async def load(self, stream_id: str, fold_version: int) -> Snapshot | None:
        return None

    async def save(self, stream_id: str, version: int, fold_version: int, data: bytes
                   ) -> bool:
        return False


class InMemorySnapshotStore:
    """For unit tests. Knows no log, hence no erasure."""

    def __init__(self) -> None:
        self.rows: dict[str, tuple[int, int, bytes]] = {}

    async def load(self, stream_id: str, fold_version: int) -> Snapshot | None:
        row = self.rows.get(stream_id)
        return Snapshot(row[0], row[2]) if row and row[1] == fold_version else None

    async def save(self, stream_id: str, version: int, fold_version: int, data: bytes
                   ) -> bool:
        row = self.rows.get(stream_id)
        if row and row[1] == fold_version and row[0] >= version:
            return False
        self.rows[stream_id] = (version, fold_version, data)
        return True


_LOAD = "SELECT version, data FROM snapshots WHERE stream_id = $1 AND fold_version = $2"
# The erasure's lock on `snapshots` makes this statement wait until the erasure has ended;
# its snapshot of the database is taken after the lock is granted (as an append's is,
# events/postgres.py), so it then sees the erasure's stream_redacted event.
_SAVE = """
INSERT INTO snapshots (stream_id, version, fold_version, data)
SELECT $1, $2, $3, $4
WHERE NOT EXISTS (SELECT 1 FROM events WHERE stream_id = $1 AND version > $2
                  AND type = 'stream_redacted')
ON CONFLICT (stream_id) DO UPDATE
    SET version = excluded.version, fold_version = excluded.fold_version,
        data = excluded.data, taken_at = now()
    WHERE snapshots.version < excluded.version
       OR snapshots.fold_version <> excluded.fold_version
RETURNING 1
"""


class PostgresSnapshotStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def load(self, stream_id: str, fold_version: int) -> Snapshot | None:
        if "\x00" in stream_id:
            return None
        try:
            row = await self._pool.fetchrow(_LOAD, stream_id, fold_version)
        except UNREACHABLE as error:
            raise StoreUnavailableError(str(error)) from error
        return None if row is None else Snapshot(int(row[0]), bytes(row[1]))

    async def save(self, stream_id: str, version: int, fold_version: int, data: bytes
                   ) -> bool:
        try:
            return await self._pool.fetchval(_SAVE, stream_id, version, fold_version,
                                             data) is not None
        except UNREACHABLE as error:
            raise StoreUnavailableError(str(error)) from error
