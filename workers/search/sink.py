"""The search model in PostgreSQL: its tables, its state, and the transactions that write
it (migration 0012 made the schema ``search`` and the state table ``search_models``).

* A **generation** is a pair of tables, ``search.posts_N`` (a document per visible post:
  its words, its thread's title on the opening post, weighted above the words) and
  ``search.threads_N`` (titles, for the results), built from the log by one build; the
  views ``search.posts`` and ``search.threads`` name the live pair, so readers' SQL never
  names a generation.
* **Exactly once.** A page of the log is written in one transaction with the generation's
  new checkpoint, and only if the checkpoint is still the one the page was read after
  (its row is locked and compared first): a second worker, a retried message or a crash
  between the two can apply nothing twice. The same transaction records the position of
  any erasure the page held (``erased``), which makes the generation stale.
* **Blue/green.** A build fills a new generation beside the live one; the swap makes it
  live, replaces the views and drops the old tables, in one transaction.
* **The log's read horizon.** Every transaction that writes here has a transaction id,
  and while it runs no reader of the log sees events appended after it started
  (events/postgres.py). So they are kept short: a page of events each, and the swap takes
  the readers' locks before it writes anything, with a ``lock_timeout``.

Language: ``simple`` (lower-cased words, no stemming, no stop words). A board's posts are
in any language, often several in one thread; an English stemmer would mangle the rest
and make a prefix search find stems instead of what was typed. Prefix search
(``word*``) covers most of what stemming gives.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import asyncpg

from workers.search.changes import Changes

CONFIG: Final = "simple"
VERSION: Final = 1
"""The shape of the tables and what they hold: a change is a new version, and the
workers build a generation of it beside the live one and swap it in."""
SWAP_LOCK_TIMEOUT: Final = "5s"  # longer than a search may run (workers/readmodels/search.py)


@dataclass(frozen=True)
class Model:
    """A generation as ``search_models`` holds it."""

    generation: int
    version: int
    born: int  # the log's head when its build started
    checkpoint: int
    erased: int  # the position of the last erasure it read (0: none)
    live: bool
    present: bool = True  # its tables exist (else it was lost: see ``commit``)

    @property
    def current(self) -> bool:
        """Built by this code: what it writes, it can write into."""
        return self.version == VERSION

    @property
    def stale(self) -> bool:
        """Built by other code, or from events an erasure has rewritten since."""
        return not self.current or self.erased > self.born


def needs_build(live: Model | None) -> bool:
    return live is None or live.stale or not live.present


def _posts(generation: int) -> str:
    return f"search.posts_{int(generation)}"


def _threads(generation: int) -> str:
    return f"search.threads_{int(generation)}"


def _create(generation: int) -> str:
    posts, threads = _posts(generation), _threads(generation)
    # New entries go to the GIN index's pending list and are merged in bulk when it
    # passes 128 kB: a build ran 1.7 times faster than with each write updating the index
    # itself (fastupdate off), and the merge, inside one write's transaction (which holds
    # the log's read horizon), stays short; at the default 4 MB it was hundreds of ms.
    return f"""
CREATE TABLE {threads} (
    thread_id bigint PRIMARY KEY,
    forum     text   NOT NULL,
    title     text   NOT NULL
);
CREATE TABLE {posts} (
    post_id    bigint      PRIMARY KEY,
    thread_id  bigint      NOT NULL,
    number     integer     NOT NULL,
    forum      text        NOT NULL,
    author     text        NOT NULL,
    guest      boolean     NOT NULL,
    created_at timestamptz NOT NULL,
    title      text        NOT NULL,  -- the thread's title on its opening post, else ''
    body       text        NOT NULL,  -- the post's own words (common/search_text.py)
    document   tsvector    GENERATED ALWAYS AS (
        setweight(to_tsvector('{CONFIG}', title), 'A')
        || setweight(to_tsvector('{CONFIG}', body), 'B')) STORED
);
CREATE INDEX ON {posts} USING gin (document)
    WITH (fastupdate = on, gin_pending_list_limit = 128);
CREATE INDEX ON {posts} (thread_id);
CREATE INDEX ON {posts} (forum);
CREATE INDEX ON {posts} (lower(author));
"""


_MODELS = """
SELECT generation, version, born, checkpoint, erased, live,
       to_regclass('search.posts_' || generation) IS NOT NULL
