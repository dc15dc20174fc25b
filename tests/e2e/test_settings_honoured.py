"""What the settings and the metrics say is what the app does: the request body limit is
``max_body_bytes``, and ``forum_appends_total`` counts the appends made."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator

import httpx
import msgspec
import pytest_asyncio
from litestar.testing import AsyncTestClient

from service.app import create_app
from service.settings import Settings
from tests.builders import unique_slug
from tests.conftest import OPERATOR


@pytest_asyncio.fixture
async def small(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The app with a body limit of 2,000 bytes."""
    limited = msgspec.structs.replace(settings, max_body_bytes=2000)
    async with AsyncTestClient(app=create_app(limited)) as client:
        yield client


async def forum_of(client: httpx.AsyncClient) -> str:
    slug = unique_slug()
    r = await client.post("/api/forums", json={"slug": slug, "title": "Limits"},
                          headers=OPERATOR)
    assert r.status_code == 201, r.text
    return slug


async def test_the_body_limit_is_the_setting(small):
    slug = await forum_of(small)
    for size, status in ((1500, 201), (2500, 413)):
        body = json.dumps({"title": "T", "body": "b" * size, "guest_name": "ann"})
        r = await small.post(f"/api/forums/{slug}/threads", content=body,
                             headers={"Content-Type": "application/json"})
        assert r.status_code == status, (size, r.status_code, r.text[:200])


async def test_the_default_limit_takes_the_longest_body_json_escaped(client):
    slug = await forum_of(client)
    # 50,000 astral characters, each escaped as a surrogate pair: 600 kB of JSON.
    body = json.dumps({"title": "T", "body": "\U0001f600" * 50_000, "guest_name": "ann"})
    assert len(body) > 600_000
    r = await client.post(f"/api/forums/{slug}/threads", content=body,
                          headers={"Content-Type": "application/json"})
    assert r.status_code == 201, r.text[:200]


def appends(metrics: str, kind: str) -> float:
    found = re.search(rf'^forum_appends_total{{stream_kind="{kind}"}} (\S+)$', metrics, re.M)
    return float(found.group(1)) if found else 0.0


async def test_the_appends_metric_counts_appends(client):
    slug = await forum_of(client)
    r = await client.post(f"/api/forums/{slug}/threads",
                          json={"title": "T", "body": "b", "guest_name": "ann"})
    assert r.status_code == 201, r.text
    thread = r.json()["thread_id"]
    before = (await client.get("/metrics")).text
    for _ in range(3):
        r = await client.post(f"/api/threads/{thread}/posts",
                              json={"body": "reply", "guest_name": "ann"})
        assert r.status_code == 201, r.text
    after = (await client.get("/metrics")).text
    assert appends(before, "forum") == 1
    assert appends(before, "thread") == 1
    assert appends(after, "thread") == 4
