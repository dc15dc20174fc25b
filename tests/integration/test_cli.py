"""The operator's console script, ``forum``, run as a real subprocess against real services."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from pathlib import Path

import asyncpg
import pytest
from redis.asyncio import Redis

from service.settings import Settings
from tests.conftest import (
    FORUM,
    PG_URL,
    ROOT,
    _drop_database,
    _with_db,
    free_port,
    process_env,
)
from workers.projections import PROJECTIONS


def forum(*args: str, env: dict[str, str], timeout: float = 60
          ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*FORUM, *args], env=env, cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


def no_traceback(done: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in done.stderr, done.stderr


async def _database_exists(name: str) -> bool:
    conn = await asyncpg.connect(PG_URL)
    try:
        return bool(await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name))
    finally:
        await conn.close()


async def _tables(url: str) -> set[str]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        return {r["tablename"] for r in rows}
    finally:
        await conn.close()


# -- migrate ----------------------------------------------------------------------------

async def test_migrate_twice_on_a_fresh_database_applies_everything_then_says_up_to_date(
    settings: Settings,
):
    name = f"forum_test_cli_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(PG_URL)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    try:
        url = _with_db(PG_URL, name)
        env = process_env(settings, FORUM_DATABASE_URL=url)
        first = forum("migrate", env=env)
        assert first.returncode == 0, first.stderr
        assert "applied migrations" in first.stdout
        assert "events" in await _tables(url)
        second = forum("migrate", env=env)
        assert second.returncode == 0, second.stderr
        assert "up to date" in second.stdout
        no_traceback(second)
    finally:
        await _drop_database(name)


async def test_migrate_creates_a_database_that_does_not_exist(settings: Settings):
    name = f"forum_test_cli_{uuid.uuid4().hex[:10]}"
    assert not await _database_exists(name)
    try:
        done = forum("migrate", env=process_env(settings,
                                                FORUM_DATABASE_URL=_with_db(PG_URL, name)))
        assert done.returncode == 0, done.stderr
        assert await _database_exists(name)
        assert {"events", "schema_migrations"} <= await _tables(_with_db(PG_URL, name))
    finally:
        await _drop_database(name)


def test_migrate_against_a_closed_port_fails_fast_with_a_clear_message(settings: Settings):
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/forum"
    started = time.monotonic()
    done = forum("migrate", env=process_env(settings, FORUM_DATABASE_URL=url), timeout=30)
    assert time.monotonic() - started < 15
    assert done.returncode != 0
    assert "PostgreSQL" in done.stderr, done.stderr
    no_traceback(done)


@pytest.mark.parametrize("command", [["status"], ["status", "--json"], ["replay"]])
@pytest.mark.parametrize("down", ["PostgreSQL", "Redis"])
def test_operator_commands_with_a_service_unreachable_fail_with_a_clear_message(
    settings: Settings, command: list[str], down: str,
):
    closed = free_port()
    variable, url = {
        "PostgreSQL": ("FORUM_DATABASE_URL", f"postgresql://postgres@127.0.0.1:{closed}/forum"),
        "Redis": ("FORUM_REDIS_URL", f"redis://127.0.0.1:{closed}/0"),
    }[down]
    started = time.monotonic()
    done = forum(*command, env=process_env(settings, **{variable: url}), timeout=30)
    assert time.monotonic() - started < 15
    assert done.returncode != 0
    assert f"cannot reach {down}" in done.stderr, done.stderr
    no_traceback(done)


def test_import_with_postgresql_unreachable_fails_with_a_clear_message(settings: Settings,
                                                                       tmp_path: Path):
    path = tmp_path / "board.jsonl"
    path.write_text("{}\n")
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/forum"
    done = forum("import", str(path), env=process_env(settings, FORUM_DATABASE_URL=url))
    assert done.returncode != 0
    assert "cannot reach PostgreSQL" in done.stderr, done.stderr
    no_traceback(done)


# -- status -----------------------------------------------------------------------------

async def test_status_json_shows_head_and_each_projections_position_lag_and_rebuilding(
    settings: Settings, client, project, redis: Redis,  # type: ignore[no-untyped-def]
):
    from tests.conftest import OPERATOR

    env = process_env(settings)
    # No read models yet: every projection is reported, with no position.
    done = forum("status", "--json", env=env)
    assert done.returncode == 0, done.stderr
    status = json.loads(done.stdout)
    assert status["head"] == 0
    assert set(status["projections"]) == {*PROJECTIONS, "search"}
    for row in status["projections"].values():
        assert row["position"] is None
        assert row["lag_events"] is None
        assert row["rebuilding"] is False

    r = await client.post("/api/forums", json={"slug": "cli", "title": "CLI"}, headers=OPERATOR)
    assert r.status_code == 201, r.text
    r = await client.post("/api/forums/cli/threads",
                          json={"title": "Status", "body": "hi", "guest_name": "ann"})
    assert r.status_code == 201, r.text
    await project()
    status = json.loads(forum("status", "--json", env=env).stdout)
    head = status["head"]
    assert isinstance(head, int) and head >= r.json()["position"]
    for name, row in status["projections"].items():
        assert {"position", "lag_events", "lag_seconds", "rebuilding"} <= set(row), name
        assert row["position"] == head
        assert row["lag_events"] == 0
        assert row["lag_seconds"] == 0
        assert row["rebuilding"] is False

    # Written but not projected: the lag shows, in events and in seconds.
    r = await client.post(f"/api/threads/{r.json()['thread_id']}/posts",
                          json={"body": "behind", "guest_name": "bob"})
    assert r.status_code == 201, r.text
    time.sleep(0.2)
    status = json.loads(forum("status", "--json", env=env).stdout)
    assert status["head"] > head
    for row in status["projections"].values():
        assert row["position"] == head
        assert row["lag_events"] >= 1
        assert row["lag_seconds"] > 0

    text = forum("status", env=env)
    assert text.returncode == 0, text.stderr
    for name in [*PROJECTIONS, "search"]:
        assert name in text.stdout


# -- bad input --------------------------------------------------------------------------

def test_import_of_a_missing_file_exits_2_with_a_clear_message(settings: Settings,
                                                                 tmp_path: Path):
    missing = tmp_path / "nowhere.jsonl"
    done = forum("import", str(missing), env=process_env(settings))
    assert done.returncode == 2
    assert "does not exist" in done.stderr and "nowhere.jsonl" in done.stderr
    no_traceback(done)


async def test_replay_of_an_unknown_projection_exits_non_zero_and_names_the_known_ones(
    settings: Settings, redis: Redis,
):
    done = forum("replay", "nonsense", env=process_env(settings))
    assert done.returncode != 0
    assert "nonsense" in done.stderr
    assert "thread_page" in done.stderr  # says what would have been valid
    no_traceback(done)
    assert [k async for k in redis.scan_iter(match=f"{settings.key_prefix}:*")] == []


def test_serve_with_a_port_that_is_not_a_number_exits_2(settings: Settings):
    done = forum("serve", "--port", "notanumber", env=process_env(settings))
    assert done.returncode == 2
    assert "--port" in done.stderr and "notanumber" in done.stderr
    no_traceback(done)


def test_worker_with_zero_processes_exits_2(settings: Settings):
    done = forum("worker", "--processes", "0", env=process_env(settings))
    assert done.returncode == 2
    assert "--processes" in done.stderr
    no_traceback(done)


@pytest.mark.parametrize("jobs", ["0", "-3", "two", "1e9", ""])
def test_replay_with_a_bad_jobs_count_exits_2_and_names_the_option(settings: Settings,
                                                                     jobs: str):
    done = forum("replay", "--jobs", jobs, env=process_env(settings))
    assert done.returncode == 2
    assert "--jobs" in done.stderr
    no_traceback(done)


def test_an_unknown_command_exits_2_and_lists_the_commands(settings: Settings):
    done = forum("frobnicate", env=process_env(settings))
    assert done.returncode == 2
    assert "frobnicate" in done.stderr
    listed = forum("--help", env=process_env(settings))
    assert listed.returncode == 0
    for command in ("migrate", "serve", "worker", "replay", "status", "import", "dev"):
        assert command in listed.stdout
