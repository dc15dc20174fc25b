"""Read throughput: thread pages and a section listing from a real ``forum serve``, beside
the same bytes served from memory by a minimal Litestar app (bench/baseline_app.py), and
each HTML page beside the JSON page of the same content.

    .venv/bin/python bench/read.py [--rounds 5] [--seconds 3] [--workers 1,2]
                                   [--connections 16] [--only baseline|html]

Seeds a section with one 1,000-post thread and 60 short threads (through the domain
functions and ``PostgresEventStore.append``, the events the service itself appends) and
projects them in-process (``Live.tick()`` until caught up). Three pages are loaded:
the first and the last page of the 1,000-post thread (25 posts a page) and the section's
first page of threads. Load comes from one generator for every side (wrk if installed, else
an asyncio keep-alive client). Every figure is the median of ``--rounds`` rounds; within a
round the two sides of a ratio run back to back, in alternating order, and the ratio is the
median of the per-round ratios.

baseline: for each worker count, ``forum serve --workers N`` and the baseline app under
uvicorn with the same N answer the JSON pages (``/api/threads/{id}?page=N``,
``/api/forums/bench/threads``); the baseline answers with the very bytes the service
answered (checked before measuring). Target: >= 0.6 of the baseline.

html: the HTML pages (``/threads/{id}?page=N``, ``/forums/bench``) beside the JSON pages of
the same content, both from the same ``forum serve`` run, once with the answer cache on
(``FORUM_PAGE_CACHE_MS`` at its default) and once off (``FORUM_PAGE_CACHE_MS=0``, a second
server start). HTML is asked for as a guest without cookies (the page sets a CSRF cookie;
the load generator ignores it). Before measuring, each HTML answer is checked to be a 200
``text/html`` page holding every post (or thread) of its JSON page, so a broken page
cannot pass as fast. Target: every HTML page >= 0.5 of its JSON page, cache on and off.

Both parts also print the server's CPU microseconds per request (from /proc; other load on
the machine does not inflate it). Abuse limits are off as in the other benches (reads are
not limited anyway).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import re
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
from http_load import (
    have_wrk,
    load,
)
from measure import (
    CpuMeter,
    fmt,
    machine,
    median,
    paired_ratio,
    print_table,
)
from redis.asyncio import Redis
from world import (
    REDIS_URL,
    Env,
    Proc,
    bench_env,
    log,
    project_all,
    seed_forum,
    seed_thread,
)

from events.postgres import PostgresEventStore, create_pool

POSTS = 1000
OTHER_THREADS = 60
PER_PAGE = 25
SECTION = "bench"
LIMITS_OFF = {"rate_limits": "off"}


@dataclass
class Runs:
    """One side's figures, a value per round."""

    rps: list[float] = field(default_factory=list)
    p99_ms: list[float] = field(default_factory=list)
    cpu_us: list[float] = field(default_factory=list)  # the server's, per request
    redis_us: list[float] = field(default_factory=list)  # the shared Redis's, per request


@dataclass(frozen=True)
class Side:
    label: str
    url: str  # the whole URL loaded
    proc: Proc  # the server answering it


