"""Search on a board of N posts (default 1,000,000): queries/s and latency (p50, p99) of
one-word, phrase, prefix and filtered searches as ``GET /api/search`` runs them
(``SearchReads.search``: the newest 1,000 matches ranked and counted, the page's
snippets), each beside its physical limit measured in the same round: a raw ``SELECT`` of
the documents of the same newest matches on the same indexes (what any answer that ranks
them must at least read).

    .venv/bin/python bench/search.py [--posts 1000000] [--rounds 5] [--seconds 2]
                                     [--keep | --database forum_bench_...]

The log is generated in SQL (8 sections, threads of 20 posts, 5,000 authors; bodies of 30
words drawn from a 5,000-word vocabulary with a skew, so words range from rare to in most
posts), then the search model is built from it by the real build (``forum replay
search``), which is timed too, with the length of its transactions: each holds the log's
read horizon while it runs (workers/search/sink.py).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.measure import machine, median, paired_ratio, percentile, print_table
from bench.world import PG_ADMIN_URL, create_database, drop_database, log, with_db
from events.postgres import PostgresEventStore, create_pool
from workers.readmodels.search import CANDIDATES, SEARCH_SETTINGS, SearchReads, terms, tsquery
from workers.search import follow, sink

POSTS_PER_THREAD = 20
VOCABULARY = 5000
WORDS_PER_POST = 30

# Words: ``w`` and a hex number, so that prefixes are shared by tens of words. Rank r
# (1 = most used) is drawn with probability ~ (r/V)^(1/3) - ((r-1)/V)^(1/3): the first
# words are in most posts, words past a thousand in a few thousand. Deterministic.
_GENERATE = f"""
SELECT setseed(0.17);
CREATE TEMP TABLE vocabulary AS
    SELECT i AS rank, 'w' || lower(to_hex(i * 2654435761 % 4294967291)) AS word
    FROM generate_series(1, {VOCABULARY}) i;
ALTER TABLE vocabulary ADD PRIMARY KEY (rank);
CREATE TEMP TABLE bodies AS
    SELECT w.p, string_agg(v.word, ' ' ORDER BY w.g) AS body
    FROM (SELECT p, g, 1 + floor(pow(random(), 3) * {VOCABULARY})::int AS rank
          FROM generate_series(1, $1 * {POSTS_PER_THREAD}) p,
               generate_series(1, {WORDS_PER_POST}) g) w
    JOIN vocabulary v USING (rank) GROUP BY w.p;
ALTER TABLE bodies ADD PRIMARY KEY (p);
INSERT INTO events (position, stream_id, version, type, data)
SELECT f + 1, 'forum-f' || f, 1, 'forum_created',
       jsonb_build_object('type', 'forum_created', 'occurred_at', timestamptz '2010-01-01',
                          'actor', 'operator', 'slug', 'f' || f, 'title', 'Section ' || f)
FROM generate_series(0, 7) f;
WITH threads AS (
    SELECT t, 'f' || (t % 8) AS forum, timestamptz '2011-01-01' + t * interval '37 minutes' AS at,
           (SELECT word FROM vocabulary WHERE rank = 1 + (t * 31) % 3000) AS topic
    FROM generate_series(1, $1) t
), posts AS (
    SELECT th.t, th.forum, n, th.at + n * interval '3 minutes' AS at,
           'user' || ((th.t * 7 + n * 13) % 5000) AS author, b.body
    FROM threads th CROSS JOIN generate_series(1, {POSTS_PER_THREAD}) n
    JOIN bodies b ON b.p = (th.t - 1) * {POSTS_PER_THREAD} + n
), rows AS (
    SELECT t, 0 AS n, 0 AS k, 'thread_started' AS type,
           jsonb_build_object('type', 'thread_started', 'occurred_at', at,
               'actor', 'user' || (t % 5000), 'thread_id', t, 'forum', forum,
               'title', 'Thread ' || t || ' about ' || topic,
               'author', 'user' || (t % 5000), 'guest', true) AS data
    FROM threads
    UNION ALL
    SELECT t, n, 1, 'post_added',
           jsonb_build_object('type', 'post_added', 'occurred_at', at, 'actor', author,
               'thread_id', t, 'forum', forum, 'post_id', t * 100 + n, 'number', n,
               'author', author, 'guest', true, 'op', n = 1, 'first_reply', n = 2,
               'body', body)
    FROM posts
    UNION ALL
    SELECT t, n, 2, 'thread_bumped',
           jsonb_build_object('type', 'thread_bumped', 'occurred_at', at, 'actor', author,
               'thread_id', t, 'forum', forum, 'reason', 'reply')
    FROM posts WHERE n > 1
)
INSERT INTO events (position, stream_id, version, type, data)
SELECT row_number() OVER (ORDER BY t, n, k) + 1000, 'thread-' || t,
       row_number() OVER (PARTITION BY t ORDER BY n, k), type, data
