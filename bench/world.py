"""The world a benchmark runs in (plain scripts, not tests): its database, key prefix and
processes, and the data it seeds. What it measures with is in ``measure.py``, how it loads
the service in ``http_load.py``.

Everything a benchmark touches is its own and is removed at the end, also on Ctrl-C or
SIGTERM: a fresh database ``forum_bench_*`` on the shared PostgreSQL (dropped), a Redis key
prefix ``forumbench-*`` (only those keys are deleted: never FLUSHALL/FLUSHDB), and the
real ``python -m service serve`` / ``python -m service worker`` processes it started
(stopped by process group id).

Environment: ``FORUM_BENCH_PG_URL`` (an admin database URL, default
postgresql://postgres@127.0.0.1:5432/postgres) and ``FORUM_BENCH_REDIS_URL``
(default redis://127.0.0.1:6379/0).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
from redis.asyncio import Redis

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python bench/x.py` puts bench/ first, not the project
    sys.path.insert(0, str(ROOT))

from events.migrate import migrate  # noqa: E402
from service.settings import Settings  # noqa: E402
from workers.rebuild import unlink_matching  # noqa: E402

PG_ADMIN_URL = os.environ.get(
    "FORUM_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("FORUM_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
OPERATOR_TOKEN = "bench-operator-" + uuid.uuid4().hex[:12]
OPERATOR = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
PYTHON = sys.executable


# A generated board's SQL (bench/replay.py, bench/redis_memory.py).
REPLY = """'Reply ' || n || E' in thread ' || t || E'.\\nI think the point about '
                   || 'the empire is right, but the sources say otherwise in chapter ' || n"""


def generated_log(body: str = REPLY, columns: str = "") -> str:
    """The SQL that writes a board of ``$1`` threads of ``$2`` posts straight into the log
    (positions past 1,000; the sections are ``SECTIONS``'s): per thread ThreadStarted,
    PostAdded #1, then per reply PostAdded (+ PostQuoted every 5th) + ThreadBumped.
    ``body``: each post's body, an SQL expression of the columns of ``posts`` (``t``,
    ``n``, ``forum``, ``at``, ``author`` and any ``columns`` added, each as
    ``,\n expression AS name``)."""
    return f"""
WITH threads AS (
    SELECT t, 'f' || (t % 8) AS forum,
           timestamptz '2011-01-01' + (t * interval '37 minutes') AS started
    FROM generate_series(1, $1::int) t
), posts AS (
    SELECT th.t, th.forum, th.started, n,
           th.started + n * interval '3 minutes' AS at,
           'user' || ((th.t * 7 + n * 13) % 5000) AS author{columns}
    FROM threads th, generate_series(1, $2::int) n
), rows AS (
    SELECT t, 0 AS n, 0 AS k, 'thread-' || t AS stream, 'thread_started' AS type,
           jsonb_build_object('type', 'thread_started', 'occurred_at', started,
               'actor', 'user' || ((t * 7 + 13) % 5000), 'thread_id', t, 'forum', forum,
               'title', 'Thread number ' || t, 'author', 'user' || ((t * 7 + 13) % 5000),
               'guest', true) AS data
    FROM threads
    UNION ALL
    SELECT t, n, 1, 'thread-' || t, 'post_added',
           jsonb_build_object('type', 'post_added', 'occurred_at', at, 'actor', author,
               'thread_id', t, 'forum', forum, 'post_id', t * 100 + n, 'number', n,
               'author', author, 'guest', true, 'op', n = 1, 'first_reply', n = 2,
               'body', {body},
               'quotes', CASE WHEN n % 5 = 0 THEN jsonb_build_array(jsonb_build_object(
                   'post_id', t * 100 + 1, 'number', 1, 'author', 'x')) ELSE '[]' END)
    FROM posts
    UNION ALL
    SELECT t, n, 2, 'thread-' || t, 'post_quoted',
           jsonb_build_object('type', 'post_quoted', 'occurred_at', at, 'actor', author,
               'thread_id', t, 'post_id', t * 100 + n, 'quoted_post_id', t * 100 + 1,
               'quoted_number', 1, 'quoted_author', 'x')
    FROM posts WHERE n % 5 = 0
    UNION ALL
    SELECT t, n, 3, 'thread-' || t, 'thread_bumped',
           jsonb_build_object('type', 'thread_bumped', 'occurred_at', at, 'actor', author,
               'thread_id', t, 'forum', forum, 'reason', 'reply')
    FROM posts WHERE n > 1
)
INSERT INTO events (position, stream_id, version, type, data)
SELECT row_number() OVER (ORDER BY t, n, k) + 1000, stream,
       row_number() OVER (PARTITION BY t ORDER BY n, k), type, data