@dataclass(frozen=True)
class Pages:
    """The three pages, by name: the JSON path and the HTML path of the same content."""

    big: int

    @property
    def last(self) -> int:
        return -(-POSTS // PER_PAGE)

    def json(self) -> dict[str, str]:
        return {"thread page 1": f"/api/threads/{self.big}?page=1",
                f"thread page {self.last} (last)": f"/api/threads/{self.big}?page={self.last}",
                "section page": f"/api/forums/{SECTION}/threads"}

    def html(self) -> dict[str, str]:
        return {"thread page 1": f"/threads/{self.big}?page=1",
                f"thread page {self.last} (last)": f"/threads/{self.big}?page={self.last}",
                "section page": f"/forums/{SECTION}"}

    def baseline_keys(self) -> dict[str, str]:
        """Where bench/baseline_app.py looks each JSON page up."""
        return {"thread page 1": f"thread:{self.big}:1",
                f"thread page {self.last} (last)": f"thread:{self.big}:{self.last}",
                "section page": f"forum:{SECTION}:1"}


async def seed(env: Env) -> int:
    pool = await create_pool(env.database_url, min_size=1, max_size=2)
    try:
        store = PostgresEventStore(pool)
        await seed_forum(store, SECTION, "Bench")
        for _ in range(OTHER_THREADS // 2):
            await seed_thread(store, SECTION, 1)
        big = await seed_thread(store, SECTION, POSTS - 1)
        for _ in range(OTHER_THREADS - OTHER_THREADS // 2):
            await seed_thread(store, SECTION, 1)
    finally:
        await pool.close()
    await project_all(env)
    return big


async def redis_pid() -> int | None:
    redis = Redis.from_url(REDIS_URL)
    try:
        info = await redis.info("server")
        return int(info["process_id"])
    except Exception:
        return None
    finally:
        await redis.aclose()


async def measure_pairs(pairs: dict[str, tuple[Side, Side]], args: argparse.Namespace,
                        parents: dict[str, int | None], tag: str
                        ) -> dict[str, tuple[Runs, Runs]]:
    """``--rounds`` rounds; in each, every page's two sides back to back, the order
    alternating between rounds."""
    out = {name: (Runs(), Runs()) for name in pairs}
    for rnd in range(args.rounds):
        for name, (a, b) in pairs.items():
            sides = [(a, out[name][0]), (b, out[name][1])]
            if rnd % 2:
                sides.reverse()
            for side, runs in sides:
                meter = CpuMeter(groups={"server": side.proc.pid}, parents=parents)
                meter.start()
                res = await load(side.url, connections=args.connections, seconds=args.seconds)
                use = meter.stop()
                if res.errors:
                    raise RuntimeError(f"{side.label} {name}: {res.errors} errors")
                # CPU microseconds per request: robust to the machine's other load, which
                # steals whole cores from either side
                per = 1e4 / res.rps if res.rps else math.nan
                runs.rps.append(res.rps)
                runs.p99_ms.append(res.p99_ms or 0)
                runs.cpu_us.append(use["server"] * per)
                runs.redis_us.append(use.get("redis", 0) * per)
            first, second = out[name]
            log(f"{tag} round {rnd + 1} {name}: {a.label} {first.rps[-1]:,.0f}/s, "
                f"{b.label} {second.rps[-1]:,.0f}/s")
    return out


def rows_of(results: dict[str, tuple[Runs, Runs]], leading: list[object]) -> list[list[object]]:
    rows: list[list[object]] = []
    for name, (a, b) in results.items():
        ca, cb = median(a.cpu_us), median(b.cpu_us)
        rows.append([name, *leading, fmt(median(a.rps)), fmt(median(b.rps)),
                     fmt(paired_ratio(a.rps, b.rps), 2), fmt(median(a.p99_ms), 1),
                     fmt(median(b.p99_ms), 1), fmt(ca), fmt(cb), fmt(cb / ca, 2),
                     fmt(median(a.redis_us)), fmt(median(b.redis_us))])
    return rows


async def baseline_part(env: Env, pages: Pages, workers: int, args: argparse.Namespace,
                        parents: dict[str, int | None]) -> list[list[object]]:
    """The JSON pages from ``forum serve`` vs the same bytes from the baseline app."""
    api, api_url = await env.start_api(workers=workers, **LIMITS_OFF)
    try:
        folder = Path(tempfile.mkdtemp(prefix="pages-", dir=env.logdir))
        index = {}
        keys = pages.baseline_keys()
        async with httpx.AsyncClient(base_url=api_url) as client:
            for i, (name, path) in enumerate(pages.json().items()):
                r = await client.get(path)
                r.raise_for_status()
                (folder / f"{i}.json").write_bytes(r.content)
                index[keys[name]] = {"file": f"{i}.json", "headers": {
                    "X-Projection-Position": r.headers["x-projection-position"]}}
                log(f"{name}: {len(r.content):,} bytes")
        (folder / "index.json").write_text(json.dumps(index))
        base, base_url = await env.start_baseline(folder, workers=workers)
        try:
            async with httpx.AsyncClient() as client:
                for name, path in pages.json().items():
                    a = (await client.get(api_url + path)).content
                    b = (await client.get(base_url + path)).content
                    assert a == b, f"baseline bytes differ for {name}"
            pairs = {name: (Side("api", api_url + path, api), Side("baseline", base_url + path,
                                                                    base))
                     for name, path in pages.json().items()}
            results = await measure_pairs(pairs, args, parents, f"baseline --workers {workers}")
        finally:
            env.stop(base)
    finally:
        env.stop(api)
    return rows_of(results, [workers])


def check_html(name: str, response: httpx.Response, content: dict[str, object]) -> None:
    """The HTML page is a 200 page holding every post (thread page) or thread (section
    page) of the JSON page of the same content, and nothing else in their place."""
    assert response.status_code == 200, f"{name}: HTML answered {response.status_code}"
    assert response.headers["content-type"].startswith("text/html"), name
    html = response.text
    if "posts" in content:
        ids = [p["id"] for p in content["posts"]]  # type: ignore[attr-defined]
        articles = len(re.findall(r'<article class="post', html))
        assert articles == len(ids), f"{name}: {articles} posts in the HTML, {len(ids)} in JSON"
        missing = [i for i in ids if f'id="p{i}"' not in html]
    else:
        ids = [t["id"] for t in content["threads"]]  # type: ignore[attr-defined]
        missing = [i for i in ids if f'href="/threads/{i}"' not in html]
    assert ids and not missing, f"{name}: HTML lacks {missing or 'everything'}"


async def html_part(env: Env, pages: Pages, workers: int, cache_ms: int,
                    args: argparse.Namespace, parents: dict[str, int | None]
                    ) -> list[list[object]]:
    """Each HTML page vs the JSON page of the same content, from one ``forum serve``."""
    api, url = await env.start_api(workers=workers, page_cache_ms=cache_ms, **LIMITS_OFF)
    cache = f"{cache_ms} ms" if cache_ms > 0 else "off"
    try:
        html, data = pages.html(), pages.json()
        async with httpx.AsyncClient(base_url=url) as client:  # a fresh client: no cookies
            for name in html:
                r = await client.get(data[name])
                r.raise_for_status()
                client.cookies.clear()
                page = await client.get(html[name])
                check_html(name, page, r.json())
                log(f"{name}: HTML {len(page.content):,} bytes, JSON {len(r.content):,}")
        pairs = {name: (Side("html", url + html[name], api), Side("json", url + data[name], api))
                 for name in html}
        results = await measure_pairs(pairs, args, parents,
                                      f"html --workers {workers} cache {cache}")
    finally:
        env.stop(api)
    return rows_of(results, [cache, workers])


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--workers", type=lambda s: [int(x) for x in s.split(",")],
                        default=[1, 2])
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--only", choices=["baseline", "html"],
                        help="run one part: JSON vs baseline, or HTML vs JSON")
    args = parser.parse_args()
    started = time.monotonic()
    generator = "wrk -t1" if have_wrk() else "asyncio keep-alive client"
    base_rows: list[list[object]] = []
    html_rows: list[list[object]] = []
    async with bench_env() as env:
        cache_default = env.settings().page_cache_ms
        log(f"seeding a {POSTS}-post thread and {OTHER_THREADS} short threads")
        pages = Pages(await seed(env))
        parents = {"redis": await redis_pid()}
        for workers in args.workers:
            if args.only in (None, "baseline"):
                base_rows += await baseline_part(env, pages, workers, args, parents)
            if args.only in (None, "html"):
                for cache_ms in (cache_default, 0):
                    html_rows += await html_part(env, pages, workers, cache_ms, args, parents)

    print(f"\nread benchmark — {machine()}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
          f"median of {args.rounds} rounds x {args.seconds:g} s, {generator}, "
          f"{args.connections} connections")
    pages_note = (f"thread: {POSTS} posts, {PER_PAGE} a page; section page: page 1 of "
                  f"{OTHER_THREADS + 1} threads")
    ratios_note = "req/s: medians of the rounds; ratio: median of the per-round ratios"
    cpu_note = ("us/req: CPU microseconds per request of the server's processes (and of the "
                "shared Redis server); CPU ratio = {b} us/req / {a} us/req: the ratio if CPU "
                "were the only limit (robust to other load on the machine)")
    if base_rows:
        print_table(
            "GET JSON through forum serve (Redis read models) vs the same bytes from memory, "
            "req/s",
            ["page", "workers", "forum serve", "baseline", "ratio", "p99 ms", "base p99 ms",
             "CPU us/req", "base us/req", "CPU ratio", "redis us/req", "base redis us/req"],
            base_rows,
            [pages_note, "baseline: bench/baseline_app.py under uvicorn, same worker count",
             ratios_note, cpu_note.format(a="forum serve", b="base"),
             "target: ratio >= 0.60"],
        )
    if html_rows:
        print_table(
            "GET the HTML page vs the JSON page of the same content, one forum serve, req/s",
            ["page", "cache", "workers", "HTML", "JSON", "ratio", "p99 ms", "JSON p99 ms",
             "CPU us/req", "JSON us/req", "CPU ratio", "redis us/req", "JSON redis us/req"],
            html_rows,
            [pages_note, f"cache: the answer cache, FORUM_PAGE_CACHE_MS={cache_default} (the "
             "default) or 0 (off), a server start each",
             "HTML as a guest without cookies, checked to hold every post / thread of its "
             "JSON page before measuring", ratios_note, cpu_note.format(a="HTML", b="JSON"),
             "target: ratio (HTML / JSON) >= 0.50 for every page, cache on and off"],
        )
    print(f"\ntook {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    asyncio.run(main())
