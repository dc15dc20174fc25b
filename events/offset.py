"""The log's offset: what keeps positions readable and in order on another cluster.

A position is ``((transaction id + offset) << 20) | index`` and readers read below
``(oldest running transaction id + offset) << 20`` (events/postgres.py). Transaction ids
belong to the cluster, not to the database: a log restored from ``pg_dump``, copied by
logical replication or moved to a managed service lands on a cluster whose counter may be
far lower than the one it was written on. Its whole history then lies beyond every
reader's horizon (readers see nothing) and the next append is placed before all of it.

``raise_offset`` (run by ``forum migrate`` and ``forum restore``) finds such a log and
raises the offset (migration 0008, one row) so that the horizon passes the newest event
and new appends follow it. The offset only ever rises, and it changes only while no
append is in flight: an append that read the old offset and committed after the raise
would land behind what a reader had already read. ``LOCK TABLE events IN EXCLUSIVE MODE``
gives exactly that: it conflicts with the ROW EXCLUSIVE lock each append holds from its
INSERT to its commit, so it waits for appends in flight, and appends that start meanwhile
wait for the raise to commit. They take their snapshot after that lock is granted (each
statement of a READ COMMITTED transaction takes a new one), so they see the new offset.
Readers take no lock they would wait on (ACCESS SHARE), and on a log that is not ahead
nothing is locked at all.
"""

from __future__ import annotations

from typing import Any

# What `forum status`, the API and the workers say, loudly, about a log that is ahead.
LOG_AHEAD = ("the event log lies beyond this PostgreSQL cluster's transaction counter (it "
             "was restored or replicated from another cluster): readers see none of it and "
             "new events would be placed before it. Stop the service and the workers and "
             "run `forum migrate` (deploy/README.md, \"Backups and moving the database\").")

# The offset as an SQL expression: an InitPlan on a one-row table, evaluated once per
# statement, in the statement's snapshot.
OFFSET = "(SELECT xid_offset FROM log_offset)"

# The first position a statement appending now takes (its events add their index in the
# statement): every append writes with this, so all share one order.
APPEND_BASE = f"(((pg_current_xact_id()::text)::bigint + {OFFSET}) << 20)"

# Is the newest event beyond anything this cluster can have written? Every committed event
# visible here was written by a transaction below the snapshot's xmax (the next id to be
# handed out), so on the cluster the log was written on this is never true.
_AHEAD = f"""
SELECT coalesce(max(position) >> 20, 0)
       >= (pg_snapshot_xmax(pg_current_snapshot())::text)::bigint + {OFFSET}
FROM events
"""

# Under the lock: the newest event's transaction part, this transaction's id, the offset.
_UNDER_LOCK = f"""
SELECT coalesce(max(position) >> 20, 0), (pg_current_xact_id()::text)::bigint, {OFFSET}
FROM events
"""


async def log_ahead(conn: Any) -> bool:
    """True when the log is ahead of this cluster's transaction counter (restored or
    replicated from another cluster and not migrated since). ``conn``: an asyncpg
    connection or pool."""
    return bool(await conn.fetchval(_AHEAD))


async def raise_offset(conn: Any) -> int | None:
    """Raise the offset if the log is ahead; the new offset, or None if it was not.

    The new offset puts this transaction's id one past the newest event's: every later
    transaction, hence every new append and (once transactions older than this one have
    ended) every reader's horizon, is beyond the whole log. ``conn``: an asyncpg
    connection, not in a transaction."""
    if not await log_ahead(conn):
        return None
    async with conn.transaction():
        await conn.execute("LOCK TABLE events IN EXCLUSIVE MODE")
        top, xid, offset = await conn.fetchrow(_UNDER_LOCK)
        if top < xid + offset:  # raised by another runner meanwhile
            return None
        new = int(top) + 1 - int(xid)
        await conn.execute(
            "UPDATE log_offset SET xid_offset = greatest(xid_offset, $1), raised_at = now()",
            new)
    return new


async def say_if_ahead(log: Any, store: Any) -> None:
    """Loudly, at start-up (the API's and the workers'): a log restored or replicated from
    another cluster and not migrated since. Only a diagnosis: it never stops the start.
    ``log``: a structlog logger; ``store``: a PostgresEventStore."""
    import asyncpg

    from events.errors import StoreUnavailableError

    try:
        ahead = await store.ahead_of_cluster()
    except (StoreUnavailableError, asyncpg.PostgresError) as error:
        log.warning("log_offset_unchecked", error=repr(error))
        return
    if ahead:
        log.error("log_ahead_of_cluster", detail=LOG_AHEAD)
