"""Invariant 8: the log is portable. A board copied to another PostgreSQL cluster (with
``pg_dump``/``pg_restore`` and ``forum migrate``, or ``forum backup``/``forum restore``)
reads in full, in its order, gives the same read models, and new events follow it. Raising
the log's offset never lets a reader skip an event (invariant 2).

The other cluster is the test's own, freshly initialised (tests/pgcluster.py), so its
transaction counter is low; the board is built on the shared cluster, made to have handed
out more transaction ids than that first (as any cluster in service for a while has).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import msgspec
import pytest
import pytest_asyncio
from redis.asyncio import Redis

from events.backup import SKIPPED, TABLES, backup, restore, tables
from events.codec import encode
from events.migrate import migrate, migrations
from events.offset import raise_offset
from events.postgres import PostgresEventStore, create_pool
from events.records import RecordedEvent, member_stream, thread_stream
from service.settings import Settings
from tests import pgcluster
from tests.builders import new_id, post_added, unique_name, unique_slug
from tests.conftest import (
    OPERATOR,
    PG_URL,
    REDIS_URL,
    _drop_database,
    _with_db,
    free_port,
    process_env,
)
from tests.integration.test_cli import forum, no_traceback
from tests.readmodel_dump import differences, drop_prefix, dump, fill_pages, rebuild_dump
from workers.readmodels import Keys

pytestmark = pytest.mark.skipif(not pgcluster.available(),
                                reason=f"no PostgreSQL server binaries in {pgcluster.BIN}")

PASSWORD = "correct horse"
# The board's cluster is made this many transactions further on than the fresh one.
AHEAD = 20_000
PG_BIN = pgcluster.BIN
CATCH_UP_SECONDS = 20


@pytest.fixture(scope="module")
def fresh_cluster() -> Iterator[pgcluster.Cluster]:
    cluster = pgcluster.Cluster()
    try:
        yield cluster.start()
    finally:
        cluster.stop()


async def _xid(url: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        return int(await conn.fetchval("SELECT (pg_current_xact_id()::text)::bigint"))
    finally:
        await conn.close()


async def _further_on_than(cluster: pgcluster.Cluster) -> None:
    """A production cluster has handed out millions of transaction ids; this machine's may
    be nearly new itself. Spend ids until it is well ahead of the fresh one (harmless: any
    workload spends them, and these commit without waiting for the disk)."""
    target = await _xid(cluster.url()) + AHEAD
    conn = await asyncpg.connect(PG_URL)
    try:
        await conn.execute("SET synchronous_commit = off")
        while await conn.fetchval("SELECT (pg_current_xact_id()::text)::bigint") < target:
            await conn.execute("DO $$ BEGIN FOR i IN 1..5000 LOOP"
                               " PERFORM pg_current_xact_id(); COMMIT; END LOOP; END $$")
    finally:
        await conn.close()


# -- a small board, through the API --------------------------------------------------

@dataclass
class Board:
    member: str
    headers: dict[str, str]
    threads: list[int]


async def build_board(client: httpx.AsyncClient) -> Board:
    """Sections, members, threads with replies, a quote, a like, an edit, a lock, an
    Idempotency-Key and a ban: rows in every table a backup carries."""
    async def ok(r: httpx.Response) -> dict[str, Any]:
        assert r.status_code in (200, 201), r.text
        return r.json() if r.content else {}  # type: ignore[no-any-return]

    slug = unique_slug()
    await ok(await client.post("/api/forums", json={"slug": slug, "title": "History"},
                               headers=OPERATOR))
    ann, bob = unique_name("ann"), unique_name("bob")
    tokens = {}
    for name in (ann, bob):
        await ok(await client.post("/api/users", json={"name": name, "password": PASSWORD}))
        signed = await ok(await client.post("/api/sessions",
                                            json={"name": name, "password": PASSWORD}))
        tokens[name] = {"Authorization": f"Bearer {signed['token']}"}
    first = await ok(await client.post(
        f"/api/forums/{slug}/threads", json={"title": "Rome", "body": "first"},
        headers={**tokens[ann], "Idempotency-Key": f"key-{uuid.uuid4()}"}))
    thread = first["thread_id"]
    await ok(await client.post(f"/api/threads/{thread}/posts",
                               json={"body": "a guest's reply", "guest_name": "gus"}))
    reply = await ok(await client.post(
        f"/api/threads/{thread}/posts",
        json={"body": f"[quote={ann} post={first['post_id']}]first[/quote] agreed"},
        headers=tokens[bob]))
    await ok(await client.post(f"/api/posts/{first['post_id']}/likes", headers=tokens[bob]))
    await ok(await client.patch(f"/api/posts/{reply['post_id']}", json={"body": "edited"},
                                headers=tokens[bob]))
    threads = [thread]
    for title in ("Carthage", "Athens"):
        started = await ok(await client.post(f"/api/forums/{slug}/threads",
                                             json={"title": title, "body": "more"},
                                             headers=tokens[ann]))
        threads.append(started["thread_id"])
        await ok(await client.post(f"/api/threads/{started['thread_id']}/posts",
                                   json={"body": "a reply"}, headers=tokens[bob]))
    await ok(await client.post(f"/api/threads/{threads[-1]}/lock", headers=OPERATOR))
    await ok(await client.post("/api/bans", json={"cidr": "203.0.113.0/24", "reason": "spam"},
                               headers=OPERATOR))
    return Board(ann, tokens[ann], threads)


# -- what two databases hold ----------------------------------------------------------

async def read_everything(store: PostgresEventStore, pool: asyncpg.Pool) -> list[RecordedEvent]:
    """The whole log through the store's reader, once every row in the table is readable
    (the horizon is the cluster's: another session's transaction may hold it a while)."""
    count = int(await pool.fetchval("SELECT count(*) FROM events"))
    deadline = time.monotonic() + CATCH_UP_SECONDS
    while True:
        records: list[RecordedEvent] = []
        while batch := await store.read_all(records[-1].position if records else 0, 1000):
            records.extend(batch)
        if len(records) >= count or time.monotonic() > deadline:
            return records
        await asyncio.sleep(0.05)


async def table_rows(url: str) -> dict[str, Any]:
    """Every table a backup carries but the offset (which a restore raises), row by row,
    and every sequence."""
    conn = await asyncpg.connect(url)
    try:
        out: dict[str, Any] = {}
        for name in TABLES:
            if name != "log_offset":
                rows = await conn.fetch(f"SELECT * FROM {name}")
                out[name] = sorted(tuple(map(str, r.values())) for r in rows)
        for name in ("thread_ids", "post_ids", "bans_id_seq"):
            out[name] = tuple(await conn.fetchrow(f"SELECT last_value, is_called FROM {name}"))
        return out
    finally:
        await conn.close()


@pytest_asyncio.fixture
async def other_prefix(key_prefix: str) -> AsyncIterator[str]:
    prefix = f"{key_prefix}-restored"
    yield prefix
    redis = Redis.from_url(REDIS_URL)
    try:
        await drop_prefix(redis, prefix)
    finally:
        await redis.aclose()


async def the_same_board(original: Settings, restored: Settings, redis: Redis, *,
                         restored_prefix: str | None = None
                         ) -> list[RecordedEvent]:
    """The restored database holds the original's log, in order and readable, its other
    tables and sequences, and gives the same read models; its log, returned."""
    pools = [await create_pool(s.database_url, min_size=1, max_size=4)
             for s in (original, restored)]
    try:
        stores = [PostgresEventStore(p) for p in pools]
        logs = [await read_everything(s, p) for s, p in zip(stores, pools, strict=True)]
        assert logs[0], "the original board has no events"
        assert logs[1] == logs[0]  # every event, its position, stream, version, time
        assert not await stores[1].ahead_of_cluster()
        assert await table_rows(restored.database_url) == await table_rows(
            original.database_url)
        built = await rebuild_dump(stores[0], redis, Keys(original.key_prefix))
        if restored_prefix is not None:  # read models the restore built: pages as read
            await fill_pages(stores[1], redis, Keys(restored_prefix))
            rebuilt = await dump(redis, Keys(restored_prefix))
        else:
            rebuilt = await rebuild_dump(stores[1], redis, Keys(restored.key_prefix))
        assert not differences(built, rebuilt), differences(built, rebuilt)
        return logs[1]
    finally:
        for pool in pools:
            await pool.close()


async def new_events_follow(restored: Settings, board: Board, log: list[RecordedEvent]
                            ) -> None:
    """On the restored database, through the app: the member is still signed in and can
    sign in again; a reply is placed after the whole restored log and readers see it; ids
    go on from the original's."""
    from litestar.testing import AsyncTestClient

    from service.app import create_app

    async with AsyncTestClient(app=create_app(restored)) as client:
        r = await client.post(f"/api/threads/{board.threads[0]}/posts",
                              json={"body": "after the move"}, headers=board.headers)
        assert r.status_code == 201, r.text
        position = r.json()["position"]
        assert position > max(e.position for e in log)
        r = await client.post("/api/sessions", json={"name": board.member, "password": PASSWORD})
        assert r.status_code == 200, r.text
        r = await client.post(f"/api/threads/{board.threads[0]}/posts",
                              json={"body": "again"}, headers=board.headers)
        assert r.status_code == 201, r.text
        assert r.json()["position"] > position
    pool = await create_pool(restored.database_url, min_size=1, max_size=2)
    try:
        after = await PostgresEventStore(pool).read_all(0, 10_000)
        assert after[:len(log)] == log  # nothing new before the restored log
        new = after[len(log):]
        assert position in [e.position for e in new]
        assert new[0].event.body == "after the move"  # type: ignore[union-attr]
        assert len(after) == int(await pool.fetchval("SELECT count(*) FROM events"))
    finally:
        await pool.close()