FROM rows
"""


SECTIONS = """
INSERT INTO events (position, stream_id, version, type, data)
SELECT f + 1, 'forum-f' || f, 1, 'forum_created',
       jsonb_build_object('type', 'forum_created', 'occurred_at', timestamptz '2010-01-01',
                          'actor', 'operator', 'slug', 'f' || f, 'title', 'Section ' || f)
FROM generate_series(0, 7) f
"""


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


def with_db(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- database and Redis -------------------------------------------------------------------

async def create_database() -> str:
    """A fresh, migrated database ``forum_bench_*``; returns its name."""
    name = unique("forum_bench_")
    await migrate(with_db(PG_ADMIN_URL, name))  # creates the database, then migrates it
    return name


async def drop_database(name: str) -> None:
    assert name.startswith("forum_bench_"), name
    conn = await asyncpg.connect(PG_ADMIN_URL)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def drop_keys(prefix: str) -> int:
    """Delete the keys of this prefix (read models and its Dramatiq namespace) only."""
    assert prefix.startswith("forumbench-"), prefix
    redis = Redis.from_url(REDIS_URL)
    dropped = 0
    try:
        for pattern in (f"{prefix}:*", f"{prefix}-dramatiq:*"):
            dropped += await unlink_matching(redis, pattern)
    finally:
        await redis.aclose()
    return dropped


async def postmaster_pid() -> int | None:
    """The shared PostgreSQL server's main process, to count its backends' CPU."""
    conn = await asyncpg.connect(PG_ADMIN_URL)
    try:
        folder = await conn.fetchval("SHOW data_directory")
    finally:
        await conn.close()
    try:
        return int((Path(folder) / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


# -- processes ----------------------------------------------------------------------------

class Proc:
    """A child process in its own process group, logging to a file."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], logdir: Path) -> None:
        self.name = name
        self.argv = argv
        self.log_path = logdir / f"{name}.log"
        with open(self.log_path, "ab") as out:
            self.popen = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=out,
                                          stderr=subprocess.STDOUT, start_new_session=True)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.popen.poll() is not None:
            return
        try:
            os.killpg(self.popen.pid, signal.SIGTERM)
            self.popen.wait(timeout=20)
        except (subprocess.TimeoutExpired, ProcessLookupError):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout=5)


