"""Who is suspended now, for moderators (GET /api/suspensions).

Read straight from the log, not from a projection. Suspensions are rare decisions of
moderators, so the suspension events ever written are few, and a partial index holds
exactly them (migration 0003): the newest one per member stream is one index scan.
Reading the log means the list is always exactly what sign-in and writes enforce (they
fold the same streams), with no projection lag, nothing to rebuild after a replay and
nothing in Redis to lose. A suspension whose end has passed drops out by itself, as it
does for enforcement: no event marks its end.
"""

from __future__ import annotations

from datetime import datetime

import asyncpg
import msgspec

from events import StoreUnavailableError, decode
from events.members import MemberSuspended

_CURRENT = """
SELECT DISTINCT ON (stream_id) data::text FROM events
WHERE type IN ('member_suspended', 'member_suspension_lifted')
ORDER BY stream_id, version DESC
"""


class Suspension(msgspec.Struct):
    name: str
    until: datetime | None
    reason: str
    by: str
    since: datetime


async def current(pool: asyncpg.Pool, now: datetime) -> list[Suspension]:
    """Suspensions in force at ``now``, the newest first."""
    try:
        rows = await pool.fetch(_CURRENT)
    except (OSError, asyncpg.InterfaceError, asyncpg.CannotConnectNowError,
            asyncpg.ConnectionDoesNotExistError, TimeoutError) as error:
        raise StoreUnavailableError(str(error)) from error
    found = []
    for row in rows:
        event = decode(row[0])
        if isinstance(event, MemberSuspended) and (event.until is None or event.until > now):
            found.append(Suspension(name=event.name, until=event.until, reason=event.reason,
                                    by=event.actor, since=event.occurred_at))
    found.sort(key=lambda s: (s.since, s.name), reverse=True)
    return found
