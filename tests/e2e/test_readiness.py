"""/ready, /ready/writes, /metrics and ``forum status`` tell the truth, with real ``forum
serve`` and ``forum worker`` processes:

- a transaction held open in ANOTHER database of the cluster holds the log's read horizon:
  a write made meanwhile is not readable, and that shows as growing lag everywhere
  (/ready fails past its limit, /metrics, ``forum status`` which names the holder), and
  goes away when the transaction ends;
- PostgreSQL unreachable for the API (a relay of the test's own, cut): reads are still
  served and /ready says so, /ready/writes does not;
- a broker that stops answering (SIGSTOP) is reported down within about 2 s, and reads
  stay ready.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import msgspec
import pytest
import pytest_asyncio

from service.settings import Settings
from tests.conftest import FORUM, OPERATOR, PG_URL, ROOT, Stack, free_port, process_env, unique
from tests.invariants.test_broker_down import BrokerServer

pytestmark = pytest.mark.e2e

MAX_LAG = 2.0


async def _until(check, what: str, timeout: float = 20.0, every: float = 0.2):  # type: ignore[no-untyped-def]
    """Polls ``check()`` (async) until it answers something true; that answer."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(every)
    raise AssertionError(f"{what}: not within {timeout} s (last: {last!r})")


def _gauge(text: str, name: str, labels: str = "") -> float:
    found = re.search(rf"^{re.escape(name + labels)} (\S+)$", text, re.MULTILINE)
    assert found, (name, labels, text[:2000])
    return float(found.group(1))


