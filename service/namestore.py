"""Which names are in use, by their confusable forms (service/domain/names.py).

Two tables of operational data (migration 0004), not events: ``member_names`` (every form
of every member's name, claimed before the registration is appended) and ``guest_names``
(a guest name's forms, held by the guest identity that used it last until it has gone
unused for a while). Each claim is one atomic statement, so two look-alike claims racing
each other cannot both win. An in-memory twin serves the handler unit tests.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

import asyncpg

from service.domain.names import forms


class NameStore(Protocol):
    async def claim_member(self, name: str) -> str | None:
        """Take every form of a member's name; the other member's name that holds one of
        them already (nothing is taken then), or None. Idempotent for the same name."""
        ...

    async def member_like(self, name: str) -> str | None:
        """The member's name that looks like ``name``, if any."""
        ...

    async def guest_holder(self, name: str, guest_id: str, since: datetime) -> str | None:
        """Another guest identity's name, used after ``since``, that looks like ``name``."""
        ...

    async def look_alikes(self, name: str, guest_id: str | None, since: datetime
                          ) -> tuple[str | None, str | None]:
        """``member_like`` and (with a ``guest_id``) ``guest_holder`` in one look: a guest's
        write asks both, and on the write path each round trip counts."""
        ...

    async def claim_guest(self, name: str, guest_id: str, now: datetime, since: datetime
                          ) -> bool:
        """Hold ``name`` for ``guest_id`` (used ``now``) unless another identity used a
        look-alike after ``since``; False (and nothing held) then."""
        ...


class InMemoryNameStore:
    def __init__(self) -> None:
        self.members: dict[str, str] = {}
        self.guests: dict[str, tuple[str, str, datetime]] = {}

    async def claim_member(self, name: str) -> str | None:
        keys = forms(name)
        for key in keys:
            held = self.members.get(key)
            if held is not None and held.casefold() != name.casefold():
                return held
        for key in keys:
            self.members.setdefault(key, name)
        return None

    async def member_like(self, name: str) -> str | None:
        return next((self.members[k] for k in forms(name) if k in self.members), None)

    async def guest_holder(self, name: str, guest_id: str, since: datetime) -> str | None:
        for key in forms(name):
            held = self.guests.get(key)
            if held is not None and held[0] != guest_id and held[2] >= since:
                return held[1]
        return None

    async def look_alikes(self, name: str, guest_id: str | None, since: datetime
                          ) -> tuple[str | None, str | None]:
        holder = None if guest_id is None else await self.guest_holder(name, guest_id, since)
        return await self.member_like(name), holder

    async def claim_guest(self, name: str, guest_id: str, now: datetime, since: datetime
                          ) -> bool:
        if await self.guest_holder(name, guest_id, since) is not None:
            return False
        for key in forms(name):
            self.guests[key] = (guest_id, name, now)
        return True


_CLAIM_MEMBER = """
INSERT INTO member_names (skeleton, name) SELECT f, $2 FROM unnest($1::text[]) AS f
ON CONFLICT (skeleton) DO NOTHING
RETURNING skeleton
"""
_HOLDERS = "SELECT name FROM member_names WHERE skeleton = ANY($1::text[])"
_GUEST_HOLDER = """
SELECT name FROM guest_names
WHERE skeleton = ANY($1::text[]) AND guest_id <> $2 AND last_used >= $3
LIMIT 1
"""
_LOOK_ALIKES = """
SELECT (SELECT name FROM member_names WHERE skeleton = ANY($1::text[]) LIMIT 1),
       (SELECT name FROM guest_names
        WHERE $2::text IS NOT NULL AND skeleton = ANY($1::text[]) AND guest_id <> $2
          AND last_used >= $3 LIMIT 1)
"""
# The WHERE of DO UPDATE runs on the row as committed by a racing claim (the conflicting
# insert waits for it), so only the holder itself or a lapsed hold is overwritten.
_CLAIM_GUEST = """
INSERT INTO guest_names (skeleton, guest_id, name, last_used)
SELECT f, $2, $3, $4 FROM unnest($1::text[]) AS f
ON CONFLICT (skeleton) DO UPDATE
    SET guest_id = excluded.guest_id, name = excluded.name, last_used = excluded.last_used
    WHERE guest_names.guest_id = excluded.guest_id OR guest_names.last_used < $5
RETURNING skeleton
"""


class _RefusedError(Exception):
    """Rolls a claim's transaction back."""


class PostgresNameStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        forms("")  # builds the confusables map now, not in the first request that names

    async def claim_member(self, name: str) -> str | None:
        keys = sorted(forms(name))  # one order for everyone: no deadlock between claims
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                taken = {r[0] for r in await conn.fetch(_CLAIM_MEMBER, keys, name)}
                missing = [k for k in keys if k not in taken]
                if missing:
                    # A new statement, so a claim committed while ours waited is seen.
                    for row in await conn.fetch(_HOLDERS, missing):
                        if row[0].casefold() != name.casefold():
                            raise _RefusedError(row[0])
        except _RefusedError as refused:
            return str(refused.args[0])
        return None

    async def member_like(self, name: str) -> str | None:
        row = await self._pool.fetchrow(_HOLDERS + " LIMIT 1", sorted(forms(name)))
        return None if row is None else str(row[0])

    async def guest_holder(self, name: str, guest_id: str, since: datetime) -> str | None:
        row = await self._pool.fetchrow(_GUEST_HOLDER, sorted(forms(name)), guest_id, since)
        return None if row is None else str(row[0])

    async def look_alikes(self, name: str, guest_id: str | None, since: datetime
                          ) -> tuple[str | None, str | None]:
        row = await self._pool.fetchrow(_LOOK_ALIKES, sorted(forms(name)), guest_id, since)
        assert row is not None  # a SELECT without FROM answers one row
        return row[0], row[1]

    async def claim_guest(self, name: str, guest_id: str, now: datetime, since: datetime
                          ) -> bool:
        keys = sorted(forms(name))
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                rows = await conn.fetch(_CLAIM_GUEST, keys, guest_id, name, now, since)
                if len(rows) < len(keys):
                    raise _RefusedError
        except _RefusedError:
            return False
        return True


async def guest_token_key(pool: asyncpg.Pool) -> bytes | None:
    """The server's key for deriving replayed guest tokens (migration 0004); None before
    that migration (each process then uses a random key of its own)."""
    secret = await pool.fetchval("SELECT secret FROM service_keys WHERE name = 'guest_tokens'")
    return None if secret is None else str(secret).encode()


async def backfill_member_names(url: str) -> int:
    """Claim the forms of every registered member's name (``forum migrate``; safe to run
    again). Where members registered before skeletons were compared already look alike,
    the first registered keeps the shared form. Returns how many forms were added."""
    conn = await asyncpg.connect(url)
    try:
        names = [r[0] for r in await conn.fetch(
            "SELECT data->>'name' FROM events WHERE type = 'member_registered' "
            "ORDER BY position")]
        pairs: dict[str, str] = {}
        for name in names:
            for key in forms(name):
                pairs.setdefault(key, name)
        status = await conn.execute(
            "INSERT INTO member_names (skeleton, name) "
            "SELECT * FROM unnest($1::text[], $2::text[]) ON CONFLICT (skeleton) DO NOTHING",
            list(pairs), list(pairs.values()))
    finally:
        await conn.close()
    return int(status.rsplit(" ", 1)[-1])
