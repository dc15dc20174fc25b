"""``forum dev``: the whole board on one machine.

Starts PostgreSQL and Redis from installed binaries into ``.forum-data/`` when none
answers, migrates, loads the demo data once, then runs the API and a worker until Ctrl-C.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import msgspec

from events.migrate import migrate
from service import demo
from service.devservices import ensure_postgres, ensure_redis, stop
from service.settings import Settings


async def _load_demo(settings: Settings) -> str:
    from events.postgres import PostgresEventStore, create_pool

    pool = await create_pool(settings.database_url, min_size=1, max_size=2)
    try:
        store = PostgresEventStore(pool)
        report = await demo.load(store)
    finally:
        await pool.close()
    return f"demo data: {report.imported} threads loaded, {report.skipped} already there"


def run(settings: Settings, data_dir: Path | None = None) -> None:
    data_dir = data_dir or Path.cwd() / ".forum-data"
    data_dir.mkdir(parents=True, exist_ok=True)
    started = [ensure_postgres(settings.database_url, data_dir),
               ensure_redis(settings.redis_url, data_dir)]
    if settings.operator_token is None:
        settings = msgspec.structs.replace(settings, operator_token=secrets.token_urlsafe(16))
    children: list[subprocess.Popen[bytes]] = []
    try:
        applied = asyncio.run(migrate(settings.database_url)).applied
        print(f"schema: {'applied ' + str(applied) if applied else 'up to date'}", flush=True)
        print(asyncio.run(_load_demo(settings)), flush=True)
        env = {**os.environ, "FORUM_DATABASE_URL": settings.database_url,
               "FORUM_REDIS_URL": settings.redis_url, "FORUM_BROKER_URL": settings.broker_url,
               "FORUM_OPERATOR_TOKEN": settings.operator_token or "",
               "FORUM_KEY_PREFIX": settings.key_prefix, "FORUM_PORT": str(settings.port)}
        forum = [sys.executable, "-m", "service"]
        children.append(subprocess.Popen([*forum, "worker"], env=env))
        children.append(subprocess.Popen([*forum, "serve"], env=env))
        url = f"http://{settings.host}:{settings.port}"
        print(f"\nforum is running at {url}/  (API: {url}/api/forums, "
              f"operator token: {settings.operator_token})\nCtrl-C stops everything.\n",
              flush=True)
        signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
        while all(child.poll() is None for child in children):
            time.sleep(0.5)
        failed = [c.args for c in children if c.poll() not in (None, 0)]
        if failed:
            raise SystemExit(f"a child exited: {failed}")
    except KeyboardInterrupt:
        pass
    finally:
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in children:
            try:
                child.wait(timeout=20)
            except subprocess.TimeoutExpired:
                child.kill()
        for proc in started:
            stop(proc)