# -- pg_dump / pg_restore -------------------------------------------------------------

async def test_a_pg_dump_restored_on_a_fresh_cluster_reads_in_full_after_forum_migrate(
        fresh_cluster, settings: Settings, client, redis, other_prefix, tmp_path: Path,
        monkeypatch):
    await _further_on_than(fresh_cluster)
    board = await build_board(client)
    dump_file = tmp_path / "board.dump"
    done = subprocess.run([str(PG_BIN / "pg_dump"), "-Fc", "-f", str(dump_file),
                           settings.database_url], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    name = f"board_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(fresh_cluster.url())
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    restored = msgspec.structs.replace(settings, database_url=fresh_cluster.url(name),
                                       key_prefix=other_prefix)
    done = subprocess.run([str(PG_BIN / "pg_restore"), "--no-owner", "--exit-on-error",
                           "-d", restored.database_url, str(dump_file)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr

    # What the operator would meet without `forum migrate`: nothing to read, and said so.
    pool = await create_pool(restored.database_url, min_size=1, max_size=2)
    try:
        assert await PostgresEventStore(pool).read_all(0, 10) == []
        assert await PostgresEventStore(pool).ahead_of_cluster()
    finally:
        await pool.close()
    env = process_env(settings, FORUM_DATABASE_URL=restored.database_url,
                      FORUM_KEY_PREFIX=other_prefix)
    status = forum("status", "--json", env=env)
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["log_ahead"] is True
    said = forum("status", env=env)
    assert "forum migrate" in said.stderr, said.stderr
    await _start_up_says_ahead(restored, monkeypatch)

    done = forum("migrate", env=env)
    assert done.returncode == 0, done.stderr
    no_traceback(done)
    assert "offset is now" in done.stdout, done.stdout
    again = forum("migrate", env=env)  # and only once
    assert again.returncode == 0 and "offset" not in again.stdout, again.stdout

    log = await the_same_board(settings, restored, redis)
    await new_events_follow(restored, board, log)


async def _start_up_says_ahead(restored: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    from service import lifespan

    said: list[tuple[str, dict[str, Any]]] = []

    class Log:
        def error(self, event: str, **fields: Any) -> None:
            said.append((event, fields))

        def warning(self, event: str, **fields: Any) -> None:
            said.append((event, fields))

    monkeypatch.setattr(lifespan, "log", Log())
    async with lifespan.services(restored):
        pass
    assert [event for event, _ in said] == ["log_ahead_of_cluster"]
    assert "forum migrate" in said[0][1]["detail"]


# -- forum backup / forum restore ------------------------------------------------------

async def test_forum_backup_and_restore_carry_the_board_to_a_fresh_cluster(
        fresh_cluster, settings: Settings, client, redis, other_prefix, tmp_path: Path):
    await _further_on_than(fresh_cluster)
    board = await build_board(client)
    file = tmp_path / "board.backup"
    done = forum("backup", str(file), env=process_env(settings))
    assert done.returncode == 0, done.stderr
    no_traceback(done)
    assert "backed up" in done.stdout and not (tmp_path / "board.backup.partial").exists()

    # Into a database that does not exist yet, on the fresh cluster, read models rebuilt
    # under a key prefix of its own.
    restored = msgspec.structs.replace(
        settings, database_url=fresh_cluster.url(f"board_{uuid.uuid4().hex[:8]}"),
        key_prefix=other_prefix)
    env = process_env(settings, FORUM_DATABASE_URL=restored.database_url,
                      FORUM_KEY_PREFIX=other_prefix)
    done = forum("restore", str(file), env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    no_traceback(done)
    assert "restored" in done.stdout and "offset is now" in done.stdout, done.stdout
    assert "read models rebuilt" in done.stdout, done.stdout

    log = await the_same_board(settings, restored, redis,
                               restored_prefix=other_prefix)
    await new_events_follow(restored, board, log)


async def test_restore_refuses_a_database_that_is_not_empty_and_a_damaged_file(
        settings: Settings, client, tmp_path: Path):
    await build_board(client)
    file = tmp_path / "board.backup"
    assert forum("backup", str(file), env=process_env(settings)).returncode == 0
    events = await _count_events(settings.database_url)

    refused = forum("restore", str(file), env=process_env(settings))
    assert refused.returncode == 1
    assert "is not empty" in refused.stderr and "events" in refused.stderr, refused.stderr
    no_traceback(refused)
    assert await _count_events(settings.database_url) == events

    data = file.read_bytes()
    middle = len(data) // 2
    damaged = {
        "truncated": (data[:middle], "truncated"),
        "one byte short": (data[:-1], "truncated"),
        "a byte changed": (data[:middle] + bytes([data[middle] ^ 0x5A]) + data[middle + 1:],
                           "corrupt|truncated"),
        "not a backup": (b"name,body\nann,hello\n", "not a forum backup"),
        "empty": (b"", "not a forum backup"),
    }
    name = f"forum_test_restore_{uuid.uuid4().hex[:8]}"
    target = process_env(settings, FORUM_DATABASE_URL=_with_db(PG_URL, name))
    try:
        for case, (content, expected) in damaged.items():
            bad = tmp_path / "bad.backup"
            bad.write_bytes(content)
            done = forum("restore", "--no-replay", str(bad), env=target)
            assert done.returncode == 1, (case, done.stdout)
            assert any(word in done.stderr for word in expected.split("|")), (case, done.stderr)
            no_traceback(done)
            if await _exists(name):  # nothing half-loaded
                assert await _count_events(_with_db(PG_URL, name)) == 0, case
        # The refusals left the database as empty as they found it: the backup loads.
        done = forum("restore", "--no-replay", str(file), env=target)
        assert done.returncode == 0, done.stderr
        assert await _count_events(_with_db(PG_URL, name)) == events
    finally:
        await _drop_database(name)

    missing = forum("restore", str(tmp_path / "nowhere.backup"), env=target)
    assert missing.returncode == 2 and "does not exist" in missing.stderr
    down = process_env(settings,
                       FORUM_DATABASE_URL=f"postgresql://postgres@127.0.0.1:{free_port()}/x")
    for command in (["backup", str(tmp_path / "x.backup")], ["restore", str(file)]):
        done = forum(*command, env=down)
        assert done.returncode == 1 and "cannot reach PostgreSQL" in done.stderr, done.stderr
        no_traceback(done)


async def _count_events(url: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM events"))
    finally:
        await conn.close()


async def _exists(name: str) -> bool:
    conn = await asyncpg.connect(PG_URL)
    try:
        return bool(await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name))
    finally:
        await conn.close()


async def test_every_table_of_the_schema_is_backed_up_or_deliberately_left_out(database_url):
    present = await tables(database_url)
    assert not set(TABLES) & set(SKIPPED)
    assert present - set(TABLES) - set(SKIPPED) == set(), (
        "a migration added a table: add it to events/backup.py TABLES (copied) or SKIPPED "
        "(left out, and why)")
    assert set(TABLES) | set(SKIPPED) <= present, "TABLES or SKIPPED names a table gone"


# -- raising the offset while appends are in flight ------------------------------------

async def restored_history(pool: asyncpg.Pool, count: int = 5) -> list[int]:
    """Events as a restore from a cluster further on leaves them: positions beyond this
    cluster's transaction counter (far enough that the cluster's own traffic during the
    test cannot catch up with them)."""
    thread = new_id()
    async with pool.acquire() as conn, conn.transaction():
        top = int(await conn.fetchval(
            "SELECT (pg_current_xact_id()::text)::bigint + 1000000"))
        positions = [(top << 20) | i for i in range(1, count + 1)]
        await conn.executemany(
            "INSERT INTO events (position, stream_id, version, type, data)"
            " VALUES ($1, $2, $3, 'post_added', $4::jsonb)",
            [(p, thread_stream(thread), i, encode(post_added(thread, i, body="restored")).decode())
             for i, p in enumerate(positions, 1)])
    return positions


async def test_raising_the_offset_waits_for_an_append_in_flight_and_no_reader_skips_one(
        store, pool, database_url):
    restored = await restored_history(pool)
    assert await store.ahead_of_cluster()
    seen: list[RecordedEvent] = []
    stop = asyncio.Event()

    async def reader() -> None:
        checkpoint = 0
        while True:
            batch = await store.read_all(checkpoint, 2)
            seen.extend(batch)
            if batch:
                checkpoint = batch[-1].position
            elif stop.is_set():
                newest = await pool.fetchval("SELECT max(position) FROM events")
                if checkpoint >= newest:
                    return
            await asyncio.sleep(0.005)

    reading = asyncio.create_task(reader())
    slow_thread, later_thread = new_id(), new_id()
    migrating = await asyncpg.connect(database_url)
    try:
        async with pool.acquire() as slow:
            tx = slow.transaction()
            await tx.start()
            slow_position = await PostgresEventStore(slow).append(
                thread_stream(slow_thread), 0, [post_added(slow_thread, 1, body="slow")])
            assert slow_position < restored[0]  # it read the old offset
            raising = asyncio.create_task(raise_offset(migrating))
            await asyncio.sleep(0.5)
            assert not raising.done(), "the raise did not wait for the append in flight"
            later = asyncio.create_task(store.append(
                thread_stream(later_thread), 0, [post_added(later_thread, 1, body="later")]))
            await asyncio.sleep(0.3)
            assert not later.done(), "an append went ahead while the offset was changing"
            # Readers are not held up meanwhile.
            await asyncio.wait_for(store.read_all(0, 1), 5)
            await tx.commit()
        offset = await asyncio.wait_for(raising, 10)
        later_position = await asyncio.wait_for(later, 10)
    finally:
        await migrating.close()
    assert offset is not None
    assert later_position > restored[-1]  # after the whole restored history
    stop.set()
    await asyncio.wait_for(reading, CATCH_UP_SECONDS)

    table = [r[0] for r in await pool.fetch("SELECT position FROM events ORDER BY position")]
    assert [r.position for r in seen] == table  # every event, once, in order
    assert table == [slow_position, *restored, later_position]
    assert not await store.ahead_of_cluster()
    again = await asyncpg.connect(database_url)
    try:
        assert await raise_offset(again) is None  # once is enough
    finally:
        await again.close()


async def test_a_raise_that_did_not_wait_for_appends_in_flight_would_lose_one(store, pool):
    """Why the raise takes its lock: an append that read the old offset commits behind
    what a reader has already read once the offset is up."""
    restored = await restored_history(pool)
    slow_thread = new_id()
    async with pool.acquire() as slow:
        tx = slow.transaction()
        await tx.start()
        try:
            slow_position = await PostgresEventStore(slow).append(
                thread_stream(slow_thread), 0, [post_added(slow_thread, 1, body="slow")])
            await pool.execute("UPDATE log_offset SET xid_offset = $1", restored[-1] >> 20)
            read = await store.read_all(0, 100)
            assert [r.position for r in read] == restored
        finally:
            await tx.commit()
    assert slow_position < read[-1].position
    assert await store.read_all(read[-1].position, 100) == []  # the slow event is lost


async def test_migrate_on_a_log_written_here_leaves_the_offset_alone(store, pool, database_url):
    thread = new_id()
    await store.append(thread_stream(thread), 0, [post_added(thread, 1)])
    assert not await store.ahead_of_cluster()
    assert (await migrate(database_url)).offset_raised_to is None
    assert await pool.fetchval("SELECT xid_offset FROM log_offset") == 0


async def test_a_backup_of_an_older_schema_is_restored_through_the_later_migrations(
        tmp_path: Path):
    """A backup taken before migration 0007 (password hashes still in the log) and 0008
    (no offset yet): the restore loads it into that schema, then runs the migrations the
    backup had not met, which move the hash out of the log as they would have in place."""
    old, new = (f"forum_test_old_{uuid.uuid4().hex[:8]}" for _ in range(2))
    name, password_hash = unique_name("old"), "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA"
    try:
        await migrate(_with_db(PG_URL, old), up_to=6)
        conn = await asyncpg.connect(_with_db(PG_URL, old))
        try:
            await conn.execute(
                "INSERT INTO events (position, stream_id, version, type, data)"
                " VALUES (((pg_current_xact_id()::text)::bigint << 20) | 1, $1, 1,"
                " 'member_registered', $2::jsonb)", member_stream(name), json.dumps({
                    "type": "member_registered", "occurred_at": "2011-06-08T12:00:00Z",
                    "actor": name, "name": name, "password_hash": password_hash,
                    "role": "member"}))
        finally:
            await conn.close()
        file = tmp_path / "old.backup"
        manifest = await backup(_with_db(PG_URL, old), file)
        assert manifest.schema_version == 6
        assert {"credentials", "log_offset"}.isdisjoint(t.name for t in manifest.tables)

        restored = await restore(_with_db(PG_URL, new), file)
        assert restored.migrated.applied == [v for v, _, _ in migrations() if v >= 7]
        conn = await asyncpg.connect(_with_db(PG_URL, new))
        try:
            assert await conn.fetchval("SELECT password_hash FROM credentials WHERE member = $1",
                                       member_stream(name)) == password_hash
            assert password_hash not in await conn.fetchval("SELECT data::text FROM events")
            assert await conn.fetchval("SELECT max(version) FROM schema_migrations") \
                == max(v for v, _, _ in migrations())
        finally:
            await conn.close()
    finally:
        await _drop_database(old)
        await _drop_database(new)
