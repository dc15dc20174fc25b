"""Address bans: a PostgreSQL table outside the log (migration 0005), read on every write.

One guard (``refuse_banned``, installed on the whole app) refuses every unsafe request
from a banned address, with the reason and the end, before its handler runs: writes,
sign-in and registration alike. Routes marked ``opt={"ban_exempt": True}`` (lifting bans,
signing out) stay open. The lookup is one GiST-indexed query (``cidr >>= inet``).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import asyncpg
import msgspec
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from service.addresses import address_of, parse_address
from service.domain.bans import Network
from service.domain.errors import ForbiddenError

UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
PER_PAGE = 25
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


async def covering(pool: asyncpg.Pool, address: str) -> Ban | None:
    """The ban in force over ``address`` that lasts longest, if any."""
    row = await pool.fetchrow(
        f"SELECT {_COLUMNS} FROM bans WHERE cidr >>= $1::inet AND {_ACTIVE}"
        " ORDER BY until DESC NULLS FIRST LIMIT 1", address)
    return _ban(row) if row else None


def refusal(ban: Ban) -> str:
    end = (f"until {ban.until.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}" if ban.until
           else "with no end set")
    return f"this address is banned {end}: {ban.reason}"


async def refuse_banned(connection: ASGIConnection[Any, Any, Any, Any],
                        handler: BaseRouteHandler) -> None:
    """The app-wide guard: an unsafe request from a banned address is 403."""
    if connection.scope.get("method") not in UNSAFE or handler.opt.get("ban_exempt"):
        return
    address = parse_address(address_of(connection.scope))
    if address is None:  # not an IP peer (a Unix socket, a test transport): nothing to ban
        return
    found = await covering(connection.app.state.services.pool, str(address))
    if found is not None:
        raise ForbiddenError(refusal(found))
