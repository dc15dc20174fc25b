"""Invariant 5: Redis wiped while the API serves. The projections notice their missing
checkpoints and rebuild; meanwhile reads degrade to 503 with Retry-After, never to a 200
with wrong or partial content and never to a 500. Nobody runs a command: the workers bring
the read models back by themselves, equal byte for byte to a rebuild from the log.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from tests.background import Background, ReplyWriter
from tests.conftest import OPERATOR, Stack
from tests.readmodel_dump import assert_equals_rebuild, last_written
from workers.projections import PROJECTIONS
from workers.readmodels import Keys

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

RECOVERY_SECONDS = 15




@dataclass
class Board:
    """What was written before the wipe, and the URLs to read it back by."""

    urls: list[str]
    position: int
    busy_thread: int = 0
    expected: dict[str, Any] = field(default_factory=dict)


def seed(url: str) -> Board:
    """Two sections, a long thread (two pages) with quotes, a thread nobody answered, and
    a third section with a thread for a writer that must not disturb what is compared."""
    with httpx.Client(base_url=url, timeout=15) as http:
        def ok(r: httpx.Response) -> dict[str, Any]:
            assert r.status_code in (200, 201), r.text
            return r.json()  # type: ignore[no-any-return]

        for slug in ("history", "science", "busy"):
            ok(http.post("/api/forums", json={"slug": slug, "title": slug.title()},
                         headers=OPERATOR))
        long = ok(http.post("/api/forums/history/threads",
                            json={"title": "Rome", "body": "Who built it?", "guest_name": "ann"}))
        first_post = long["post_id"]
        last = long
        for n in range(2, 31):
            body = f"reply {n}"
            if n % 7 == 0:
                body = f"[quote=ann post={first_post}]Who built it?[/quote] {body}"
            last = ok(http.post(f"/api/threads/{long['thread_id']}/posts",
                                json={"body": body, "guest_name": ("bob", "cy", "ann")[n % 3]}))
        lonely = ok(http.post("/api/forums/science/threads",
                              json={"title": "Atoms", "body": "Anyone?", "guest_name": "dee"}))
        busy = ok(http.post("/api/forums/busy/threads",
                            json={"title": "Chatter", "body": "go", "guest_name": "writer"}))
    tid, lone = long["thread_id"], lonely["thread_id"]
    urls = [
        f"/api/threads/{tid}", f"/api/threads/{tid}?page=2", f"/api/threads/{lone}",
        "/api/forums/history/threads", "/api/forums/science/threads",
        "/api/users/ann", "/api/users/bob", "/api/users/dee",
        f"/api/posts/{first_post}", "/api/forums/history/archive",
    ]
    position = max(last["position"], lonely["position"], busy["position"])
    return Board(urls=urls, position=position, busy_thread=busy["thread_id"])


def read_expected(url: str, board: Board) -> None:
    """Every URL's answer once the read models have reached everything written."""
    with httpx.Client(base_url=url, timeout=15) as http:
        for path in board.urls:
            deadline = time.monotonic() + 30
            while True:
                r = http.get(path, headers={"X-Min-Position": str(board.position)})
                if r.status_code == 200:
                    break
                assert r.status_code == 503 and time.monotonic() < deadline, (path, r.text)
            board.expected[path] = r.json()
    thread = board.expected[board.urls[0]]
    assert thread["thread"]["posts"] == 30 and thread["pages"] == 2, thread


class Reader(Background):
    """A thread hammering the URLs and checking every answer as it comes: the right
    content, or 503 with Retry-After."""

    def __init__(self, url: str, board: Board) -> None:
        super().__init__()
        self.url = url
        self.board = board
        self.answers: dict[int, int] = {}
        self.wrong: list[str] = []

    def _run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=15) as http:
            while not self.stop.is_set():
                for path in self.board.urls:
                    try:
                        r = http.get(path)
                    except httpx.HTTPError as error:
                        self.wrong.append(f"{path}: {error!r}")
                        continue
                    self.answers[r.status_code] = self.answers.get(r.status_code, 0) + 1
                    if r.status_code == 503:
                        if "Retry-After" not in r.headers:
                            self.wrong.append(f"{path}: 503 without Retry-After")
                    elif r.status_code != 200:
                        self.wrong.append(f"{path}: {r.status_code} {r.text[:300]}")
                    elif r.json() != self.board.expected[path]:
                        self.wrong.append(f"{path}: 200 with other content: {r.text[:600]}")


def all_served(url: str, board: Board) -> bool:
    with httpx.Client(base_url=url, timeout=15) as http:
        return all(http.get(path).status_code == 200 for path in board.urls)


