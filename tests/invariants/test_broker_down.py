"""Invariant 5, broker down: writes still succeed, and the workers' periodic catch-up
projects what no nudge announced. The broker is a Redis server of the test's own (the read
models stay on the shared Redis), killed and restarted on the same port."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
import msgspec
import pytest
import redis as sync_redis

from tests.background import open_thread
from tests.conftest import Stack, free_port
from tests.readmodel_dump import assert_equals_rebuild, last_written
from workers.checkpoints import positions
from workers.readmodels import PROJECTION_NAMES

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


class BrokerServer:
    """A throw-away ``redis-server`` with no persistence."""

    def __init__(self, port: int, tmp: Path) -> None:
        self.port = port
        self.tmp = tmp
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        log = open(self.tmp / f"broker-{self.port}.log", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.tmp)],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 10
        while True:
            try:
                if sync_redis.Redis(port=self.port, socket_timeout=0.5).ping():
                    return
            except sync_redis.RedisError:
                pass
            assert self.proc.poll() is None, (self.tmp / f"broker-{self.port}.log").read_text()
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)


@pytest.fixture
def broker(tmp_path):
    server = BrokerServer(free_port(), tmp_path)
    server.start()
    yield server
    server.kill()


@pytest.fixture
def stack_down(stack_settings, broker, tmp_path):
    settings = msgspec.structs.replace(stack_settings, broker_url=broker.url)
    running = Stack(settings, tmp_path)
    try:
        running.start_api()
        running.start_worker()
        yield running
    finally:
        # SIGTERM to Dramatiq's main process only; it stops its child.
        if running.worker is not None and running.worker.poll() is None:
            os.kill(running.worker.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                running.worker.wait(timeout=20)
        running.stop()


async def read_at(http: httpx.AsyncClient, path: str, position: int) -> httpx.Response:
    """A read that waits for ``position``, retried after Retry-After as a client would (the
    shared PostgreSQL may hold the log's read horizon back for a moment)."""
    for _ in range(5):
        r = await http.get(path, headers={"X-Min-Position": str(position)})
        if r.status_code != 503:
            break
        await asyncio.sleep(float(r.headers["Retry-After"]))
    assert r.status_code == 200, r.text
    return r


async def test_writes_succeed_and_get_projected_while_the_broker_is_down(
        stack_down, broker, store, redis, keys):
    stack = stack_down
    written: list[dict] = []

    async def reply(http: httpx.AsyncClient, thread_id: int, n: int) -> dict:
        began = time.monotonic()
        r = await http.post(f"/api/threads/{thread_id}/posts",
                            json={"body": f"reply {n}", "guest_name": f"guest{n % 4}"})
        assert r.status_code == 201, r.text
        assert time.monotonic() - began < 2.0, "a write waited on the broker"
        written.append(r.json())
        return r.json()

    tid, _ = open_thread(stack.url, "ops", "Outage", "ann")
    async with httpx.AsyncClient(base_url=stack.url, timeout=10) as http:
        first = await reply(http, tid, 2)
        await read_at(http, f"/api/threads/{tid}", first["position"])

        broker.kill()
        for n in range(3, 15):
            await reply(http, tid, n)
        # A thread started while the broker is away, too.
        r = await http.post("/api/forums/ops/threads",
                            json={"title": "Quiet", "body": "nobody nudged", "guest_name": "bo"})
        assert r.status_code == 201, r.text
        quiet = r.json()
        await asyncio.sleep(3)
        # Nobody was nudged, yet the periodic catch-up has projected every write.
        page = await read_at(http, f"/api/threads/{tid}", quiet["position"])
        assert [p["number"] for p in page.json()["posts"]] == list(range(1, 15))
        assert stack.worker.poll() is None, "the worker died with its broker"
        assert stack.api.poll() is None

        broker.start()  # same port
        for n in range(15, 31):
            await reply(http, tid, n)
        last = await last_written(store)
        deadline = time.monotonic() + 20
        while True:
            done = await positions(redis, keys, list(PROJECTION_NAMES))
            if all(p is not None and p >= last for p in done.values()):
                break
            assert time.monotonic() < deadline, (done, last)
            await asyncio.sleep(0.1)
        assert await store.head() == last

        posts = []
        for number in (1, 2):
            page = await http.get(f"/api/threads/{tid}?page={number}")
            assert page.status_code == 200, page.text
            posts += page.json()["posts"]
        assert [p["number"] for p in posts] == list(range(1, 31))
        assert [p["id"] for p in posts[1:]] == [w["post_id"] for w in written]
        listing = (await http.get("/api/forums/ops/threads")).json()
        assert [t["id"] for t in listing["threads"]] == [tid, quiet["thread_id"]]
        assert listing["forum"]["posts"] == 31
        assert stack.worker.poll() is None
    await assert_equals_rebuild(store, redis, keys)
