"""The forum on a real three-master Redis Cluster (API.md "Scale"): real ``forum serve`` and
``forum worker`` processes with ``FORUM_REDIS_CLUSTER=true`` (the Dramatiq broker on the
plain Redis, as a cluster cannot hold it). Writes and reads through the API, ``forum
replay``, and Redis losing every key of the board: the answers are those of the same
board on a plain Redis, and nobody has to run a command after the wipe."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from common.redis_client import connect
from service.settings import Settings
from tests.conftest import OPERATOR_TOKEN, REDIS_URL, Stack, free_port, process_env
from tests.integration.test_cli import forum, no_traceback
from tests.invariants.test_wipe_recovery import Board, read_expected, seed
from tests.readmodel_dump import drop_prefix
from tests.rediscluster import RedisCluster
from workers.readmodels.keys import PARTITIONS

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def _settings(database_url: str, key_prefix: str, redis_url: str, cluster: bool) -> Settings:
    return Settings(
        database_url=database_url, redis_url=redis_url, redis_cluster=cluster,
        broker_url=REDIS_URL, operator_token=OPERATOR_TOKEN, key_prefix=key_prefix,
        port=free_port(), page_cache_ms=0, rate_limits="off")


@contextlib.contextmanager
def running(settings: Settings, directory: Path) -> Iterator[Stack]:
    directory.mkdir()
    stack = Stack(settings, directory)
    try:
        stack.start_api()
        stack.start_worker()
        yield stack
    finally:
        stack.stop()


@pytest.fixture
def on_cluster(database_url: str, key_prefix: str, redis_cluster: RedisCluster,
               tmp_path: Path) -> Iterator[Stack]:
    with running(_settings(database_url, key_prefix, redis_cluster.url, True),
                 tmp_path / "cluster") as stack:
        yield stack


@pytest.fixture
def on_plain(database_url: str, key_prefix: str, tmp_path: Path) -> Iterator[Stack]:
    """The same log read through a plain Redis: what the cluster must answer."""
    with running(_settings(database_url, f"{key_prefix}-plain", REDIS_URL, False),
                 tmp_path / "plain") as stack:
        yield stack


def answers(url: str, board: Board) -> dict[str, Any]:
    copy = Board(urls=board.urls, position=board.position)
    read_expected(url, copy)
    return copy.expected


def wait_for(url: str, board: Board, expected: dict[str, Any], seconds: float) -> None:
    """Every URL answers ``expected`` within ``seconds`` (503s meanwhile, never else)."""
    deadline = time.monotonic() + seconds
    with httpx.Client(base_url=url, timeout=15) as http:
        for path in board.urls:
            while True:
                r = http.get(path, headers={"X-Min-Position": str(board.position)})
                if r.status_code == 200 and r.json() == expected[path]:
                    break
                assert r.status_code in (200, 503), (path, r.status_code, r.text)
                assert time.monotonic() < deadline, (path, r.status_code, r.text)
                time.sleep(0.1)


async def test_the_board_on_a_cluster_writes_reads_replays_and_recovers_from_a_wipe(
        on_cluster: Stack, on_plain: Stack, redis_cluster: RedisCluster) -> None:
    board = seed(on_cluster.url)  # writes through the API on the cluster
    expected = answers(on_plain.url, board)
    assert answers(on_cluster.url, board) == expected
    assert len(expected[board.urls[0]]["posts"]) + len(expected[board.urls[1]]["posts"]) == 30

    replayed = forum("replay", env=process_env(on_cluster.settings), timeout=120)
    no_traceback(replayed)
    assert replayed.returncode == 0, replayed.stderr
    wait_for(on_cluster.url, board, expected, 30)

    cluster = connect(redis_cluster.url, cluster=True)
    try:
        await drop_prefix(cluster, on_cluster.settings.key_prefix)  # Redis lost the board
    finally:
        await cluster.aclose()
    wait_for(on_cluster.url, board, expected, 30)

    with httpx.Client(base_url=on_cluster.url, timeout=15) as http:  # and writes go on
        tid = expected[board.urls[2]]["thread"]["id"]
        r = http.post(f"/api/threads/{tid}/posts", json={"body": "after", "guest_name": "eve"})
        assert r.status_code == 201, r.text
        page = http.get(f"/api/threads/{tid}",
                        headers={"X-Min-Position": str(r.json()["position"])})
        assert page.status_code == 200 and page.json()["posts"][-1]["body"] == "after"

    status = forum("status", "--json", env=process_env(on_cluster.settings))
    no_traceback(status)
    assert status.returncode == 0, status.stderr
    partitions = json.loads(status.stdout)["partitions"]
    assert len(partitions) == PARTITIONS and all(p["position"] is not None for p in partitions)