async def wait_until(condition: Any, what: str, timeout: float = RECOVERY_SECONDS) -> float:
    started = time.monotonic()
    while not await asyncio.to_thread(condition):
        assert time.monotonic() - started < timeout, f"{what} within {timeout} s"
        await asyncio.sleep(0.05)
    return time.monotonic() - started


async def equals_rebuild(store, redis: Redis, keys: Keys) -> None:  # type: ignore[no-untyped-def]
    """Once the live read models have reached the last event written, they equal a
    rebuild from the log into another prefix, byte for byte."""
    from workers.checkpoints import positions

    last = await last_written(store)
    deadline = time.monotonic() + 30
    while True:
        done = await positions(redis, keys, list(PROJECTIONS))
        building = [k async for k in redis.scan_iter(match=f"{keys.prefix}:building:*")]
        # store.head() stops below the oldest transaction open anywhere on the shared
        # server: a rebuild now reads everything only once it has passed ``last``.
        if (not building and all(p is not None and p >= last for p in done.values())
                and await store.head() >= last):
            break
        assert time.monotonic() < deadline, f"read models stuck at {done}, last {last}"
        await asyncio.sleep(0.05)
    await assert_equals_rebuild(store, redis, keys)


async def prefix_keys(redis: Redis, prefix: str) -> list[bytes]:
    return [key async for key in redis.scan_iter(match=f"{prefix}:*", count=1000)]


# -- the tests --------------------------------------------------------------------------

async def test_wiping_every_read_model_key_while_serving_degrades_to_503_then_recovers_by_itself(
    stack: Stack, store, redis: Redis, keys: Keys,  # type: ignore[no-untyped-def]
):
    board = seed(stack.url)
    read_expected(stack.url, board)

    with Reader(stack.url, board).running() as reader:
        time.sleep(0.3)
        # Redis loses everything of this board: pointers, namespaces, checkpoints, locks.
        # One UNLINK of every key found, as a restart without persistence would (the
        # broker's keys, "{prefix}-dramatiq:*", are not under "{prefix}:").
        found = await prefix_keys(redis, keys.prefix)
        assert len(found) > 20
        assert not [k for k in found if k.startswith(f"{keys.prefix}-dramatiq".encode())]
        await redis.unlink(*found)
        took = await wait_until(lambda: all_served(stack.url, board),
                                "the read models came back without anyone running a command")
        time.sleep(0.3)

    assert not reader.wrong, "\n".join(reader.wrong[:20])
    assert reader.answers.get(503, 0) > 0, (
        f"the reader never saw the wipe (answers {reader.answers}, recovered in {took:.2f} s)")
    assert reader.answers.get(200, 0) > 0
    assert None not in [await redis.get(keys.active(name)) for name in PROJECTIONS]
    await equals_rebuild(store, redis, keys)


@pytest.mark.parametrize("projection", ["thread_page", "member_stats"])
async def test_losing_one_projections_checkpoint_makes_the_workers_rebuild_it(
    stack: Stack, store, redis: Redis, keys: Keys,  # type: ignore[no-untyped-def]
    projection: str,
):
    board = seed(stack.url)
    read_expected(stack.url, board)
    before = await redis.get(keys.active(projection))
    assert before is not None
    others = {n: await redis.get(keys.active(n)) for n in PROJECTIONS if n != projection}

    # A writer keeps the workers busy (every write nudges them) in a section the reader
    # does not compare, so that a live catch-up may run at any moment after the loss.
    with ReplyWriter(stack.url, board.busy_thread, text="chatter").running() as writer, \
            Reader(stack.url, board).running() as reader:
        time.sleep(0.3)
        await redis.delete(keys.namespace(projection, before.decode()).checkpoints[3])

        async def replaced() -> bool:
            return await redis.get(keys.active(projection)) not in (None, before)

        started = time.monotonic()
        while not await replaced():
            assert time.monotonic() - started < RECOVERY_SECONDS, (
                f"{projection} was not rebuilt within {RECOVERY_SECONDS} s; reads meanwhile:\n"
                + "\n".join(reader.wrong[:5]))
            await asyncio.sleep(0.05)
        await wait_until(lambda: all_served(stack.url, board), "reads came back")
        time.sleep(0.3)

    assert not writer.errors, writer.errors[:5]
    assert len(writer.positions) > 5
    assert not reader.wrong, "\n".join(reader.wrong[:20])
    # Only the projection that lost its checkpoint was rebuilt.
    assert {n: await redis.get(keys.active(n)) for n in others} == others
    # The old namespace is gone, not left behind.
    old = keys.namespace(projection, before.decode())
    assert [k async for k in redis.scan_iter(match=old.pattern())] == []
    await equals_rebuild(store, redis, keys)
