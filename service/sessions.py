"""Members' sessions in PostgreSQL, and who a session's member is right now.

A token is 32 random bytes (``secrets.token_urlsafe``); the ``sessions`` table keeps only
its SHA-256, the member's stream id, and when it was made, expires and was revoked.
Sessions are operational data, not events: a credential never enters the log.

Authority is current (ARCHITECTURE invariant 7): every request reads its session row and,
in the same statement, the member stream's current version. The member's role and
suspension come from their stream folded to exactly that version, so a demotion, a
suspension or a revocation written by any API process holds from the very next request.
Folding is not repeated per request: each process keeps folded ``Standing``s keyed by
stream and version (least recently used out, STANDING_CACHE_SIZE entries of a bounded
size each) and reads only the events after the kept version when the version moved.
"""

from __future__ import annotations

import hashlib
import secrets
from collections import OrderedDict
from datetime import datetime, timedelta

import asyncpg

from events import EventStore, StoreUnavailableError
from service.domain import members

STANDING_CACHE_SIZE = 4096
# A session made "in the future" beyond this is refused: a restored or tampered table, or
# a clock gone wrong, must not yield sessions that never expire.
CLOCK_SKEW = timedelta(minutes=5)
TOKEN_MAX = 200  # longer "tokens" are refused without a database round trip

_CREATE = """
WITH cleared AS (
    DELETE FROM sessions WHERE member = $2 AND (expires_at < now() OR revoked_at IS NOT NULL)
)
INSERT INTO sessions (token_hash, member, expires_at)
VALUES ($1, $2, now() + make_interval(secs => $3))
"""

_RESOLVE = """
SELECT s.member, s.created_at > now() + make_interval(secs => $2) AS future,
       s.expires_at <= now() AS expired, s.revoked_at IS NOT NULL AS revoked,
       (SELECT max(version) FROM events WHERE stream_id = s.member) AS version, now()
FROM sessions s WHERE s.token_hash = $1
"""


class Session:
    """A resolved session: its member's standing now, and the database's clock."""

    __slots__ = ("member", "now", "standing", "token_hash")

    def __init__(self, member: str, standing: members.Standing, now: datetime,
                 token_hash: bytes) -> None:
        self.member = member
        self.standing = standing
        self.now = now
        self.token_hash = token_hash


class SessionRefusedError(Exception):
    """The token names no usable session; ``reason`` says why, for the 401's detail."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class Sessions:
    def __init__(self, pool: asyncpg.Pool, store: EventStore, ttl_seconds: float) -> None:
        self._pool = pool
        self._store = store
        self.ttl_seconds = ttl_seconds
        self._standings: OrderedDict[str, tuple[int, members.Standing]] = OrderedDict()

    async def open(self, member: str) -> str:
        """A new session for the member's stream; the token is shown once, here."""
        token = secrets.token_urlsafe(32)
        await self._execute(_CREATE, token_hash(token), member, float(self.ttl_seconds))
        return token

    async def resolve(self, token: str) -> Session:
        """The session this token opened, with its member's current standing."""
        if not token or len(token) > TOKEN_MAX or not token.isascii():
            raise SessionRefusedError("the token is invalid; sign in again")
        digest = token_hash(token)
        try:
            row = await self._pool.fetchrow(_RESOLVE, digest, CLOCK_SKEW.total_seconds())
        except (OSError, asyncpg.InterfaceError, asyncpg.CannotConnectNowError,
                asyncpg.ConnectionDoesNotExistError, TimeoutError) as error:
            raise StoreUnavailableError(str(error)) from error
        if row is None:
            raise SessionRefusedError("the token is invalid; sign in again")
        member, future, expired, revoked, version, now = row
        if revoked:
            raise SessionRefusedError("this session was signed out; sign in again")
        if expired:
            raise SessionRefusedError("this session has expired; sign in again")
        if future:
            raise SessionRefusedError("this session was made in the future; sign in again")
        standing = None if version is None else await self._standing(member, int(version))
        if standing is None:
            raise SessionRefusedError("the member of this session does not exist")
        return Session(member, standing, now, digest)

    async def _standing(self, member: str, version: int) -> members.Standing | None:
        kept = self._standings.get(member)
        if kept is not None and kept[0] >= version:  # newer: a concurrent request's fold
            self._standings.move_to_end(member)
            return kept[1]
        # Only the events after the kept version.
        after, standing = kept if kept is not None else (0, None)
        for record in await self._store.read_stream(member, after):
            if record.version > version:  # appended since the version read: next time
                break
            standing = members.evolve(standing, record.event)
        if standing is not None:
            self._standings[member] = (version, standing)
            self._standings.move_to_end(member)
            if len(self._standings) > STANDING_CACHE_SIZE:
                self._standings.popitem(last=False)
        return standing

    async def revoke_hash(self, digest: bytes) -> bool:
        """Sign the session with this token hash out; False if it was not live."""
        status = await self._execute(
            "UPDATE sessions SET revoked_at = now() WHERE token_hash = $1"
            " AND revoked_at IS NULL AND expires_at > now()", digest)
        return status != "UPDATE 0"

    async def revoke_all(self, member: str) -> int:
        """Sign every session of the member's stream out; how many were live."""
        status = await self._execute(
            "UPDATE sessions SET revoked_at = now() WHERE member = $1"
            " AND revoked_at IS NULL AND expires_at > now()", member)
        return int(status.rsplit(" ", 1)[-1])

    async def _execute(self, query: str, *args: object) -> str:
        try:
            return str(await self._pool.execute(query, *args))
        except (OSError, asyncpg.InterfaceError, asyncpg.CannotConnectNowError,
                asyncpg.ConnectionDoesNotExistError, TimeoutError) as error:
            raise StoreUnavailableError(str(error)) from error