FROM rows;
"""

def raw_candidates(query: str, filters: dict[str, str]) -> str:
    """The raw SELECT: the documents of the same newest ``CANDIDATES + 1`` matches (same
    filters), read and nothing else: what any answer that ranks them must at least do.
    Values are written in, so PostgreSQL plans it for them; the bench's own values need no
    more quoting than this."""
    def literal(value: str) -> str:
        return "'" + value.replace("'", "''") + "'"

    sql = ("SELECT count(document) FROM (SELECT document FROM search.posts"
           f" WHERE document @@ to_tsquery('simple', {literal(query)})")
    if "forum" in filters:
        sql += f" AND forum = {literal(filters['forum'])}"
    if "author" in filters:
        sql += f" AND lower(author) = lower({literal(filters['author'])})"
    return sql + f" ORDER BY post_id DESC LIMIT {CANDIDATES + 1}) newest"



async def build(store: PostgresEventStore, pool: Any) -> dict[str, float]:
    """``forum replay search`` on the generated log, timed, with each page's transaction
    timed (the time it holds the log's read horizon)."""
    held: list[float] = []
    commit = sink.commit

    async def timed(*args: Any) -> bool:
        started = time.perf_counter()
        try:
            return await commit(*args)
        finally:
            held.append(time.perf_counter() - started)

    follow.commit = timed  # type: ignore[attr-defined,assignment]
    try:
        started = time.perf_counter()
        await follow.replay(store, pool)
        seconds = time.perf_counter() - started
    finally:
        follow.commit = commit  # type: ignore[attr-defined]
    return {"seconds": seconds, "p50": percentile(held, 50), "p99": percentile(held, 99),
            "max": max(held), "pages": len(held)}


async def timed_loop(call: Callable[[], Awaitable[Any]], seconds: float) -> list[float]:
    """Latencies of ``call()`` run back to back for ``seconds`` (at least 3 calls)."""
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or len(latencies) < 3:
        started = time.perf_counter()
        await call()
        latencies.append(time.perf_counter() - started)
    return latencies


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--posts", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=2.0,
                        help="each side of each measure, per round")
    parser.add_argument("--database", help="a board this bench built before and kept "
                        "(--keep): measure it again, without generating or building")
    parser.add_argument("--keep", action="store_true", help="keep the database")
    args = parser.parse_args()
    threads = max(1, args.posts // POSTS_PER_THREAD)
    name = args.database or await create_database()
    url = with_db(PG_ADMIN_URL, name)
    pool = await create_pool(url, min_size=1, max_size=4, server_settings=SEARCH_SETTINGS)
    try:
        built: dict[str, float] | None = None
        if args.database:
            store = PostgresEventStore(pool)
            events = await pool.fetchval("SELECT count(*) FROM events")
        else:
            store, built, events = await generate(pool, url, threads)
        async with pool.acquire() as conn:
            posts = await conn.fetchval("SELECT count(*) FROM search.posts")
            common, medium, rare = await _words(conn)
            phrase = await _phrase(conn, medium)
        log(f"{posts:,} posts; words {common}, {medium}, {rare}; phrase {phrase!r}")
        await measure(args, pool, store, posts, events, built, (common, medium, rare, phrase))
    finally:
        await pool.close()
        if args.keep or args.database:
            log(f"kept database {name}")
        else:
            await drop_database(name)


async def generate(pool: Any, url: str, threads: int
                   ) -> tuple[PostgresEventStore, dict[str, float], int]:
    """The board, generated in SQL, and its search model built by the real build."""
    log(f"generating {threads:,} threads of {POSTS_PER_THREAD} posts")
    conn = await asyncpg.connect(url)  # no command timeout: this takes a while
    try:
        await conn.execute(_GENERATE.replace("$1", str(threads)))
        await conn.execute("VACUUM ANALYZE events")
        events = await conn.fetchval("SELECT count(*) FROM events")
    finally:
        await conn.close()
    store = PostgresEventStore(pool)
    log(f"{events:,} events; building the search model (forum replay search)")
    built = await build(store, pool)
    async with pool.acquire() as conn:
        await conn.execute("VACUUM ANALYZE search.posts_1")  # what autovacuum would do
    log(f"built in {built['seconds']:.1f} s")
    return store, built, events


async def measure(args: Any, pool: Any, store: PostgresEventStore, posts: int, events: int,
                  built: dict[str, float] | None, words: tuple[str, str, str, str]) -> None:
    common, medium, rare, phrase = words
    reads = SearchReads(pool, store, per_page=25, min_position_wait=2.0)
    cases: list[tuple[str, str, dict[str, str]]] = [
        (f"one word, rare ({rare})", rare, {}),
        (f"one word, medium ({medium})", medium, {}),
        (f'phrase ("{phrase}")', f'"{phrase}"', {}),
        (f"prefix ({medium[:3]}*)", f"{medium[:3]}*", {}),
        (f"medium word in one section of 8 ({medium} forum=f3)", medium, {"forum": "f3"}),
        (f"medium word by one author ({medium} author=user42)", medium,
         {"author": "user42"}),
        (f"one word in most posts ({common})", common, {}),
    ]
    results: dict[str, dict[str, list[float]]] = {
        label: {"ours": [], "raw": [], "ratio": [], "lat": [], "total": []}
        for label, _, _ in cases}
    for round_ in range(args.rounds):
        for index, (label, q, filters) in enumerate(cases):
            raw_sql = raw_candidates(tsquery(terms(q)), filters)

            async def ours(q: str = q, filters: dict[str, str] = filters) -> Any:
                return await reads.search(q, forum=filters.get("forum"),
                                          author=filters.get("author"))

            async def raw(sql: str = raw_sql) -> Any:
                return await pool.fetchval(sql)

            sides: list[tuple[str, Callable[[], Awaitable[Any]]]] = [
                ("ours", ours), ("raw", raw)]
            if (round_ + index) % 2:
                sides.reverse()  # order alternates: drift hits both sides alike
            measured = {}
            for side, call in sides:
                latencies = await timed_loop(call, args.seconds)
                measured[side] = len(latencies) / sum(latencies)
                if side == "ours":
                    results[label]["lat"] += latencies
            row = results[label]
            row["ours"].append(measured["ours"])
            row["raw"].append(measured["raw"])
            row["ratio"].append(measured["ours"] / measured["raw"])
            if not row["total"]:
                try:
                    page = (await ours()).page
                    row["total"].append(page.total + (0.5 if page.more else 0))
                except Exception as error:  # the timeout: say so in the table
                    log(f"{label}: {error}")
                    row["total"].append(-1)
        log(f"round {round_ + 1}: " + ", ".join(
            f"{label.split(' (')[0]} {results[label]['ratio'][-1]:.2f}"
            for label, _, _ in cases))

    def matches(total: float) -> str:
        return f"{int(total):,}" + ("+" if total % 1 else "")

    print_table(
        f"search on {posts:,} posts ({events:,} events), one client, median of "
        f"{args.rounds} rounds of {args.seconds:g} s a side ({machine()})",
        ["query", "matches ranked", "search/s", "p50 ms", "p99 ms", "raw newest/s",
         "search / raw"],
        [[label, matches(row["total"][0]), f"{median(row['ours']):,.1f}",
          f"{percentile(row['lat'], 50) * 1000:,.1f}",
          f"{percentile(row['lat'], 99) * 1000:,.1f}", f"{median(row['raw']):,.1f}",
          f"{paired_ratio(row['ours'], row['raw']):.2f}"]
         for label, row in results.items()],
        notes=["search: SearchReads.search, what GET /api/search runs (the newest "
               f"{CANDIDATES:,} matches ranked and counted, a page of 25 with snippets), "
               "through a pool that plans each run for its values",
               f"raw: the documents of the same newest {CANDIDATES + 1:,} matches (same "
               "tsquery and filter, same indexes), read and counted, values written in",
               "matches ranked: N+ when there were more (the answer says `more`)"],
    )
    if built is not None:
        print_table(
            "building the search model from the log (forum replay search)",
            ["measure", "value"],
            [["posts", f"{posts:,}"], ["events read", f"{events:,}"],
             ["seconds", f"{built['seconds']:,.1f}"],
             ["events/s", f"{events / built['seconds']:,.0f}"],
             ["pages (transactions)", f"{int(built['pages']):,}"],
             ["a page's transaction, p50 ms", f"{built['p50'] * 1000:,.1f}"],
             ["a page's transaction, p99 ms", f"{built['p99'] * 1000:,.1f}"],
             ["a page's transaction, max ms", f"{built['max'] * 1000:,.1f}"]],
        )


async def _words(conn: Any) -> tuple[str, str, str]:
    """Words by how many posts hold them: in most, in a few percent, in a few thousand."""
    vocabulary = await conn.fetchval(
        f"SELECT array_agg('w' || lower(to_hex(i * 2654435761 % 4294967291)) ORDER BY i)"
        f" FROM generate_series(1, {VOCABULARY}) i")
    return vocabulary[0], vocabulary[49], vocabulary[1999]  # ranks 1, 50 and 2,000


async def _phrase(conn: Any, word: str) -> str:
    """Two words side by side somewhere: ``word`` and the word after it in one post."""
    body = await conn.fetchval(
        "SELECT body FROM search.posts WHERE document @@ to_tsquery('simple', $1)"
        " ORDER BY post_id LIMIT 1", word)
    words = body.split()
    at = words.index(word)
    return " ".join(words[at: at + 2]) if at + 1 < len(words) else " ".join(words[at - 1: at + 1])


if __name__ == "__main__":
    asyncio.run(main())
