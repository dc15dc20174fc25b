"""The edge (service/edge.py): the one layer around every route, on a small app of its own
(no storage): the client address, the correlation id and the request log, the metrics,
bans and 304s."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import msgspec
import pytest
from litestar import Litestar, Request, Response, get, post
from litestar.middleware import DefineMiddleware
from litestar.testing import AsyncTestClient

from service import requestlog
from service.addresses import trusted_networks
from service.bans import Ban
from service.edge import Edge
from service.errors import EXCEPTION_HANDLERS
from service.headers import security_headers
from service.metrics import Metrics

ETAG = 'W/"7-abc"'
BANNED = "203.0.113.9"
ran: list[str] = []


@get("/things/{n:int}")
async def thing(n: int, request: Request[Any, Any, Any]) -> Response[bytes]:
    return Response(content=b'{"n":%d}' % n, media_type="application/json", headers={
        "ETag": ETAG, "X-Seen-As": f"{request.client.host if request.client else ''} "
                                   f"{request.scope['scheme']}"})


@post("/things")
async def make(request: Request[Any, Any, Any]) -> dict[str, str]:
    ran.append("make")
    return {"cid": request.scope["state"]["correlation_id"]}


@post("/unban", opt={"ban_exempt": True})
async def unban() -> dict[str, str]:
    ran.append("unban")
    return {}


class Bans:
    async def covering(self, client: str) -> Ban | None:
        if client != BANNED:
            return None
        return Ban(id=1, cidr=f"{BANNED}/32", until=None, reason="spam run",
                   created_at=datetime.now(UTC), created_by="operator")


def app(trusted: str = "") -> tuple[Litestar, Metrics]:
    metrics = Metrics()
    made = Litestar(route_handlers=[thing, make, unban], exception_handlers=EXCEPTION_HANDLERS,
                    middleware=[DefineMiddleware(Edge, trusted=trusted_networks(trusted),
                                                 metrics=metrics)],
                    before_send=[security_headers])
    made.state.services = SimpleNamespace(bans=Bans())
    return made, metrics


def observed(metrics: Metrics, method: str, route: str, status: int) -> float:
    value = metrics.registry.get_sample_value(
        "forum_http_request_duration_seconds_count",
        {"method": method, "route": route, "status": str(status)})
    return value or 0.0


class Logged:
    """Stands for the request log's logger (structlog caches its loggers on first use, so
    capturing through structlog's configuration depends on what ran before)."""

    def __init__(self) -> None:
        self.lines: list[dict[str, Any]] = []

    def info(self, event: str, **fields: Any) -> None:
        self.lines.append({"event": event, "level": "info", **fields})

    def warning(self, event: str, **fields: Any) -> None:
        self.lines.append({"event": event, "level": "warning", **fields})


@pytest.fixture(autouse=True)
def logged(monkeypatch: pytest.MonkeyPatch) -> Logged:
    ran.clear()
    logger = Logged()
    monkeypatch.setattr(requestlog, "log", logger)
    return logger


async def test_a_correlation_id_is_made_or_taken_and_echoed() -> None:
    made, _ = app()
    async with AsyncTestClient(made) as client:
        first = (await client.get("/things/1")).headers["x-correlation-id"]
        second = (await client.get("/things/1")).headers["x-correlation-id"]
        assert first != second and first.split("-")[0] == second.split("-")[0]
        r = await client.get("/things/1", headers={"X-Correlation-Id": "abc-1"})
        assert r.headers["x-correlation-id"] == "abc-1"
        r = await client.get("/things/1", headers={"X-Request-Id": "req-9"})
        assert r.headers["x-correlation-id"] == "req-9"
        for bad in ("x" * 129, "a\tb"):
            r = await client.get("/things/1", headers={"X-Correlation-Id": bad})
            assert r.headers["x-correlation-id"] not in (bad, "req-9")


async def test_writes_are_logged_with_their_id_and_reads_only_when_they_fail(
        logged: Logged) -> None:
    made, _ = app()
    async with AsyncTestClient(made) as client:
        await client.get("/things/1")
        r = await client.post("/things", json={}, headers={"X-Correlation-Id": "w-1"})
        assert r.json() == {"cid": "w-1"}
        requests = [e for e in logged.lines if e["event"] == "request"]
        assert [(e["method"], e["status"], e["correlation_id"]) for e in requests] == [
            ("POST", 201, "w-1")]