async def wait_http(proc: Proc, url: str, timeout: float = 40.0) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=1.0) as client:
        while time.monotonic() < deadline:
            if not proc.alive():
                break
            try:
                if (await client.get(url)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{proc.name} did not answer {url}:\n{proc.log_tail()}")


@dataclass
class Env:
    """One benchmark's world: its database, key prefix, processes and log folder."""

    database: str
    prefix: str
    logdir: Path
    procs: list[Proc] = field(default_factory=list)

    @property
    def database_url(self) -> str:
        return with_db(PG_ADMIN_URL, self.database)

    def settings(self, **overrides: object) -> Settings:
        values: dict[str, object] = {
            "database_url": self.database_url, "redis_url": REDIS_URL, "broker_url": "",
            "operator_token": OPERATOR_TOKEN, "key_prefix": self.prefix,
            "log_level": "WARNING",
            "hold": "off",  # benchmarks measure publishing, not the review queue
        }
        values.update(overrides)
        return Settings(**values)  # type: ignore[arg-type]

    def process_env(self, **overrides: object) -> dict[str, str]:
        settings = self.settings(**overrides)
        env = {k: v for k, v in os.environ.items() if not k.startswith("FORUM_")}
        for name in settings.__struct_fields__:
            value = getattr(settings, name)
            if value is not None:
                env[f"FORUM_{name.upper()}"] = str(value)
        env["PYTHONUNBUFFERED"] = "1"
        env["PYTHONPATH"] = str(ROOT)
        return env

    async def start_api(self, workers: int = 1, port: int | None = None,
                        **overrides: object) -> tuple[Proc, str]:
        """``forum serve --workers N`` (``python -m service serve``); waits for /health."""
        port = port or free_port()
        proc = Proc(f"api-{port}", [PYTHON, "-m", "service", "serve", "--workers",
                                    str(workers), "--port", str(port)],
                    self.process_env(port=port, **overrides), self.logdir)
        self.procs.append(proc)
        url = f"http://127.0.0.1:{port}"
        await wait_http(proc, f"{url}/health")
        if workers > 1:  # every uvicorn child must be up, not just the first
            await asyncio.sleep(1.0)
        return proc, url

    def start_worker(self, processes: int = 1, threads: int = 2, **overrides: object) -> Proc:
        """``forum worker`` (``python -m service worker``)."""
        proc = Proc(f"worker-{len(self.procs)}", [PYTHON, "-m", "service", "worker",
                                                  "--processes", str(processes),
                                                  "--threads", str(threads)],
                    self.process_env(**overrides), self.logdir)
        self.procs.append(proc)
        return proc

    async def start_baseline(self, pages_dir: Path, workers: int = 1) -> tuple[Proc, str]:
        """bench/baseline_app.py under uvicorn, run exactly as ``forum serve`` runs the app
        (same loop, same HTTP parser, same worker count, no access log)."""
        port = free_port()
        env = self.process_env()
        env["BENCH_PAGES_DIR"] = str(pages_dir)
        proc = Proc(f"baseline-{port}", [
            PYTHON, "-m", "uvicorn", "bench.baseline_app:create_app", "--factory",
            "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
            "--loop", "auto", "--http", "auto", "--log-level", "warning", "--no-access-log",
            "--proxy-headers",
        ], env, self.logdir)
        self.procs.append(proc)
        url = f"http://127.0.0.1:{port}"
        await wait_http(proc, f"{url}/health")
        if workers > 1:
            await asyncio.sleep(1.0)
        return proc, url

    def stop(self, proc: Proc) -> None:
        proc.stop()
        if proc in self.procs:
            self.procs.remove(proc)


def _raise_on_sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@asynccontextmanager
async def bench_env() -> AsyncIterator[Env]:
    """A fresh database and key prefix; everything is removed on the way out."""
    signal.signal(signal.SIGTERM, _raise_on_sigterm)
    logdir = Path(tempfile.mkdtemp(prefix="forumbench-logs-"))
    database = await create_database()
    env = Env(database=database, prefix=unique("forumbench-"), logdir=logdir)
    log(f"database {database}, redis prefix {env.prefix}, logs in {logdir}")
    ok = False
    try:
        yield env
        ok = True
    finally:
        for proc in reversed(env.procs):
            proc.stop()
        dropped = await drop_keys(env.prefix)
        await drop_database(database)
        log(f"cleaned up: dropped database {database} and {dropped} Redis keys")
        if ok:
            shutil.rmtree(logdir, ignore_errors=True)
        else:
            log(f"logs kept in {logdir}")


# -- seeding through the domain (the same events the service appends) ---------------------

async def seed_forum(store: object, slug: str, title: str) -> None:
    from events.records import forum_stream
    from service.domain.actors import OPERATOR as OPERATOR_ACTOR
    from service.domain.sections import create_forum

    new = create_forum([], slug=slug, title=title, actor=OPERATOR_ACTOR, now=datetime.now(UTC))
    await store.append(forum_stream(slug), 0, new)  # type: ignore[attr-defined]


async def seed_thread(store: object, forum: str, replies: int, *, guest: str = "seeder",
                      body: str = "") -> int:
    """A thread with ``replies`` replies, appended one reply per append as the service
    does; returns the thread id."""
    from events.records import thread_stream
    from service.domain import threads
    from service.domain.actors import Actor

    actor = Actor(guest, "guest")
    thread_id = (await store.next_ids("thread"))[0]  # type: ignore[attr-defined]
    post_ids = await store.next_ids("post", replies + 1)  # type: ignore[attr-defined]
    text = body or "A benchmark post with [b]some[/b] markup and a few words of text. " * 3
    new = threads.start_thread(thread_id=thread_id, post_id=post_ids[0], forum=forum,
                               title=f"Bench thread {thread_id}", body=text, actor=actor,
                               now=datetime.now(UTC))
    stream = thread_stream(thread_id)
    version = 0
    await store.append(stream, version, new)  # type: ignore[attr-defined]
    version += len(new)
    state = threads.fold(new)
    for i in range(replies):
        who = Actor(f"{guest}{i % 7}", "guest")
        new = threads.post_reply(state, post_id=post_ids[i + 1], body=f"{text} #{i}",
                                 actor=who, now=datetime.now(UTC))
        await store.append(stream, version, new)  # type: ignore[attr-defined]
        version += len(new)
        for event in new:
            state = threads.evolve(state, event)
    return thread_id


async def project_all(env: Env, *, timeout: float = 120.0) -> None:
    """Bring every read model up to the log's head in-process (``Live.tick()``)."""
    from events.postgres import PostgresEventStore, create_pool
    from workers.checkpoints import positions
    from workers.live import Live
    from workers.projections import PROJECTIONS
    from workers.readmodels import Keys

    pool = await create_pool(env.database_url, min_size=1, max_size=4)
    redis = Redis.from_url(REDIS_URL)
    try:
        live = Live(PostgresEventStore(pool), redis, Keys(env.prefix))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            await live.tick()
            head = await live.store.head()
            done = await positions(redis, live.keys, list(PROJECTIONS))
            building = await redis.keys(f"{env.prefix}:building:*")
            if not building and all(p is not None and p >= head for p in done.values()):
                return
        raise RuntimeError("projections did not catch up")
    finally:
        await redis.aclose()
        await pool.close()
