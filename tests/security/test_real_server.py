"""Against a real ``forum serve`` process: request heads beyond 16 KiB are refused with 431
without the process growing, and a bomb request never keeps ``/health`` waiting."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import httpx

from service.headlimit import MAX_HEAD_BYTES
from tests.conftest import OPERATOR, Stack
from tests.security.hostile import GROWTH, SIZE

PROMPT = 0.5  # seconds /health may take while bombs run


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def _exchange(stack: Stack, head: bytes, then: int = 0) -> bytes:
    """Send a raw request head (plus ``then`` more header bytes, streamed while reading)
    and read the answer until the server closes the connection."""
    port = stack.settings.port
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(head)

        def stream() -> None:
            chunk = b"a" * 65536
            try:
                for _ in range(then // len(chunk)):
                    conn.sendall(chunk)
            except OSError:
                pass  # the server stopped reading: what it should do

        sender = threading.Thread(target=stream)
        sender.start()
        answer = b""
        try:
            while data := conn.recv(65536):
                answer += data
        except OSError as error:
            answer += f" <{error!r}>".encode()
        sender.join()
    return answer


def _get(extra: bytes) -> bytes:
    return b"GET /health HTTP/1.1\r\nHost: x\r\n" + extra + b"Connection: close\r\n\r\n"


def test_request_heads_beyond_16_kib_are_refused_with_431_without_growing_the_process(
        stack: Stack):
    assert stack.api is not None
    ok = _exchange(stack, _get(b"X-Pad: " + b"a" * (MAX_HEAD_BYTES - 200) + b"\r\n"))
    assert ok.startswith(b"HTTP/1.1 200"), ok[:200]

    for extra in (b"X-Pad: " + b"a" * MAX_HEAD_BYTES + b"\r\n",  # one huge header
                  b"X-A: b\r\n" * (MAX_HEAD_BYTES // 8 + 10)):  # many small ones
        refused = _exchange(stack, _get(extra))
        assert refused.startswith(b"HTTP/1.1 431 "), refused[:200]
        head, _, body = refused.partition(b"\r\n\r\n")
        assert b"content-type: application/problem+json" in head.lower()
        assert b"connection: close" in head.lower()
        assert b'"status":431' in body and b'"detail"' in body

    # On a kept-alive connection the limit holds for each request anew.
    small = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
    answers = _exchange(stack, small + small + _get(b"X-Pad: " + b"a" * MAX_HEAD_BYTES + b"\r\n"))
    assert answers.count(b"HTTP/1.1 200 ") == 2 and b"HTTP/1.1 431 " in answers, answers[:600]

    before = _rss_kib(stack.api.pid)
    refused = _exchange(stack, b"GET /health HTTP/1.1\r\nHost: x\r\nX-Pad: ",
                        then=64 * 1024 * 1024)
    assert refused.startswith(b"HTTP/1.1 431 "), refused[:200]
    grown = _rss_kib(stack.api.pid) - before
    assert grown < 16 * 1024, f"a 64 MiB header grew the process by {grown} KiB"
    assert httpx.get(f"{stack.url}/health", timeout=5).status_code == 200


def test_health_answers_promptly_while_bomb_requests_run(stack: Stack):
    # The reply box prefill of a post of 49,000 characters of unclosed quote tags once
    # took seconds of CPU on the event loop; bodies full of tags go through the writes.
    with httpx.Client(base_url=stack.url, timeout=30) as http:
        r = http.post("/api/forums", json={"slug": "bombs", "title": "B"}, headers=OPERATOR)
        assert r.status_code == 201, r.text
        r = http.post("/api/forums/bombs/threads", json={
            "title": "t", "body": "[quote=" * (GROWTH * SIZE // 7), "guest_name": "g"})
        assert r.status_code == 201, r.text
        thread, post = r.json()["thread_id"], r.json()["post_id"]
        deadline = time.monotonic() + 30
        while http.get(f"/api/posts/{post}").status_code != 200:
            assert time.monotonic() < deadline, "the worker did not project the post"
            time.sleep(0.1)

    done = threading.Event()
    bombs: list[int] = []

    def bomb() -> None:
        with httpx.Client(base_url=stack.url, timeout=60) as http:
            while not done.is_set():
                r = http.get(f"/threads/{thread}?quote={post}")
                bombs.append(r.status_code)
                r = http.post(f"/api/threads/{thread}/posts", json={
                    "body": "[b]x[/b][quote=a]" * (GROWTH * SIZE // 17), "guest_name": "g"})
                bombs.append(r.status_code)

    runner = threading.Thread(target=bomb)
    runner.start()
    waits: list[float] = []
    try:
        with httpx.Client(base_url=stack.url, timeout=10) as http:
            end = time.monotonic() + 3
            while time.monotonic() < end:
                start = time.monotonic()
                assert http.get("/health").status_code == 200
                waits.append(time.monotonic() - start)
                time.sleep(0.02)
    finally:
        done.set()
        runner.join()
    assert max(waits) < PROMPT, f"/health took {max(waits):.2f} s while bombs ran"
    assert len(bombs) >= 2 and all(status < 500 for status in bombs), bombs