async def test_every_request_is_timed_by_route_and_status() -> None:
    made, metrics = app()
    async with AsyncTestClient(made) as client:
        await client.get("/things/1")
        await client.get("/things/2")
        await client.get("/things/2", headers={"If-None-Match": ETAG})
        await client.post("/things", json={})
    assert observed(metrics, "GET", "/things/{n}", 200) == 2
    assert observed(metrics, "GET", "/things/{n}", 304) == 1
    assert observed(metrics, "POST", "/things", 201) == 1


async def test_a_named_etag_is_a_304_without_the_body_and_its_headers() -> None:
    made, _ = app()
    async with AsyncTestClient(made) as client:
        r = await client.get("/things/3", headers={"If-None-Match": f'W/"1-x", {ETAG}'})
        assert r.status_code == 304 and r.content == b""
        assert r.headers["etag"] == ETAG and "content-type" not in r.headers
        assert r.headers["x-correlation-id"]
        assert r.headers["x-content-type-options"] == "nosniff"
        r = await client.get("/things/3", headers={"If-None-Match": 'W/"7-abd"'})
        assert r.status_code == 200 and r.json() == {"n": 3}


async def call(made: Litestar, method: str, path: str, peer: str,
               headers: dict[str, str]) -> tuple[int, dict[bytes, bytes], bytes]:
    """One request straight into the app, from the TCP peer ``peer`` (the test client's
    transport has no IP peer)."""
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": method, "scheme": "http", "path": path, "raw_path": path.encode(),
             "query_string": b"", "root_path": "", "client": (peer, 5000),
             "server": ("127.0.0.1", 80), "headers": [
                 (b"host", b"testserver"), (b"content-type", b"application/json"),
                 *((k.lower().encode(), v.encode()) for k, v in headers.items())]}
    sent: list[dict[str, Any]] = []
    body = [{"type": "http.request", "body": b"{}", "more_body": False}]

    async def receive() -> dict[str, Any]:
        return body.pop() if body else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await made(scope, receive, send)  # type: ignore[arg-type]
    return (sent[0]["status"], dict(sent[0]["headers"]),
            b"".join(m.get("body", b"") for m in sent[1:]))


@pytest.mark.parametrize(("trusted", "peer", "headers", "seen"), [
    ("", "198.51.100.1", {}, b"198.51.100.1 http"),
    ("", "::ffff:198.51.100.1", {}, b"198.51.100.1 http"),  # IPv4-mapped: as IPv4
    # nobody is trusted: the headers are the client's own words
    ("", "198.51.100.1", {"X-Forwarded-For": "6.6.6.6", "X-Forwarded-Proto": "https"},
     b"198.51.100.1 http"),
    ("10.0.0.0/8", "10.0.0.2", {"X-Forwarded-For": "6.6.6.6, 198.51.100.7",
                                "X-Forwarded-Proto": "https"}, b"198.51.100.7 https"),
    ("10.0.0.0/8", "198.51.100.1", {"X-Forwarded-For": "6.6.6.6",
                                    "X-Forwarded-Proto": "https"}, b"198.51.100.1 http"),
    ("10.0.0.0/8", "10.0.0.2", {"X-Forwarded-For": "junk", "X-Forwarded-Proto": "gopher"},
     b"10.0.0.2 http"),
])
async def test_the_client_address_is_the_peer_unless_a_trusted_proxy_says(
        trusted: str, peer: str, headers: dict[str, str], seen: bytes) -> None:
    made, _ = app(trusted)
    status, answered, _ = await call(made, "GET", "/things/1", peer, headers)
    assert status == 200 and answered[b"x-seen-as"] == seen


async def test_a_banned_address_is_refused_before_its_handler_with_the_reason(
        logged: Logged) -> None:
    made, metrics = app("10.0.0.0/8")
    for peer, headers in ((BANNED, {}), ("10.0.0.2", {"X-Forwarded-For": BANNED})):
        status, answered, body = await call(made, "POST", "/things", peer, headers)
        assert status == 403
        assert answered[b"content-type"].startswith(b"application/problem+json")
        detail = msgspec.json.decode(body)["detail"]
        assert "banned" in detail and "spam run" in detail and "no end set" in detail
        assert answered[b"x-correlation-id"]
    assert [e["status"] for e in logged.lines if e["event"] == "request"] == [403, 403]
    assert observed(metrics, "POST", "/things", 403) == 2
    assert ran == []
    assert (await call(made, "GET", "/things/1", BANNED, {}))[0] == 200  # reading is open
    assert (await call(made, "POST", "/unban", BANNED, {}))[0] == 201  # ban_exempt
    assert (await call(made, "POST", "/things", "198.51.100.1", {}))[0] == 201
    assert ran == ["unban", "make"]
