"""Fixtures: real PostgreSQL and Redis, each test in its own database and key prefix.

PostgreSQL and Redis are shared with other users of this machine: tests create databases
named ``forum_test_*`` and drop only those, and touch only Redis keys under their own
prefix. Nothing here ever flushes a whole Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import pytest
import pytest_asyncio
from redis.asyncio import Redis

from events.migrate import migrate
from events.postgres import PostgresEventStore, create_pool
from service.settings import Settings
from workers.live import Live
from workers.readmodels import Keys
from workers.search.follow import Search

ROOT = Path(__file__).resolve().parent.parent
PG_URL = os.environ.get("FORUM_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("FORUM_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
OPERATOR_TOKEN = "test-operator-token"


def _with_db(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


def unique(prefix: str = "t") -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="session")
def template_database() -> Iterator[str]:
    """One migrated database per session, cloned for every test."""
    name = unique("forum_test_tpl_")
    url = _with_db(PG_URL, name)
    asyncio.run(migrate(url))
    yield name

    async def drop() -> None:
        conn = await asyncpg.connect(PG_URL)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    asyncio.run(drop())


async def _create_database(template: str) -> str:
    name = unique("forum_test_")
    conn = await asyncpg.connect(PG_URL)
    try:
        for _ in range(20):  # the template must have no other session while it is copied
            try:
                await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
                break
            except asyncpg.ObjectInUseError:
                await asyncio.sleep(0.1)
    finally:
        await conn.close()
    return name


async def _drop_database(name: str) -> None:
    conn = await asyncpg.connect(PG_URL)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def _drop_keys(prefix: str) -> None:
    from workers.rebuild import unlink_matching

    redis = Redis.from_url(REDIS_URL)
    try:
        for pattern in (f"{prefix}:*", f"{prefix}-dramatiq:*"):
            await unlink_matching(redis, pattern)
    finally:
        await redis.aclose()


@pytest_asyncio.fixture
async def database_url(template_database: str) -> AsyncIterator[str]:
    """A fresh, migrated database of this test's own."""
    name = await _create_database(template_database)
    yield _with_db(PG_URL, name)
    await _drop_database(name)


@pytest_asyncio.fixture
async def key_prefix() -> AsyncIterator[str]:
    prefix = unique("forumtest-")
    yield prefix
    await _drop_keys(prefix)


@pytest.fixture
def settings(database_url: str, key_prefix: str) -> Settings:
    """In-process settings: no broker (tests drive projection with ``project``)."""
    return Settings(
        database_url=database_url, redis_url=REDIS_URL, broker_url="none",
        operator_token=OPERATOR_TOKEN, key_prefix=key_prefix, min_position_wait=2.0,
        page_cache_ms=0,  # tests read right after projecting; the cache has its own test
        rate_limits="off",  # tests write in bursts; tests of the limits turn them on
    )


