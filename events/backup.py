"""``forum backup`` and ``forum restore``: a consistent copy of what the board cannot rebuild.

What is copied: the tables in ``TABLES`` and every sequence (of schema ``public``), read in
one REPEATABLE READ READ ONLY transaction, so the copy is one moment of the database even
while the board runs. Redis is not copied, nor the search model (schema ``search`` and
``search_models``): every read model is rebuilt from the log.

The file (events/backup_file.py) is gzip'd frames behind a manifest: the schema version,
each table's columns and row count, the sequences. Rows stream from COPY to the file and
back: memory does not grow with the log.

A restore loads into an empty database on any cluster: the schema is migrated up to the
backup's version, the rows are copied in one transaction (a damaged file leaves nothing
half-loaded), the sequences are set, and then the later migrations run and the log's
offset is raised (events/offset.py), so the log reads in full and new events follow it.
"""

from __future__ import annotations

import gzip
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import msgspec

from events.backup_file import (
    FORMAT,
    BackupError,
    Manifest,
    Progress,
    Reader,
    SequenceInfo,
    TableInfo,
    Writer,
    read_manifest,
)
from events.errors import StoreUnavailableError
from events.migrate import Migrated, create_database_if_missing, latest_version, migrate

# Every table of the schema (events/migrations/), in the order a restore loads them
# (a table before any that refers to it). A migration that adds a table adds it here or to
# SKIPPED: tests/integration/test_portable_log.py fails until it does.
TABLES: tuple[str, ...] = (
    "schema_migrations",  # the schema's version: a restore migrates up to it first
    "events",             # the log
    "log_offset",         # raised again after a restore (events/offset.py)
    "idempotency",        # a replayed write must still get its first answer
    "service_keys",       # signing keys: members' tokens and guests' tokens stay valid
    "credentials",        # password hashes (not in the log)
    "sessions",           # members stay signed in
    "member_names",       # names' confusable forms, as claimed
    "guest_names",        # which guest identity holds which guest name, until when
    "bans",               # address bans (operational, but an operator's decision)
)
# Tables a backup leaves out on purpose, and why.
SKIPPED: dict[str, str] = {
    # Threads' folded state (events/snapshots.py): rebuilt from the log by the next load.
    "snapshots": "a cache of the log: each stream's next load folds it and writes it again",
    "search_models": "the search model's state; it and its tables (schema search) are "
                     "rebuilt from the log, as the read models in Redis are",
}

# Rows the migrations write themselves (a migrated, never used database holds them): a
# restore replaces them with the backup's.
_WRITTEN_BY_MIGRATIONS = frozenset({"schema_migrations", "service_keys", "log_offset"})

__all__ = ["SKIPPED", "TABLES", "BackupError", "Manifest", "Restored", "backup", "restore",
           "tables"]


@dataclass(frozen=True)
class Restored:
    manifest: Manifest
    migrated: Migrated  # the later migrations, and the offset raised


# -- backup -----------------------------------------------------------------------------

async def backup(url: str, path: Path, on_rows: Progress = lambda done, total: None
                 ) -> Manifest:
    """Write the database at ``url`` to ``path`` (replaced only once the copy is whole)."""
    conn = await _connect(url)
    partial = path.with_name(path.name + ".partial")
    try:
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            manifest = await _manifest(conn)
            try:
                with open(partial, "wb") as file:  # noqa: ASYNC230 (an operator's command)
                    with gzip.GzipFile(fileobj=file, mode="wb", compresslevel=6) as raw:
                        await _write(conn, manifest, Writer(raw, on_rows, manifest.rows))
                    file.flush()
                    os.fsync(file.fileno())
                os.replace(partial, path)
            except OSError as error:
                if isinstance(error, ConnectionError):  # PostgreSQL's, not the file's
                    raise
                raise BackupError(f"cannot write {path}: {error.strerror or error}") from error
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    finally:
        await conn.close()
    return manifest


