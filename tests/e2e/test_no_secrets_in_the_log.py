"""No secrets in the log (API.md, "Data rights and backups"): password hashes live in the
``credentials`` table and session tokens only as digests in ``sessions``; no event holds
either, neither for members registered now nor, after ``forum migrate``, for members
registered by the code that still wrote the hash into member_registered."""

from __future__ import annotations

import json
from collections.abc import Iterable

import asyncpg
import httpx
import msgspec
from argon2 import PasswordHasher
from litestar.testing import AsyncTestClient

from events.members import MemberRegistered
from events.postgres import PostgresEventStore
from events.records import member_stream
from service.app import create_app
from service.settings import Settings
from tests.builders import NOW, unique_name, unique_slug
from tests.conftest import OPERATOR, process_env
from tests.integration.test_cli import forum, no_traceback

PASSWORD = "correct horse battery"


async def every_event(pool: asyncpg.Pool) -> list[str]:
    """Every row of the log, its data and its metadata, as the text PostgreSQL holds."""
    rows = await pool.fetch("SELECT data::text, metadata::text FROM events ORDER BY position")
    return [f"{row[0]}\n{row[1]}" for row in rows]


def secret_forms(password_hash: str) -> list[str]:
    """A hash whole and its salt-and-digest tail: found however a payload spelled it."""
    return [password_hash, password_hash.rsplit("$", 1)[-1]]


def assert_none_in(log: Iterable[str], secrets: Iterable[str]) -> None:
    log = list(log)
    assert log, "the log is empty: nothing was scanned"
    for secret in secrets:
        found = [row for row in log if secret in row]
        assert not found, f"{secret!r} is in the log: {found[0]}"


async def sign_in(client: httpx.AsyncClient, name: str, password: str = PASSWORD) -> str:
    r = await client.post("/api/sessions", json={"name": name, "password": password})
    assert r.status_code == 200, r.text
    return str(r.json()["token"])


async def test_no_password_hash_or_session_token_is_in_any_event(client, pool):
    names = [unique_name("ann"), unique_name("bob")]
    for name in names:
        r = await client.post("/api/users", json={"name": name, "password": PASSWORD},
                              headers={"Idempotency-Key": unique_name("k")})
        assert r.status_code == 201, r.text
    tokens = [await sign_in(client, name) for name in names]
    tokens.append(await sign_in(client, names[0]))  # a second session of the same member
    r = await client.put(f"/api/users/{names[1]}/role", json={"role": "moderator"},
                         headers=OPERATOR)
    assert r.status_code == 200, r.text
    slug = unique_slug()
    r = await client.post("/api/forums", json={"slug": slug, "title": "S"}, headers=OPERATOR)
    assert r.status_code == 201, r.text
    r = await client.post(f"/api/forums/{slug}/threads", json={"title": "T", "body": "b"},
                          headers={"Authorization": f"Bearer {tokens[0]}"})
    assert r.status_code == 201, r.text
    r = await client.post(f"/api/forums/{slug}/threads",
                          json={"title": "T", "body": "b", "guest_name": unique_name("gus")})
    assert r.status_code == 201, r.text
    tokens.append(r.json()["guest_token"])  # a guest's secret stays out of the log too
    r = await client.delete("/api/sessions", headers={"Authorization": f"Bearer {tokens[1]}"})
    assert r.status_code == 204, r.text

    hashes = {r[0]: r[1] for r in await pool.fetch(
        "SELECT member, password_hash FROM credentials")}
    assert set(hashes) == {member_stream(n) for n in names}
    for password_hash in hashes.values():
        assert PasswordHasher().verify(password_hash, PASSWORD)  # the real credentials
    log = await every_event(pool)
    assert any('"member_registered"' in row for row in log)
    assert_none_in(log, [PASSWORD, *tokens,
                         *(f for h in hashes.values() for f in secret_forms(h))])
    # Neither do the sessions: only their digests are stored, and those not in the log.
    digests = [bytes(r[0]).hex() for r in await pool.fetch("SELECT token_hash FROM sessions")]
    assert len(digests) == 3
    assert_none_in(log, digests)