@pytest_asyncio.fixture
async def pool(settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(settings.database_url, min_size=1, max_size=40)
    yield pool
    await pool.close()


@pytest.fixture
def store(pool: asyncpg.Pool) -> PostgresEventStore:
    return PostgresEventStore(pool)


@pytest_asyncio.fixture
async def redis(settings: Settings) -> AsyncIterator[Redis]:
    client = Redis.from_url(settings.redis_url)
    yield client
    await client.aclose()


@pytest.fixture
def keys(settings: Settings) -> Keys:
    return Keys(settings.key_prefix)


@pytest.fixture
def live(store: PostgresEventStore, redis: Redis, keys: Keys) -> Live:
    return Live(store, redis, keys)


@pytest.fixture
def search(store: PostgresEventStore, pool: asyncpg.Pool) -> Search:
    return Search(store, pool)


@pytest.fixture
def project(live: Live, search: Search, pool: asyncpg.Pool):  # type: ignore[no-untyped-def]
    """Bring every read model, and the search model, up to the newest committed event, as
    a worker would.

    The target is the table's highest position, not the store's visible head: on a shared
    cluster another session's long write transaction holds the visible head back (the
    price of gap safety), and "caught up with what is visible" would end too early."""
    from workers.checkpoints import positions
    from workers.projections import PROJECTIONS
    from workers.search.sink import models

    async def run(timeout: float = 60.0) -> None:
        target = int(await pool.fetchval("SELECT coalesce(max(position), 0) FROM events"))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            await asyncio.gather(live.tick(), search.tick())
            done = await positions(live.redis, live.keys, list(PROJECTIONS))
            building = await live.redis.keys(f"{live.keys.prefix}:building:*")
            searching, search_build = await models(pool)
            done["search"] = searching.checkpoint if searching else None
            if not building and search_build is None and all(
                    p is not None and p >= target for p in done.values()):
                return
            await asyncio.sleep(0.02)
        raise AssertionError(f"projections did not reach {target}: {done}")

    return run


@pytest_asyncio.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The app in-process (real PostgreSQL and Redis, no broker)."""
    from litestar.testing import AsyncTestClient

    from service.app import create_app

    async with AsyncTestClient(app=create_app(settings)) as test_client:
        yield test_client


OPERATOR = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}


# -- real processes -------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def process_env(settings: Settings, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FORUM_")}
    env.update({
        "FORUM_DATABASE_URL": settings.database_url,
        "FORUM_REDIS_URL": settings.redis_url,
        "FORUM_REDIS_CLUSTER": "true" if settings.redis_cluster else "false",
        "FORUM_BROKER_URL": settings.broker_url if settings.broker_url != "none" else "",
        "FORUM_OPERATOR_TOKEN": settings.operator_token or "",
        "FORUM_KEY_PREFIX": settings.key_prefix,
        "FORUM_PORT": str(settings.port),
        "FORUM_PER_PAGE": str(settings.per_page),
        "FORUM_PAGE_CACHE_MS": str(settings.page_cache_ms),
        "FORUM_RATE_LIMITS": settings.rate_limits,
        "FORUM_TRUSTED_PROXIES": settings.trusted_proxies,
        "FORUM_READY_MAX_LAG": str(settings.ready_max_lag),
        "FORUM_THREAD_CACHE_BYTES": str(settings.thread_cache_bytes),
        "FORUM_THREAD_SNAPSHOT_EVERY": str(settings.thread_snapshot_every),
        "PYTHONUNBUFFERED": "1",
    })
    env.update({f"FORUM_{name.upper()}": getattr(settings, name)
                for name in settings.__struct_fields__ if name.startswith("limit_")})
    env.update(extra)
    return env


FORUM = [sys.executable, "-m", "service"]


class Stack:
    """Real ``forum serve`` and ``forum worker`` processes for end-to-end tests."""

    def __init__(self, settings: Settings, tmp: Path) -> None:
        self.settings = settings
        self.tmp = tmp
        self.api: subprocess.Popen[bytes] | None = None
        self.worker: subprocess.Popen[bytes] | None = None
        self.url = f"http://127.0.0.1:{settings.port}"

    def env(self) -> dict[str, str]:
        return process_env(self.settings)

    def start_api(self) -> None:
        log = open(self.tmp / "api.log", "ab")  # noqa: SIM115
        self.api = subprocess.Popen([*FORUM, "serve"], env=self.env(), cwd=ROOT, stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if self.api.poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError("forum serve did not start:\n" + (self.tmp / "api.log").read_text())

    def start_worker(self, processes: int = 1, threads: int = 2) -> subprocess.Popen[bytes]:
        log = open(self.tmp / "worker.log", "ab")  # noqa: SIM115
        self.worker = subprocess.Popen(
            [*FORUM, "worker", "--processes", str(processes), "--threads", str(threads)],
            env=self.env(), cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self.worker

    @staticmethod
    def _stop(proc: subprocess.Popen[bytes] | None) -> None:
        if proc is None or proc.poll() is not None:
            return
        try:
            # SIGTERM to the leader only: Dramatiq's main process forwards it to its
            # children, and a second SIGTERM would make them abandon a clean shutdown.
            proc.send_signal(15)
            proc.wait(timeout=15)
        except (subprocess.TimeoutExpired, ProcessLookupError):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, 9)
            proc.wait(timeout=5)

    def stop_worker(self) -> None:
        self._stop(self.worker)

    def stop(self) -> None:
        self._stop(self.api)
        self._stop(self.worker)


@pytest.fixture
def stack_settings(database_url: str, key_prefix: str) -> Settings:
    return Settings(
        database_url=database_url, redis_url=REDIS_URL, broker_url="",
        operator_token=OPERATOR_TOKEN, key_prefix=key_prefix, port=free_port(),
        page_cache_ms=0, rate_limits="off",
    )


@pytest.fixture
def stack(stack_settings: Settings, tmp_path: Path) -> Iterator[Stack]:
    """API and worker as real processes (Redis broker under the test's own prefix)."""
    running = Stack(stack_settings, tmp_path)
    running.start_api()
    running.start_worker()
    yield running
    running.stop()
