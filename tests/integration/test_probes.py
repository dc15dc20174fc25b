"""service/probes.py: a broker that accepts TCP connections but never answers (a stopped
process: the kernel still completes handshakes into the listen backlog) is down, within
the probe's timeout; a live one is ok."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from service import probes
from tests.conftest import REDIS_URL, free_port


@pytest.fixture
def silent_port() -> Iterator[int]:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield listener.getsockname()[1]


@pytest.mark.parametrize("scheme", ["redis", "amqp"])
async def test_a_broker_that_accepts_connections_but_never_answers_is_down_in_time(
        silent_port: int, scheme: str):
    url = (f"redis://127.0.0.1:{silent_port}/0" if scheme == "redis"
           else f"amqp://guest:guest@127.0.0.1:{silent_port}/")
    began = time.monotonic()
    answer = await probes.broker(url, timeout=0.5)
    assert answer.startswith("down: no answer within 0.5 s"), answer
    assert time.monotonic() - began < 1.5


@pytest.mark.parametrize("scheme", ["redis", "amqp"])
async def test_a_closed_port_is_down_at_once(scheme: str):
    port = free_port()
    url = (f"redis://127.0.0.1:{port}/0" if scheme == "redis"
           else f"amqp://guest:guest@127.0.0.1:{port}/")
    began = time.monotonic()
    assert (await probes.broker(url)).startswith("down: ")
    assert time.monotonic() - began < 1.5


async def test_a_live_redis_answers_ok_and_none_is_not_used():
    assert await probes.broker(REDIS_URL) == "ok"
    assert await probes.broker("none") == "not used"


async def test_a_live_rabbitmq_answers_ok():
    try:
        socket.create_connection(("127.0.0.1", 5672), timeout=1).close()
    except OSError:
        pytest.skip("no RabbitMQ on 127.0.0.1:5672")
    assert await probes.broker("amqp://guest:guest@127.0.0.1:5672/") == "ok"
