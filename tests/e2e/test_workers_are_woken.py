"""A write wakes the workers at once through Redis pub/sub, not through the broker
(workers/wake.py), with real ``forum serve`` and ``forum worker`` processes: the worker
listens on the wake channel, each reply is visible right after it is written, and the API's
``/metrics`` count every notification as a wake, none as a ``catch_up`` message through
the broker (it published to a listener each time instead of falling back)."""

from __future__ import annotations

import asyncio
import re
import time

import httpx
import pytest
from redis.asyncio import Redis

from tests.background import open_thread
from tests.integration.test_wake import until_subscribed
from workers.readmodels import Keys

pytestmark = [pytest.mark.e2e]


async def test_each_write_wakes_the_workers_without_a_broker_message(stack, redis: Redis,
                                                                     keys: Keys):
    await until_subscribed(redis, keys.wake())
    tid, _ = await asyncio.to_thread(open_thread, stack.url, "woken", "Wake", "ann")
    async with httpx.AsyncClient(base_url=stack.url, timeout=10) as http:
        for n in range(8):
            r = await http.post(f"/api/threads/{tid}/posts",
                                json={"body": f"reply {n}", "guest_name": "ann"})
            assert r.status_code == 201, r.text
            written = time.monotonic()
            page = await http.get(f"/api/threads/{tid}",
                                  params={"page": r.json()["page"]},
                                  headers={"X-Min-Position": str(r.json()["position"])})
            assert page.status_code == 200, page.text
            assert time.monotonic() - written < 2.0
        metrics = (await http.get("/metrics")).text
    assert nudges(metrics, "wake") >= 1
    assert nudges(metrics, "broker") == 0


def nudges(metrics: str, via: str) -> float:
    found = re.search(rf'^forum_nudges_total{{via="{via}"}} (\S+)$', metrics, re.M)
    return float(found.group(1)) if found else 0.0