async def _write(conn: asyncpg.Connection, manifest: Manifest, out: Writer) -> None:
    out.frame(b"M", msgspec.json.encode(manifest))
    for table in manifest.tables:
        out.frame(b"T", table.name.encode())
        status = await conn.copy_from_table(table.name, columns=table.columns,
                                            output=out.rows, format="text")
        out.end_rows()
        copied = _copied(status)
        if copied != table.rows:  # cannot happen in one snapshot
            raise BackupError(f"{table.name}: counted {table.rows} rows but copied {copied}")
        out.frame(b"E", str(copied).encode())
    out.frame(b"Z", b"")


async def _manifest(conn: asyncpg.Connection) -> Manifest:
    present = await _tables(conn)
    if "schema_migrations" not in present:
        raise BackupError("the database holds no forum schema: nothing to back up "
                          "(is FORUM_DATABASE_URL right?)")
    version = int(await conn.fetchval("SELECT coalesce(max(version), 0) FROM schema_migrations"))
    if version > latest_version():
        raise BackupError(f"the database's schema is at version {version}, newer than this "
                          f"forum's ({latest_version()}): back it up with the newer forum")
    tables = []
    for name in TABLES:
        if name in present:
            rows = int(await conn.fetchval(f"SELECT count(*) FROM {_ident(name)}"))
            tables.append(TableInfo(name, await _columns(conn, name), rows))
    # Read after the snapshot is taken (above): a sequence is not transactional, and its
    # value now is at least any id that the rows copied can hold.
    sequences = []
    for name in await _sequences(conn):
        row = await conn.fetchrow(f"SELECT last_value, is_called FROM {_ident(name)}")
        sequences.append(SequenceInfo(name, int(row[0]), bool(row[1])))
    return Manifest(format=FORMAT, schema_version=version, created_at=datetime.now(UTC),
                    server_version=str(await conn.fetchval("SHOW server_version")),
                    tables=tables, sequences=sequences)


# -- restore ----------------------------------------------------------------------------

async def restore(url: str, path: Path, on_rows: Progress = lambda done, total: None
                  ) -> Restored:
    """Load the backup at ``path`` into the (empty or missing) database at ``url``."""
    manifest = read_manifest(path)
    if unknown := [t.name for t in manifest.tables if t.name not in TABLES]:
        raise BackupError(f"{path} holds tables this forum does not know "
                          f"({', '.join(unknown)})")
    if manifest.schema_version > latest_version():
        raise BackupError(f"{path} was made at schema version {manifest.schema_version}, "
                          f"newer than this forum's ({latest_version()}): restore it with "
                          "the newer forum")
    try:
        await create_database_if_missing(url)
    except (OSError, asyncpg.CannotConnectNowError, TimeoutError) as error:
        raise StoreUnavailableError(str(error)) from error
    conn = await _connect(url)
    try:
        await _refuse_unless_empty(conn, _database(url), manifest.schema_version)
        await migrate(url, up_to=manifest.schema_version)
        await _check_schema(conn, manifest)
        with Reader(path) as reader:
            async with conn.transaction():
                await _load(conn, reader, manifest, on_rows)
    finally:
        await conn.close()
    return Restored(manifest, await migrate(url))


async def _load(conn: asyncpg.Connection, reader: Reader, manifest: Manifest,
                on_rows: Progress) -> None:
    names = ", ".join(_ident(t.name) for t in manifest.tables)
    await conn.execute(f"TRUNCATE {names}")
    done = 0
    for table in manifest.tables:
        kind, payload = reader.frame()
        if kind != b"T" or payload != table.name.encode():
            raise BackupError(f"{reader.path} is corrupt: expected the rows of {table.name}")

        async def rows() -> AsyncIterator[bytes]:
            nonlocal done
            while True:
                kind, payload = reader.frame()
                if kind == b"E":
                    reader.ended = payload
                    return
                if kind != b"D":
                    raise BackupError(f"{reader.path} is corrupt: a frame out of place")
                done += payload.count(b"\n")
                on_rows(done, manifest.rows)
                yield payload

        try:
            status = await conn.copy_to_table(table.name, source=rows(),
                                              columns=table.columns, format="text")
        except asyncpg.PostgresError as error:
            raise BackupError(f"{reader.path} is corrupt: {table.name}: {error}") from error
        copied = _copied(status)
        if reader.ended != str(table.rows).encode() or copied != table.rows:
            raise BackupError(f"{reader.path} is corrupt: {table.name} should hold "
                              f"{table.rows} rows, {copied} were read")
    kind, _ = reader.frame()
    if kind != b"Z":
        raise BackupError(f"{reader.path} is corrupt: it goes on after the last table")
    reader.expect_end()
    present = set(await _sequences(conn))
    for sequence in manifest.sequences:
        if sequence.name not in present:
            raise BackupError(f"the backup's sequence {sequence.name} is not in the schema "
                              f"at version {manifest.schema_version}")
        await conn.execute("SELECT setval(quote_ident($1)::regclass, $2, $3)",
                           sequence.name, sequence.last_value, sequence.is_called)


