"""Erasing a person from the database: the one place the log is rewritten.

One transaction: every event that names the subject is rewritten as events/redaction.py
decides (a member's own stream is renamed to the pseudonym's), their credential, sessions
and name claims are deleted, stored answers of writes that showed them are forgotten, and
a ``MemberErased`` event records that it happened (naming only the pseudonym), after
which the workers rebuild the read models from the rewritten log (workers/erasures.py).

Appends wait while the rewrite runs (a SHARE ROW EXCLUSIVE lock on ``events``, which every
append's ROW EXCLUSIVE conflicts with): a post the subject was writing at that moment must
not slip in after the scan with their name on it. The scan of the whole log (a name can be
anywhere: an author, an actor, a quote in someone else's post) comes first, without the
lock: only what it cannot have seen is scanned again under the lock, so appends wait for
a rewrite, not for a read of the log (bench/erase.py). Reads never wait.

Old row versions stay in the table's files until VACUUM reclaims them; no query, dump or
``forum backup`` can see them, but an operator erasing on legal request should run
``VACUUM events`` afterwards (deploy/README.md), as with any deletion in PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import asyncpg
import msgspec

from events.codec import decode, encode
from events.members import MemberErased, StreamRedacted
from events.postgres import _HORIZON, append_within
from events.records import member_stream
from events.redaction import Subject, gather, redact

_NAMES = "strpos(lower(data::text), lower($1)) > 0"
# Positions of the events naming the subject, from $2 up to below $3.
_NAMING = f"SELECT position FROM events WHERE position >= $2 AND position < $3 AND {_NAMES}"
_RECHECK = f"""
SELECT position, stream_id, data FROM events WHERE position = ANY($2::bigint[]) AND {_NAMES}
UNION ALL
SELECT position, stream_id, data FROM events WHERE position >= $3 AND {_NAMES}
ORDER BY position
"""


class Erased(msgspec.Struct, frozen=True):
    pseudonym: str
    events_rewritten: int
    streams: int  # other streams whose events were rewritten (threads the name was in)
    position: int  # of the MemberErased event


async def erase(pool: asyncpg.Pool, subject: Subject, *, actor: str, now: datetime,
                pseudonym_forms: Iterable[str] = ()) -> Erased:
    """Erase ``subject`` (``pseudonym_forms``: the name-table keys the pseudonym claims,
    so nobody can register a look-alike of it later)."""
    # The name as it is written inside stored JSON text, lowercased as PostgreSQL does:
    # every event that names the subject contains it, so one scan finds them all.
    needle = msgspec.json.encode(subject.name).decode()[1:-1]
    async with pool.acquire() as conn:
        # What this scan cannot see was committed after its snapshot, by a transaction
        # that had not ended when the snapshot was taken: at or above its horizon.
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            horizon = int(await conn.fetchval(f"SELECT {_HORIZON}"))
            seen = [row[0] for row in await conn.fetch(_NAMING, needle, 0, horizon)]
        async with conn.transaction():
            # ``snapshots`` too: a save under way ends first (and its row is deleted
            # below), a later one waits and then sees the rewrite (events/snapshots.py).
            await conn.execute("LOCK TABLE events, snapshots IN SHARE ROW EXCLUSIVE MODE")
            # The tail beyond that horizon, and what was found read again (another
            # erasure may have rewritten it meanwhile).
            rows = await conn.fetch(_RECHECK, needle, seen, horizon)
            return await _rewrite(conn, subject, rows, needle, actor=actor, now=now,
                                  pseudonym_forms=pseudonym_forms)


async def _rewrite(conn: asyncpg.Connection, subject: Subject, rows: list[asyncpg.Record],
                   needle: str, *, actor: str, now: datetime,
                   pseudonym_forms: Iterable[str]) -> Erased:
    """The rewrite, inside the locked transaction, of the events ``rows`` found."""
    found = [(row[0], row[1], decode(row[2])) for row in rows]
    for _, _, event in found:
        gather(event, subject)
    rewritten = [(position, encode(new).decode()) for position, _, event in found
                 if (new := redact(event, subject)) is not None]
    changed = {position for position, _ in rewritten}
    if subject.guest and not changed:
        raise LookupError(f"no event names the guest {subject.name!r}")
    await conn.executemany("UPDATE events SET data = $2::jsonb WHERE position = $1",
                           rewritten)
    streams = sorted({stream for position, stream, event in found
                      if position in changed} - {member_stream(subject.name)})
    # Snapshots of the rewritten streams hold the name (a post's author, a liker); the
    # next load folds the rewritten events again. The subject's own stream is not
    # snapshotted (only threads are).
    await conn.execute("DELETE FROM snapshots WHERE stream_id = ANY($1::text[])", streams)
    if subject.guest:
        stream, version = f"guest-{subject.pseudonym.casefold()}", 0
        await conn.execute("DELETE FROM guest_names WHERE lower(name) = lower($1)",
                           subject.name)
    else:
        old, stream = member_stream(subject.name), member_stream(subject.pseudonym)
        version = int(await conn.fetchval(
            "WITH moved AS (UPDATE events SET stream_id = $2 WHERE stream_id = $1"
            " RETURNING 1) SELECT count(*) FROM moved", old, stream))
        await conn.execute("DELETE FROM credentials WHERE member = $1", old)
        await conn.execute("DELETE FROM sessions WHERE member = $1", old)
        await conn.execute("DELETE FROM member_names WHERE lower(name) = lower($1)",
                           subject.name)
        await conn.executemany(
            "INSERT INTO member_names (skeleton, name) VALUES ($1, $2)"
            " ON CONFLICT (skeleton) DO NOTHING",
            [(form, subject.pseudonym) for form in pseudonym_forms])
        await conn.execute("UPDATE bans SET created_by = $2 WHERE lower(created_by)"
                           " = lower($1)", subject.name, subject.pseudonym)
    # A stored answer is replayed to a retried write: the subject's writes' answers,
    # and any other that shows the name, are forgotten (they only deduplicate).
    await conn.execute(
        "DELETE FROM idempotency WHERE position = ANY($1::bigint[])"
        " OR strpos(lower(convert_from(response, 'UTF8')), lower($2)) > 0",
        [p for p, _ in rewritten], needle)
    erased = MemberErased(occurred_at=now, actor=actor, name=subject.pseudonym,
                          content="erase" if subject.erase_bodies else "keep",
                          guest=subject.guest)
    # Writers that keep the other streams folded must fold them again (their state
    # may hold the name); the erasure itself goes last, in the subject's stream.
    versions = dict(await conn.fetch(
        "SELECT stream_id, max(version) FROM events WHERE stream_id = ANY($1::text[])"
        " GROUP BY stream_id", streams))
    position = await append_within(conn, [
        *((other, versions[other] + 1, StreamRedacted(occurred_at=now, actor=actor))
          for other in streams),
        (stream, version + 1, erased)])
    return Erased(subject.pseudonym, len(rewritten), len(streams), position)
