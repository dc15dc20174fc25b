"""Known bombs for text parsers, and the measure of how their cost grows.

Each bomb is a function of a size ``n`` (about ``n`` characters). A parser that is linear
costs about 4 times as much at ``4n`` as at ``n``; a quadratic one 16 times. Tests compare
the two (CPU time, median of a few runs) and allow well under quadratic: a ratio, never a
wall-clock limit, so a loaded machine does not fail them.
"""

from __future__ import annotations

import contextlib
import gc
import statistics
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import httpx

from service.web import csrf
from tests.forms import any_token

SIZE = 12_000  # n; 4n = 48,000 stays under the 50,000-character body limit
GROWTH = 4
LIMIT = GROWTH * 2.5  # linear is ~4 (less with a fixed cost per request); quadratic ~16


def _post_spaces(n: int) -> str:
    # Distinct tags (the renderer caches by tag text) whose post= option backtracked.
    return "".join(f"[quote=a{i} post=" + " " * 1000 + "x y]" for i in range(n // 1030))


BOMBS: dict[str, Callable[[int], str]] = {
    "nested closed quotes": lambda n: "[quote=a]" * (n // 18) + "x" + "[/quote]" * (n // 18),
    "unclosed quote openers": lambda n: "[quote=a]" * (n // 9),
    "unfinished quote tags": lambda n: "[quote=" * (n // 7),
    "quote then closers": lambda n: "[quote]x" * (n // 16) + "[/quote]" * (n // 16),
    "tens of thousands of tags": lambda n: "[b]x[/b][i]y[/i]" * (n // 16),
    "url bomb": lambda n: "[url=http://e.example/]" * (n // 23),
    "unclosed urls": lambda n: "[url]" * (n // 5) + "[/url]",
    "quote post= backtracking": _post_spaces,
    "long quote tags": lambda n: "".join(f"[quote=a{i} post=" + " " * (n // 25) + "x y]"
                                         for i in range(24)),
    "run of [": lambda n: "[" * n,
    "run of & and <": lambda n: "&<" * (n // 2),
    "run of backslashes": lambda n: "\\" * n,
    "combining marks": lambda n: "a" + "\u0301\u0316" * (n // 2),
    "control and invisible characters": lambda n: "a\u200b\u0000\u202e\ufeff\u2028" * (n // 6),
    "one huge word": lambda n: "w" * n,
    "huge number": lambda n: "9" * n,
    "newlines between tags": lambda n: "[b]\n[/b]\n" * (n // 10),
    "spaces": lambda n: "a" + " " * n + "b",
}

XSS = [
    "<script>alert(1)</script>",
    '<img src=x onerror="alert(1)">',
    "[url=javascript:alert(1)]click[/url]",
    "[url]javascript:alert(1)[/url]",
    '[url=http://x.example/" onmouseover="alert(1)]x[/url]',
    "[url=http://x.example/><script>alert(1)</script>]x[/url]",
    '[quote=<script>alert(1)</script> post=1]x[/quote]',
    '[quote="><svg onload=alert(1)>]x[/quote]',
    "[b onclick=alert(1)]x[/b]",
    "[url=data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==]x[/url]",
    "[url= JaVaScRiPt:alert(1)]x[/url]",
]
SQL = ["'; DROP TABLE events; --", "1 OR 1=1", "\\'; SELECT pg_sleep(10); --"]


@contextlib.contextmanager
def _no_gc() -> Iterator[None]:
    """A collection of the whole heap is a cost of the test process, not of the input:
    keep it out of the measure (reference counting still frees nearly everything)."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def seconds(run: Callable[[], Any], repeat: int = 5) -> float:
    """Median CPU seconds of this process for one ``run()``; calls shorter than a few
    milliseconds are repeated within each sample, so that clock noise does not decide."""
    with _no_gc():
        start = time.process_time()
        run()
        loops = max(1, min(1000, int(0.003 / max(time.process_time() - start, 1e-6))))
        samples = []
        for _ in range(repeat):
            start = time.process_time()
            for _ in range(loops):
                run()
            samples.append((time.process_time() - start) / loops)
    return statistics.median(samples)


async def growth(send: Callable[[int], Awaitable[httpx.Response]], n: int = SIZE,
                 repeat: int = 3) -> tuple[float, list[httpx.Response]]:
    """How much more CPU (this process: the in-process app and its client) a request
    costs at ``4n`` than at ``n``, sizes interleaved so that drift hits both alike; and
    every answer, for the caller to check."""
    small: list[float] = []
    large: list[float] = []
    answers: list[httpx.Response] = []
    with _no_gc():
        for _ in range(repeat):
            for size, into in ((n, small), (GROWTH * n, large)):
                start = time.process_time()
                answers.append(await send(size))
                into.append(time.process_time() - start)
    return statistics.median(large) / max(statistics.median(small), 1e-4), answers


def not_5xx(answers: list[httpx.Response], what: object) -> None:
    """Never a 5xx; and never a 403 either: a request refused at the door (CSRF, a ban)
    would measure the refusal, not the parsing of the bomb."""
    for answer in answers:
        assert answer.status_code < 500, (what, answer.status_code, answer.text[:300])
        assert answer.status_code != 403, (what, answer.text[:300])


async def form_post(client: httpx.AsyncClient, path: str, data: dict[str, str] | bytes,
                    content_type: str = "application/x-www-form-urlencoded",
                    ) -> httpx.Response:
    """Every HTML form post of this suite goes through here: fields, or a raw body already
    encoded as ``content_type``, sent as a browser would, with the client's CSRF token (the
    value of its CSRF cookie, fetched with a form page the first time; in the header, so
    that raw bodies need not hold it). Redirects are not followed: the page after a post
    waits for the projections."""
    token = client.cookies.get(csrf.COOKIE) or await any_token(client)
    headers = {"x-csrftoken": token}
    if isinstance(data, bytes):
        return await client.post(path, content=data,
                                 headers={**headers, "content-type": content_type},
                                 follow_redirects=False)
    return await client.post(path, data=data, headers=headers, follow_redirects=False)
