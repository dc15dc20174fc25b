"""Load generators for the read benchmarks: wrk when installed, else an asyncio keep-alive
client; and ``RawHttp``, a lean client for benchmarks that send their own requests."""

from __future__ import annotations

import asyncio
import math
import re
import shutil
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from measure import percentile

# -- load generation ----------------------------------------------------------------------

@dataclass
class LoadResult:
    requests: int
    seconds: float
    errors: int
    p50_ms: float | None = None
    p99_ms: float | None = None

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def have_wrk() -> bool:
    return shutil.which("wrk") is not None


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    if not match:
        return math.nan
    return float(match[1]) * _UNITS[match[2]]


def wrk(url: str, *, connections: int, seconds: float, threads: int = 1,
        headers: Iterable[str] = ()) -> LoadResult:
    """GET ``url`` with wrk (keep-alive, ``connections`` open at once)."""
    argv = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s",
            "--latency", "--timeout", "5s"]
    for header in headers:
        argv += ["-H", header]
    out = subprocess.run([*argv, url], capture_output=True, text=True, timeout=seconds + 30,
                         check=True).stdout
    requests = int(re.search(r"(\d+) requests in", out)[1])  # type: ignore[index]
    took = re.search(r"requests in ([\d.]+\w+),", out)[1]  # type: ignore[index]
    errors = 0
    if m := re.search(r"Non-2xx or 3xx responses: (\d+)", out):
        errors += int(m[1])
    if m := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                      out):
        errors += sum(int(x) for x in m.groups())
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.M)
    return LoadResult(requests, _ms(took) / 1000, errors, _ms(p50[1]) if p50 else None,
                      _ms(p99[1]) if p99 else None)


async def read_answer(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """One HTTP/1.1 answer off a keep-alive connection: its status and body. The benchmark
    clients need Content-Length (every route of the service sends it)."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", head)
    if length is None:
        raise RuntimeError("the benchmark's HTTP client needs Content-Length")
    return int(head.split(b" ", 2)[1]), await reader.readexactly(int(length[1]))


async def _keepalive_worker(host: str, port: int, request: bytes, stop_at: float,
                            latencies: list[float], errors: list[int]) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.perf_counter() < stop_at:
            start = time.perf_counter()
            writer.write(request)
            status, _ = await read_answer(reader)
            latencies.append(time.perf_counter() - start)
            if status >= 300:
                errors[0] += 1
    finally:
        writer.close()


async def keepalive_load(url: str, *, connections: int, seconds: float,
                         headers: Iterable[str] = ()) -> LoadResult:
    """The fallback load generator when wrk is missing: asyncio raw-socket keep-alive GETs
    (much slower than wrk; used for both sides alike, so ratios stay comparable)."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    request = (f"GET {target} HTTP/1.1\r\nHost: {host}:{port}\r\n"
               + "".join(f"{h}\r\n" for h in headers) + "\r\n").encode()
    latencies: list[float] = []
    errors = [0]
    start = time.perf_counter()
    stop_at = start + seconds
    await asyncio.gather(*(_keepalive_worker(host, port, request, stop_at, latencies, errors)
                           for _ in range(connections)))
    took = time.perf_counter() - start
    return LoadResult(len(latencies), took, errors[0],
                      percentile(latencies, 50) * 1000, percentile(latencies, 99) * 1000)


class RawHttp:
    """A lean asyncio HTTP/1.1 keep-alive client (a few tens of microseconds of CPU per
    request; httpx takes about a millisecond, and its pool slows down badly with hundreds
    of connections in flight). Idle connections are reused; a reused connection that the
    server closed meanwhile is retried once on a new one. Needs Content-Length answers."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        # (reader, writer, last used): uvicorn closes keep-alive connections idle for 5 s
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter, float]] = []

    async def _connection(self, fresh: bool
                          ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, bool]:
        while self._idle and not fresh:
            reader, writer, used = self._idle.pop()
            if time.monotonic() - used < 3.0 and not reader.at_eof():
                return reader, writer, True
            writer.close()
        reader, writer = await asyncio.open_connection(self.host, self.port)
        return reader, writer, False

    async def request(self, method: str, path: str, body: bytes = b"",
                      headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        head = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        if body:
            head += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
        head += [f"{k}: {v}" for k, v in (headers or {}).items()]
        raw = ("\r\n".join(head) + "\r\n\r\n").encode() + body
        for attempt in range(2):
            reader, writer, reused = await self._connection(fresh=attempt > 0)
            try:
                writer.write(raw)
                status, content = await read_answer(reader)
            except (ConnectionError, asyncio.IncompleteReadError):
                writer.close()
                if reused:
                    continue
                raise
            self._idle.append((reader, writer, time.monotonic()))
            return status, content
        raise ConnectionError("the server keeps closing connections")

    async def close(self) -> None:
        for _, writer, _ in self._idle:
            writer.close()
        self._idle.clear()


async def load(url: str, *, connections: int, seconds: float,
               headers: Iterable[str] = ()) -> LoadResult:
    if have_wrk():
        return await asyncio.to_thread(wrk, url, connections=connections, seconds=seconds,
                                       headers=headers)
    return await keepalive_load(url, connections=connections, seconds=seconds, headers=headers)