async def _refuse_unless_empty(conn: asyncpg.Connection, database: str, version: int) -> None:
    """A database with no tables, or one only migrated (by a service started too early,
    say) and never written to: anything else might be a board, and is not overwritten."""
    present = await _tables(conn)
    if not present:
        return
    known = set(TABLES) | set(SKIPPED)
    if unknown := sorted(present - known):
        raise BackupError(f"database {database} is not empty (it holds tables "
                          f"{', '.join(unknown)}): restore into an empty database")
    # Rows of what is rebuilt from the log (a worker started early) are no board: a restore
    # rebuilds them from the restored log anyway.
    holding = [name for name in sorted(present - _WRITTEN_BY_MIGRATIONS - set(SKIPPED))
               if await conn.fetchval(f"SELECT EXISTS (SELECT 1 FROM {_ident(name)})")]
    if holding:
        raise BackupError(f"database {database} is not empty (it has rows in "
                          f"{', '.join(holding)}): restore into an empty database, a new one "
                          "or this one dropped and created again")
    if "schema_migrations" in present:
        at = int(await conn.fetchval("SELECT coalesce(max(version), 0) FROM schema_migrations"))
        if at > version:
            raise BackupError(f"database {database} is migrated to version {at}, past the "
                              f"backup's {version}: restore into a new, empty database")


async def _check_schema(conn: asyncpg.Connection, manifest: Manifest) -> None:
    present = await _tables(conn)
    for table in manifest.tables:
        if table.name not in present:
            raise BackupError(f"the backup holds a table this forum does not know "
                              f"({table.name}) at schema version {manifest.schema_version}")
        if missing := set(table.columns) - set(await _columns(conn, table.name)):
            raise BackupError(f"the backup's {table.name} has columns the schema at version "
                              f"{manifest.schema_version} does not ({', '.join(missing)})")


# -- the catalog ------------------------------------------------------------------------

async def _connect(url: str) -> asyncpg.Connection:
    try:
        return await asyncpg.connect(url, timeout=5)
    except asyncpg.InvalidCatalogNameError as error:
        raise BackupError(f"there is no database {_database(url)}") from error
    except (OSError, asyncpg.CannotConnectNowError, TimeoutError) as error:
        raise StoreUnavailableError(str(error)) from error


async def _tables(conn: asyncpg.Connection) -> set[str]:
    rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    return {r[0] for r in rows}


async def tables(url: str) -> set[str]:
    """The tables of the database at ``url`` (for the test that keeps TABLES whole)."""
    conn = await _connect(url)
    try:
        return await _tables(conn)
    finally:
        await conn.close()


async def _columns(conn: asyncpg.Connection, table: str) -> list[str]:
    rows = await conn.fetch(
        "SELECT attname FROM pg_attribute WHERE attrelid = ('public.' || quote_ident($1))"
        "::regclass AND attnum > 0 AND NOT attisdropped AND attgenerated = ''"
        " ORDER BY attnum", table)
    return [r[0] for r in rows]


async def _sequences(conn: asyncpg.Connection) -> list[str]:
    rows = await conn.fetch(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE c.relkind = 'S' AND n.nspname = 'public' ORDER BY c.relname")
    return [r[0] for r in rows]


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _copied(status: Any) -> int:
    """``COPY 123`` -> 123."""
    return int(str(status).rsplit(" ", 1)[-1])


def _database(url: str) -> str:
    return urlsplit(url).path.lstrip("/") or "postgres"
