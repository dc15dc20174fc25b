"""Versioned schema migrations: ``events/migrations/NNNN_name.sql``, applied in order, once.

Safe to run twice and from several processes at once: an advisory lock serialises runners
and ``schema_migrations`` records what is done. The database named in the URL is created
when it does not exist. Afterwards the log's offset is raised if the log was moved here
from a cluster further on (events/offset.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from importlib import resources
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from events.offset import raise_offset

_LOCK_KEY = 0x666F72756D  # "forum"


def migrations() -> list[tuple[int, str, str]]:
    """(version, name, sql) of every migration shipped with the package, in order."""
    found = []
    for entry in resources.files("events.migrations").iterdir():
        match = re.fullmatch(r"(\d{4})_(\w+)\.sql", entry.name)
        if match:
            found.append((int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    return sorted(found)


async def create_database_if_missing(url: str) -> bool:
    """Create the database the URL names; True if it had to be created."""
    parts = urlsplit(url)
    name = parts.path.lstrip("/") or "postgres"
    try:
        conn = await asyncpg.connect(url)
    except asyncpg.InvalidCatalogNameError:
        pass
    else:
        await conn.close()
        return False
    admin = await asyncpg.connect(urlunsplit(parts._replace(path="/postgres")))
    try:
        await admin.execute(f'CREATE DATABASE "{name.replace(chr(34), "")}"')
    except asyncpg.DuplicateDatabaseError:
        return False
    finally:
        await admin.close()
    return True


@dataclass
class Migrated:
    applied: list[int] = field(default_factory=list)  # the versions applied now
    offset_raised_to: int | None = None  # the log came from another cluster (offset.py)


def latest_version() -> int:
    return max(version for version, _, _ in migrations())


async def migrate(url: str, *, up_to: int | None = None) -> Migrated:
    """Apply what is pending (up to version ``up_to``, when given). With every migration
    applied, the log's offset is raised if it must be."""
    await create_database_if_missing(url)
    conn = await asyncpg.connect(url)
    done_now = Migrated()
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version integer PRIMARY KEY, name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
        for version, name, sql in migrations():
            if version in done or (up_to is not None and version > up_to):
                continue
            async with conn.transaction():
                await conn.execute(sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", version, name
                )
            done_now.applied.append(version)
        if up_to is None:
            done_now.offset_raised_to = await raise_offset(conn)
    finally:
        try:
            await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)
        finally:
            await conn.close()
    return done_now