FROM search_models"""


async def models(conn: asyncpg.Connection | asyncpg.Pool) -> tuple[Model | None, Model | None]:
    """The live generation and the one being built (None: there is none)."""
    live = build = None
    for row in await conn.fetch(_MODELS):
        model = Model(*row)
        if model.live:
            live = model
        else:
            build = model
    return live, build


async def start_build(conn: asyncpg.Connection, born: int) -> Model:
    """A new, empty generation to build (any unfinished build is dropped)."""
    async with conn.transaction():
        old = await conn.fetchval(
            "SELECT generation FROM search_models WHERE NOT live FOR UPDATE")
        if old is not None:
            await _drop(conn, old)
        generation = int(await conn.fetchval("SELECT nextval('search.generations')"))
        await conn.execute(
            "INSERT INTO search_models (generation, version, born) VALUES ($1, $2, $3)",
            generation, VERSION, born)
        await conn.execute(_create(generation))
    return Model(generation, VERSION, born, 0, 0, live=False)


async def drop_build(conn: asyncpg.Connection) -> None:
    """Forget the unfinished build, if any (an interrupted ``forum replay``)."""
    async with conn.transaction():
        generation = await conn.fetchval(
            "SELECT generation FROM search_models WHERE NOT live FOR UPDATE")
        if generation is not None:
            await _drop(conn, generation)


async def _drop(conn: asyncpg.Connection, generation: int) -> None:
    await conn.execute("DELETE FROM search_models WHERE generation = $1", generation)
    await conn.execute(f"DROP TABLE IF EXISTS {_posts(generation)}, {_threads(generation)}")


class _MovedError(Exception):
    """The checkpoint is no longer the one the page was read after."""


async def commit(conn: asyncpg.Connection, model: Model, position: int, erased: int,
                 changes: Changes) -> bool:
    """Write ``changes`` (a page of the log up to ``position``) into ``model``'s tables
    with its new checkpoint, if its checkpoint is still ``model.checkpoint``; False (and
    nothing written) otherwise, or when the generation is gone (swapped out, dropped)."""
    try:
        async with conn.transaction():
            # Its tables before its row, as the swap takes them (no deadlock), and before
            # this transaction has an id: waiting for a swap holds no one's horizon.
            await conn.execute(f"LOCK TABLE {_posts(model.generation)},"
                               f" {_threads(model.generation)} IN ROW EXCLUSIVE MODE")
            at = await conn.fetchval(
                "SELECT checkpoint FROM search_models WHERE generation = $1 FOR UPDATE",
                model.generation)
            if at != model.checkpoint:
                raise _MovedError
            if changes:
                await _write(conn, model.generation, changes)
            await conn.execute(
                "UPDATE search_models SET checkpoint = $2, erased = greatest(erased, $3)"
                " WHERE generation = $1", model.generation, position, erased)
    except _MovedError:
        return False
    except asyncpg.UndefinedTableError:
        # Dropped by a swap meanwhile (its row went with it), or lost: a database put
        # together from parts (a logical replica's later generations, a hand's DROP). A
        # lost generation is forgotten, and the workers build another.
        await conn.execute(
            "DELETE FROM search_models WHERE generation = $1 AND to_regclass($2) IS NULL",
            model.generation, _posts(model.generation))
        return False
    return True


async def _write(conn: asyncpg.Connection, generation: int, changes: Changes) -> None:
    posts, threads = _posts(generation), _threads(generation)
    if changes.threads:
        ids = list(changes.threads)
        await conn.execute(
            f"INSERT INTO {threads} (thread_id, forum, title)"
            " SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[])",
            ids, [changes.threads[i][0] for i in ids], [changes.threads[i][1] for i in ids])
    if changes.posts:
        new = list(changes.posts.values())
        # The opening post's title comes from its thread's row: ThreadStarted comes first,
        # in this page (written just above) or an earlier one.
        await conn.execute(
            f"INSERT INTO {posts} (post_id, thread_id, number, forum, author, guest,"
            " created_at, title, body)"
            " SELECT p.post_id, p.thread_id, p.number, p.forum, p.author, p.guest,"
            " p.created_at, CASE WHEN p.number = 1 THEN coalesce("
            f"   (SELECT t.title FROM {threads} t WHERE t.thread_id = p.thread_id), '')"
            "   ELSE '' END, p.body"
            " FROM unnest($1::bigint[], $2::bigint[], $3::int[], $4::text[], $5::text[],"
            "   $6::bool[], $7::timestamptz[], $8::text[])"
            "   AS p(post_id, thread_id, number, forum, author, guest, created_at, body)",
            [p.post_id for p in new], [p.thread_id for p in new], [p.number for p in new],
            [p.forum for p in new], [p.author for p in new], [p.guest for p in new],
            [p.created_at for p in new], [p.text for p in new])
    if changes.edits:
        await conn.execute(
            f"UPDATE {posts} p SET body = e.body"
            " FROM unnest($1::bigint[], $2::text[]) AS e(post_id, body)"
            " WHERE p.post_id = e.post_id",
            list(changes.edits), list(changes.edits.values()))
    if changes.deletes:
        await conn.execute(f"DELETE FROM {posts} WHERE post_id = ANY($1::bigint[])",
                           list(changes.deletes))
    if changes.moves:
        for table in (posts, threads):
            await conn.execute(
                f"UPDATE {table} x SET forum = m.forum"
                " FROM unnest($1::bigint[], $2::text[]) AS m(thread_id, forum)"
                " WHERE x.thread_id = m.thread_id AND x.forum <> m.forum",
                list(changes.moves), list(changes.moves.values()))


async def swap(conn: asyncpg.Connection, build: Model) -> bool:
    """Make ``build`` live if it has read at least as far as the live generation (when
    that is of this version; one of another version is replaced as soon as the build has
    reached the head). False: not yet, or the readers' locks were not had in time."""
    try:
        async with conn.transaction():
            await conn.execute(f"SET LOCAL lock_timeout = '{SWAP_LOCK_TIMEOUT}'")
            live, _ = await models(conn)
            # Readers first, before this transaction has an id: waiting for them must not
            # hold the log's read horizon (nothing above has written). Only what exists:
            # the views do not before the first swap, nor a lost generation's tables.
            names = ["search.posts", "search.threads"] + (
                [_posts(live.generation), _threads(live.generation)] if live else [])
            present = [n for n, oid in zip(names, await conn.fetchval(
                "SELECT array_agg(to_regclass(n) ORDER BY i)"
                " FROM unnest($1::text[]) WITH ORDINALITY AS x(n, i)", names), strict=True)
                if oid is not None]
            if present:
                await conn.execute(f"LOCK TABLE {', '.join(present)} IN ACCESS EXCLUSIVE MODE")
            if live is not None and _posts(live.generation) not in present:
                await conn.execute("DELETE FROM search_models WHERE generation = $1",
                                   live.generation)  # lost: nothing to keep serving
                live = None
            rows = {r[0]: Model(*r) for r in await conn.fetch(_MODELS + " FOR UPDATE")}
            now = rows.get(build.generation)
            old = next((m for m in rows.values() if m.live), None)
            if now is None or now.live or now.stale:
                return False
            if (old and old.generation) != (live and live.generation):
                return False  # swapped meanwhile: the locks taken were not its readers'
            if old is not None and old.current and old.checkpoint > now.checkpoint:
                return False
            if old is not None:
                await conn.execute("DELETE FROM search_models WHERE generation = $1",
                                   old.generation)
            await conn.execute("UPDATE search_models SET live = true WHERE generation = $1",
                               now.generation)
            await conn.execute(
                "DROP VIEW IF EXISTS search.posts, search.threads;"
                f" CREATE VIEW search.posts AS SELECT * FROM {_posts(now.generation)};"
                f" CREATE VIEW search.threads AS SELECT * FROM {_threads(now.generation)};")
            if old is not None:
                await conn.execute(
                    f"DROP TABLE {_posts(old.generation)}, {_threads(old.generation)}")
            for orphan in await conn.fetch(_ORPHANS):  # of generations forgotten as lost
                await conn.execute(f"DROP TABLE IF EXISTS search.{orphan[0]}")
    except asyncpg.LockNotAvailableError:
        return False
    return True


# Tables of schema search no generation owns (``commit`` forgets lost generations).
_ORPHANS = """
SELECT tablename FROM pg_tables
WHERE schemaname = 'search' AND tablename ~ '^(posts|threads)_[0-9]+$'
  AND substring(tablename FROM '[0-9]+$')::bigint NOT IN (SELECT generation FROM search_models)
"""