async def make_the_log_old(pool: asyncpg.Pool, name: str, password_hash: str) -> None:
    """The database as the code before migration 0007 left it: no credentials table, and
    a member_registered event carrying the hash, as that code wrote it."""
    await pool.execute("DROP TABLE credentials")
    await pool.execute("DELETE FROM schema_migrations WHERE version = 7")
    old_event = {"type": "member_registered", "occurred_at": NOW.isoformat(), "actor": name,
                 "name": name, "password_hash": password_hash, "role": "member"}
    await pool.execute(
        "INSERT INTO events (position, stream_id, version, type, data)"
        " VALUES (((pg_current_xact_id()::text)::bigint << 20) | 1, $1, 1,"
        " 'member_registered', $2::jsonb)",
        member_stream(name), json.dumps(old_event))


async def test_forum_migrate_moves_old_hashes_out_of_the_log_and_sign_in_still_works(
        pool, settings: Settings, project):
    name = unique_name("old")
    password_hash = PasswordHasher(time_cost=2, memory_cost=19 * 1024,
                                   parallelism=1).hash(PASSWORD)
    await make_the_log_old(pool, name, password_hash)
    old_log = await every_event(pool)
    assert any(password_hash in row for row in old_log)  # the test's premise

    # New code meeting the old event before the migration (a rolling deploy, an old
    # backup): it decodes, and the hash is not carried into the decoded event.
    store = PostgresEventStore(pool)
    (record,) = await store.read_stream(member_stream(name))
    assert record.event == MemberRegistered(occurred_at=NOW, actor=name, name=name)
    assert "password_hash" not in msgspec.json.decode(msgspec.json.encode(record.event))

    done = forum("migrate", env=process_env(settings))
    assert done.returncode == 0, done.stderr
    no_traceback(done)
    assert "applied migrations [7]" in done.stdout, done.stdout

    migrated = await every_event(pool)
    assert_none_in(migrated, secret_forms(password_hash))
    assert migrated == [row.replace(f', "password_hash": "{password_hash}"', "")
                        for row in old_log]  # only the field went
    assert await store.password_hash(member_stream(name)) == password_hash
    again = forum("migrate", env=process_env(settings))
    assert again.returncode == 0 and "up to date" in again.stdout, again.stdout

    async with AsyncTestClient(app=create_app(settings)) as client:
        await sign_in(client, name)  # the old password still signs in
        r = await client.post("/api/sessions", json={"name": name, "password": "not it!!"})
        assert r.status_code == 401, r.text
        # The log replays: every event decodes, and the projections fold the member.
        await project()
        assert [e for _, e in await store.read_feed(0, 100)] == [record.event]
        r = await client.get(f"/api/users/{name}")
        assert r.status_code == 200, r.text
        assert r.json()["name"] == name
    assert_none_in(await every_event(pool), [*secret_forms(password_hash), PASSWORD])


async def test_a_registrations_stored_fingerprint_cannot_be_checked_against_a_password(
        client, pool):
    """The idempotency table keeps a fingerprint of each keyed request, the body with the
    password included: keyed with a server secret, not a plain digest anyone could
    recompute for a guessed password."""
    import hashlib

    name, key = unique_name("fin"), unique_name("k")
    body = msgspec.json.encode({"name": name, "password": PASSWORD})
    r = await client.post("/api/users", content=body, headers={
        "Idempotency-Key": key, "content-type": "application/json"})
    assert r.status_code == 201, r.text
    stored = await pool.fetchval("SELECT fingerprint FROM idempotency WHERE key = $1", key)
    plain = hashlib.sha256()
    for part in ("POST", "/api/users", "", body):
        plain.update(part.encode() if isinstance(part, str) else part)
        plain.update(b"\0")
    assert stored and stored != plain.hexdigest()
    r = await client.post("/api/users", content=body, headers={
        "Idempotency-Key": key, "content-type": "application/json"})
    assert r.status_code == 201, r.text  # and a replay is still recognised