def _status(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([*FORUM, "status", *args], env=process_env(settings), cwd=ROOT,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return done


async def _ready_to_read(http: httpx.AsyncClient) -> dict:
    async def ready() -> dict | None:
        r = await http.get("/ready")
        return r.json() if r.status_code == 200 else None

    return await _until(ready, "/ready 200")


def _with_db(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


@pytest_asyncio.fixture
async def other_database() -> AsyncIterator[str]:
    """A scratch database of this test's own on the same cluster: not the board's."""
    name = unique("forum_test_other_")
    admin = await asyncpg.connect(PG_URL)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield name
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
def lagging_stack(stack_settings: Settings, tmp_path: Path) -> Iterator[Stack]:
    settings = msgspec.structs.replace(stack_settings, ready_max_lag=MAX_LAG)
    running = Stack(settings, tmp_path)
    try:
        running.start_api()
        running.start_worker()
        yield running
    finally:
        running.stop()


async def test_a_transaction_held_open_in_another_database_shows_as_lag_everywhere(
        lagging_stack: Stack, other_database: str):
    stack = lagging_stack
    async with httpx.AsyncClient(base_url=stack.url, timeout=15) as http:
        r = await http.post("/api/forums", json={"slug": "ops", "title": "Ops"},
                            headers=OPERATOR)
        assert r.status_code == 201, r.text
        first = await _ready_to_read(http)
        assert first["reads"] == first["writes"] == "ready", first

        holder = await asyncpg.connect(_with_db(PG_URL, other_database),
                                       server_settings={"application_name": "held-open"})
        transaction = holder.transaction()
        try:
            await transaction.start()
            await holder.fetchval("SELECT pg_current_xact_id()")
            pid = holder.get_server_pid()
            began = time.monotonic()
            r = await http.post("/api/forums/ops/threads",
                                json={"title": "Held", "body": "behind", "guest_name": "ann"})
            assert r.status_code == 201, r.text
            thread, position = r.json()["thread_id"], r.json()["position"]

            async def not_ready() -> httpx.Response | None:
                answer = await http.get("/ready")
                return answer if answer.status_code == 503 else None

            answer = await _until(not_ready, "/ready 503 while the horizon is held")
            assert time.monotonic() - began >= MAX_LAG
            assert answer.headers["Retry-After"]
            report = answer.json()
            assert report["status"] == report["reads"] == "not ready", report
            assert report["writes"] == "ready", report  # PostgreSQL itself answers
            assert report["lag_seconds"] > MAX_LAG
            assert report["horizon_held_seconds"] > MAX_LAG
            assert any("read horizon is held" in reason for reason in report["reasons"])
            # A public route: it says that the horizon is held, never by whom.
            assert "horizon_held_by" not in report
            assert other_database not in answer.text and "held-open" not in answer.text
            assert "pid" not in answer.text
            writes = await http.get("/ready/writes")
            assert writes.status_code == 200, writes.text

            # The write is not readable yet: it waits behind the horizon.
            unread = await http.get(f"/api/threads/{thread}",
                                    headers={"X-Min-Position": str(position)})
            assert unread.status_code == 503, unread.text

            metrics = (await http.get("/metrics")).text
            held = _gauge(metrics, "forum_log_horizon_lag_seconds")
            assert held > MAX_LAG
            for projection in ("thread_page", "thread_list"):
                assert _gauge(metrics, "forum_projection_lag_seconds",
                              f'{{projection="{projection}"}}') >= held
            await asyncio.sleep(1.1)
            later = _gauge((await http.get("/metrics")).text,
                           "forum_log_horizon_lag_seconds")
            assert later >= held + 1.0, (held, later)  # it grows while the horizon is held

            # The operator's tool names the holder: its pid, database, application, state.
            status = json.loads(_status(stack.settings, "--json").stdout)
            horizon = status["horizon"]
            assert horizon["held_by"]["pid"] == pid, horizon
            assert horizon["held_by"]["datname"] == other_database
            assert horizon["held_by"]["application_name"] == "held-open"
            assert horizon["held_by"]["state"] == "idle in transaction"
            assert horizon["held_by"]["seconds"] > MAX_LAG
            assert horizon["held_seconds"] > MAX_LAG and horizon["waiting_events"] >= 1
            assert status["lag_seconds"] >= horizon["held_seconds"]
            for name, row in status["projections"].items():
                assert row["lag_seconds"] >= horizon["held_seconds"], name
            text = _status(stack.settings).stdout
            flat = " ".join(text.split())
            assert f"pid {pid}" in flat and other_database in flat, text
            assert "read horizon is held" in flat, text
        finally:
            with contextlib.suppress(Exception):
                await transaction.rollback()
            await holder.close()

        # The transaction ended: the write becomes readable, and the lag goes away.
        page = await http.get(f"/api/threads/{thread}",
                              headers={"X-Min-Position": str(position)})
        assert page.status_code == 200, page.text
        after = await _ready_to_read(http)
        assert after["lag_seconds"] < MAX_LAG and after["horizon_held_seconds"] < 1, after
        metrics = (await http.get("/metrics")).text
        assert _gauge(metrics, "forum_log_horizon_lag_seconds") < 1
        status = json.loads(_status(stack.settings, "--json").stdout)
        assert status["horizon"]["held_seconds"] < 1
        assert all(row["lag_seconds"] < MAX_LAG for row in status["projections"].values())


class Relay:
    """A TCP relay to PostgreSQL, on a thread of its own. ``cut()`` closes it and resets
    every connection through it: PostgreSQL is unreachable for whoever connects through
    it. ``mend()`` listens again, on the same port."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.port = free_port()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.server: asyncio.Server | None = None
        self.transports: set[asyncio.Transport] = set()

    def _call(self, coro) -> object:  # type: ignore[no-untyped-def]
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    def start(self) -> None:
        self.thread.start()
        self.mend()

    def mend(self) -> None:
        async def listen() -> None:
            self.server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)

        self._call(listen())

    def cut(self) -> None:
        async def close() -> None:
            assert self.server is not None
            self.server.close()
            for transport in list(self.transports):
                transport.abort()
            self.transports.clear()

        self._call(close())

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.cut()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        pair = {writer.transport, upstream.transport}
        self.transports |= pair  # type: ignore[arg-type]

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError):
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            sink.transport.abort()

        await asyncio.gather(pipe(reader, upstream), pipe(upstream_reader, writer))
        self.transports -= pair  # type: ignore[arg-type]


@pytest.fixture
def relay() -> Iterator[Relay]:
    parts = urlsplit(PG_URL)
    running = Relay(parts.hostname or "127.0.0.1", parts.port or 5432)
    running.start()
    yield running
    running.stop()


@pytest.fixture
def relayed_stack(stack_settings: Settings, relay: Relay, tmp_path: Path) -> Iterator[Stack]:
    """The API reaches PostgreSQL through the relay; the worker directly."""
    parts = urlsplit(stack_settings.database_url)
    relayed = urlunsplit(parts._replace(netloc=f"{parts.username}@127.0.0.1:{relay.port}"))
    api = Stack(msgspec.structs.replace(stack_settings, database_url=relayed), tmp_path)
    worker = Stack(stack_settings, tmp_path)
    try:
        api.start_api()
        api.worker = worker.start_worker()
        yield api
    finally:
        api.stop()


async def test_postgresql_unreachable_reads_stay_ready_and_writes_do_not(
        relayed_stack: Stack, relay: Relay):
    stack = relayed_stack
    async with httpx.AsyncClient(base_url=stack.url, timeout=15) as http:
        r = await http.post("/api/forums", json={"slug": "ops", "title": "Ops"},
                            headers=OPERATOR)
        assert r.status_code == 201, r.text
        r = await http.post("/api/forums/ops/threads",
                            json={"title": "Kept", "body": "in Redis", "guest_name": "ann"})
        assert r.status_code == 201, r.text
        thread, position = r.json()["thread_id"], r.json()["position"]

        async def readable() -> bool:
            answer = await http.get(f"/api/threads/{thread}",
                                    headers={"X-Min-Position": str(position)})
            return answer.status_code == 200

        await _until(readable, "the thread readable")
        await _ready_to_read(http)
        assert (await http.get("/ready/writes")).status_code == 200

        relay.cut()
        began = time.monotonic()
        answer = await http.get("/ready")
        assert time.monotonic() - began < 5
        assert answer.status_code == 200, answer.text  # a load balancer keeps this host
        report = answer.json()
        assert report["status"] == report["reads"] == "ready", report
        assert report["writes"] == "not ready", report
        assert report["postgres"].startswith("down"), report
        assert report["redis"] == "ok"
        assert "lag_seconds" not in report  # unknown without PostgreSQL, not 0
        assert any("PostgreSQL does not answer" in reason for reason in report["reasons"])
        writes = await http.get("/ready/writes")
        assert writes.status_code == 503, writes.text
        assert writes.headers["Retry-After"]
        assert writes.json()["status"] == "not ready"

        # What /ready promised: reads are served (from Redis), writes refused cleanly.
        page = await http.get(f"/api/threads/{thread}")
        assert page.status_code == 200, page.text
        assert page.json()["thread"]["title"] == "Kept"
        assert (await http.get("/api/forums/ops/threads")).status_code == 200
        refused = await http.post(f"/api/threads/{thread}/posts",
                                  json={"body": "lost?", "guest_name": "bob"})
        assert refused.status_code == 503, refused.text
        metrics = (await http.get("/metrics")).text
        assert _gauge(metrics, "forum_log_horizon_lag_seconds") != 0  # NaN: unknown

        relay.mend()

        async def writable() -> bool:
            return (await http.get("/ready/writes")).status_code == 200

        await _until(writable, "/ready/writes 200 once PostgreSQL is back")
        r = await http.post(f"/api/threads/{thread}/posts",
                            json={"body": "back", "guest_name": "bob"})
        assert r.status_code == 201, r.text


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[BrokerServer]:
    server = BrokerServer(free_port(), tmp_path)
    server.start()
    yield server
    if server.proc is not None and server.proc.poll() is None:
        os.kill(server.proc.pid, signal.SIGCONT)  # a stopped process cannot die cleanly
    server.kill()


@pytest.fixture
def brokered_stack(stack_settings: Settings, broker: BrokerServer, tmp_path: Path
                   ) -> Iterator[Stack]:
    running = Stack(msgspec.structs.replace(stack_settings, broker_url=broker.url), tmp_path)
    try:
        running.start_api()
        running.start_worker()
        yield running
    finally:
        assert broker.proc is not None
        with contextlib.suppress(ProcessLookupError):
            os.kill(broker.proc.pid, signal.SIGCONT)
        running.stop()


async def test_a_stopped_broker_is_reported_down_within_two_seconds_and_reads_stay_ready(
        brokered_stack: Stack, broker: BrokerServer):
    stack = brokered_stack
    assert broker.proc is not None
    async with httpx.AsyncClient(base_url=stack.url, timeout=15) as http:
        r = await http.post("/api/forums", json={"slug": "ops", "title": "Ops"},
                            headers=OPERATOR)
        assert r.status_code == 201, r.text
        report = await _ready_to_read(http)
        assert report["broker"] == "ok", report

        os.kill(broker.proc.pid, signal.SIGSTOP)  # it still accepts TCP connections
        try:
            began = time.monotonic()
            answer = await http.get("/ready")
            took = time.monotonic() - began
            assert took < 2.5, took
            assert answer.status_code == 200, answer.text  # reported, not required
            report = answer.json()
            assert report["broker"].startswith("down"), report
            assert report["reads"] == report["writes"] == "ready", report
            assert any("broker does not answer" in reason for reason in report["reasons"])
            assert (await http.get("/ready/writes")).status_code == 200
        finally:
            os.kill(broker.proc.pid, signal.SIGCONT)

        async def broker_ok() -> bool:
            return (await http.get("/ready")).json()["broker"] == "ok"

        await _until(broker_ok, "the broker ok again after SIGCONT", timeout=5)


@pytest.mark.parametrize("path", ["/ready", "/ready/writes"])
async def test_the_readiness_routes_ignore_hostile_input(client, path: str):
    """No parameters, no body: whatever is sent along, the report, never a 5xx."""
    for junk in ({"params": {"x": "<script>" * 500, "page": "-1"}},
                 {"headers": {"Authorization": "Bearer " + "x" * 5000,
                              "X-Min-Position": "garbage", "X-Guest-Token": "=" * 43}},
                 {"params": {"\u0000": "\ud7ff" * 100}}):
        answer = await client.get(path, **junk)
        assert answer.status_code in (200, 503), (junk, answer.status_code, answer.text)
        report = answer.json()
        assert {"status", "reads", "writes", "postgres", "redis", "broker",
                "reasons"} <= set(report)
