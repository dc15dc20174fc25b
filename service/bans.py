"""Address bans: a PostgreSQL table outside the log (migration 0005), read on every write.

The edge (service/edge.py, around every route) refuses every unsafe request from a banned
address, with the reason and the end (``refusal``), before its handler runs: writes,
sign-in and registration alike. Routes marked ``opt={"ban_exempt": True}`` (lifting bans,
signing out) stay open.

The edge checks a snapshot of the bans in force (``Banned``), reloaded at most every
``SNAPSHOT_SECONDS`` and at once in the process that makes or lifts a ban: a query per
write cost the write path a PostgreSQL round trip for a table that is nearly always empty
(bench/lag.py's p99 went past its target). Another API process sees a new ban within
``SNAPSHOT_SECONDS``.
"""

from __future__ import annotations

import ipaddress
import math
import time
from datetime import UTC, datetime

import asyncpg
import msgspec

from service.addresses import parse_address
from service.domain.bans import Network

UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
PER_PAGE = 25
SNAPSHOT_SECONDS = 2.0
_COLUMNS = "id, cidr::text AS cidr, until, reason, created_by, created_at"
_ACTIVE = "(until IS NULL OR until > now())"


class Ban(msgspec.Struct, kw_only=True):
    id: int
    cidr: str
    until: datetime | None
    reason: str
    created_at: datetime
    created_by: str


def _ban(row: asyncpg.Record) -> Ban:
    return Ban(id=row["id"], cidr=row["cidr"], until=row["until"], reason=row["reason"],
               created_at=row["created_at"], created_by=row["created_by"])


async def add(pool: asyncpg.Pool, network: Network, until: datetime | None, reason: str,
              created_by: str) -> Ban:
    async with pool.acquire() as conn, conn.transaction():
        # Ended bans are kept for nothing: purge them whenever a new one is made.
        await conn.execute("DELETE FROM bans WHERE until <= now()")
        row = await conn.fetchrow(
            f"INSERT INTO bans (cidr, until, reason, created_by) VALUES ($1::cidr, $2, $3, $4)"
            f" RETURNING {_COLUMNS}", str(network), until, reason, created_by)
    return _ban(row)


async def active(pool: asyncpg.Pool, page: int) -> tuple[list[Ban], int]:
    """One page of the bans in force, newest first, and the number of pages (at least 1)."""
    total = await pool.fetchval(f"SELECT count(*) FROM bans WHERE {_ACTIVE}")
    rows = await pool.fetch(
        f"SELECT {_COLUMNS} FROM bans WHERE {_ACTIVE} ORDER BY id DESC LIMIT $1 OFFSET $2",
        PER_PAGE, (page - 1) * PER_PAGE)
    return [_ban(r) for r in rows], max(1, math.ceil(total / PER_PAGE))


async def remove(pool: asyncpg.Pool, ban_id: int) -> Ban | None:
    row = await pool.fetchrow(f"DELETE FROM bans WHERE id = $1 RETURNING {_COLUMNS}", ban_id)
    return _ban(row) if row else None



class Banned:
    """The bans in force, from a snapshot of the table (see the module's docstring)."""

    def __init__(self, pool: asyncpg.Pool, ttl: float = SNAPSHOT_SECONDS) -> None:
        self._pool = pool
        self._ttl = ttl
        self._bans: list[tuple[Network, Ban]] = []
        self._loaded: float | None = None

    def forget(self) -> None:
        """Reload before the next check: this process has just made or lifted a ban."""
        self._loaded = None

    async def covering(self, client: str) -> Ban | None:
        """The ban in force over the client address ``client`` that lasts longest, if any
        (none for a peer that is no IP address: a Unix socket, a test transport)."""
        if self._loaded is None or time.monotonic() - self._loaded > self._ttl:
            rows = await self._pool.fetch(f"SELECT {_COLUMNS} FROM bans WHERE {_ACTIVE}")
            self._bans = [(ipaddress.ip_network(r["cidr"]), _ban(r)) for r in rows]
            self._loaded = time.monotonic()
        if not self._bans:
            return None
        ip = parse_address(client)
        if ip is None:
            return None
        now = datetime.now(UTC)
        found = [ban for network, ban in self._bans if ip.version == network.version
                 and ip in network and (ban.until is None or ban.until > now)]
        # The longest lasting: no end first, then the latest end.
        return max(found, key=lambda b: (b.until is None, b.until or now), default=None)


def refusal(ban: Ban) -> str:
    end = (f"until {ban.until.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}" if ban.until
           else "with no end set")
    return f"this address is banned {end}: {ban.reason}"
