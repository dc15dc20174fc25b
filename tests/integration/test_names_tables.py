"""The name tables of migration 0004 on real PostgreSQL: backfilled from the log by
``forum migrate``, and claims that race each other cannot both win."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from events.records import member_stream
from service.namestore import PostgresNameStore, backfill_member_names
from tests.builders import member_registered
from tests.conftest import process_env
from tests.integration.test_cli import forum, no_traceback


async def test_forum_migrate_records_the_names_of_members_registered_before(
        store, pool, settings, database_url):
    for name in ("alice", "Bob"):
        await store.append(member_stream(name), 0, [member_registered(name)])
    done = forum("migrate", env=process_env(settings))
    assert done.returncode == 0, done.stderr
    no_traceback(done)
    assert "recorded 2 member name forms" in done.stdout, done.stdout
    names = PostgresNameStore(pool)
    assert await names.member_like("al\u0131ce") == "alice"
    assert await names.member_like("B0B") == "Bob"
    assert await names.claim_member("al\u0131ce") == "alice"
    assert await backfill_member_names(database_url) == 0  # safe to run again


async def test_of_two_look_alike_registrations_racing_one_wins(pool):
    names = PostgresNameStore(pool)
    for _ in range(5):
        a, b = f"Ilse{_}", f"llse{_}"
        results = await asyncio.gather(names.claim_member(a), names.claim_member(b))
        assert sorted(r is None for r in results) == [False, True], results
    assert await names.claim_member("Ilse0") in (None, "llse0")  # the same name: idempotent


async def test_of_two_guests_claiming_one_name_at_once_one_wins(pool):
    names = PostgresNameStore(pool)
    now = datetime.now(UTC)
    since = now - timedelta(days=30)
    results = await asyncio.gather(*(names.claim_guest("gus", f"id{n}", now, since)
                                     for n in range(6)))
    assert results.count(True) == 1
    winner = f"id{results.index(True)}"
    assert await names.claim_guest("GUS", winner, now, since)
    assert not await names.claim_guest("gus", "someone", now, since)
    assert await names.claim_guest("gus", "someone", now + timedelta(days=31),
                                   now + timedelta(days=1))
