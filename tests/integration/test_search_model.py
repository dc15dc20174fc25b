"""The search model as a read model (workers/search/): live projection equals a rebuild,
a page commits exactly once, builds are blue/green (a new version, ``forum replay
search``), and an erasure makes it rebuild from the rewritten log, also mid-build."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from events.erasure import erase
from events.postgres import PostgresEventStore
from events.redaction import Subject
from service.operations import replay
from service.settings import Settings as ServiceSettings
from tests.invariants.test_live_equals_rebuild import World
from workers.erasures import erased_in
from workers.readmodels.search import QueryError, terms, tsquery
from workers.search import follow, sink
from workers.search.changes import changes
from workers.search.follow import Search

pytestmark = pytest.mark.asyncio


async def rows(pool: asyncpg.Pool) -> dict[str, list[tuple[Any, ...]]]:
    """The live generation's rows, every column (the document as text), in key order."""
    posts = await pool.fetch(
        "SELECT post_id, thread_id, number, forum, author, guest, created_at, title, body,"
        " document::text FROM search.posts ORDER BY post_id")
    threads = await pool.fetch("SELECT thread_id, forum, title FROM search.threads"
                               " ORDER BY thread_id")
    return {"posts": [tuple(r) for r in posts], "threads": [tuple(r) for r in threads]}


async def every_search_text(pool: asyncpg.Pool) -> str:
    """Every row of every table of schema ``search`` and of ``search_models``, as text."""
    tables = [r[0] for r in await pool.fetch(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'search'")]
    parts = [str(await pool.fetch(f"SELECT * FROM search.{t}")) for t in tables]
    parts.append(str(await pool.fetch("SELECT * FROM search_models")))
    return "\n".join(parts)


async def live_model(pool: asyncpg.Pool) -> sink.Model:
    live, _ = await sink.models(pool)
    assert live is not None
    return live


async def settle(search: Search, pool: asyncpg.Pool, timeout: float = 30) -> None:
    """Catch up with every event written, readable or not yet: on a shared cluster another
    session's transaction may hold the log's read horizon back for a while."""
    target = await pool.fetchval("SELECT coalesce(max(position), 0) FROM events")
    deadline = asyncio.get_running_loop().time() + timeout
    while (await live_model(pool)).checkpoint < target:
        assert asyncio.get_running_loop().time() < deadline, "the horizon stayed held"
        await search.catch_up()
        await asyncio.sleep(0.02)


async def written_feed(store: PostgresEventStore, pool: asyncpg.Pool, after: int
                       ) -> list[tuple[int, Any]]:
    """The log after ``after`` up to the newest event written (see ``settle``)."""
    target = await pool.fetchval("SELECT max(position) FROM events")
    while True:
        feed = await store.read_feed(after, 1000)
        if feed and feed[-1][0] >= target:
            return feed
        await asyncio.sleep(0.02)


async def activate(search: Search, store: PostgresEventStore) -> sink.Model:
    """A live generation while the log is empty, so that what follows is projected live
    (a worker's first tick does the same)."""
    assert await store.head() == 0
    await search.tick()
    live, build = await sink.models(search.pool)
    assert live is not None and build is None
    return live


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(q=st.one_of(st.text(max_size=200), st.text(alphabet="'\\\"*&|!:()<->- aAz9.", max_size=60)))
async def test_postgresql_takes_every_query_made_from_any_input(pool, q):
    try:
        made = tsquery(terms(q))
    except QueryError:
        return
    await pool.fetchval("SELECT to_tsquery('simple', $1)::text", made)


async def test_live_search_equals_a_rebuild(store, pool):
    rng = random.Random(1717)
    await activate(Search(store, pool), store)
    world = World(store)
    await world.seed()
    for _ in range(10):
        await world.random_commands(rng, 25)
        # Pages of a small random size: a thread's start, a post and its edit or deletion
        # land in one page or in several.
        await Search(store, pool, batch=rng.randrange(1, 30)).catch_up()
    await world.do("start", 0, 0, 0, "www.example.com")  # a guest's link: held, pending
    await settle(Search(store, pool, batch=7), pool)
    assert world.applied > 150 and world.decided > 3, (world.applied, world.decided)
    live = await rows(pool)
    assert live["posts"] and live["threads"]
    before = await live_model(pool)
    rebuilt = await follow.replay(store, pool, batch=rng.randrange(50, 400))
    assert rebuilt.generation != before.generation and rebuilt.checkpoint >= before.checkpoint
    assert await rows(pool) == live
    # The old generation's tables went with the swap.
    names = {r[0] for r in await pool.fetch(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'search'")}
    assert names == {f"posts_{rebuilt.generation}", f"threads_{rebuilt.generation}"}


async def test_a_page_is_committed_once(store, pool, client, project):
    from tests.e2e.test_search import section, start

    await project()
    live = await live_model(pool)
    slug = await section(client)
    await start(client, slug, "Once", "only once")
    feed = await written_feed(store, pool, live.checkpoint)
    async with pool.acquire() as conn:
        stale = sink.Model(live.generation, live.version, live.born, live.checkpoint - 1,
                           0, live=True)
        assert not await sink.commit(conn, stale, feed[-1][0], 0, changes(feed))
        assert await sink.commit(conn, live, feed[-1][0], erased_in(feed), changes(feed))
        # The same page again (a redelivery, a second worker): refused, nothing written.
        assert not await sink.commit(conn, live, feed[-1][0], 0, changes(feed))
    assert (await live_model(pool)).checkpoint == feed[-1][0]
    assert await pool.fetchval("SELECT count(*) FROM search.posts WHERE body = 'only once'") \
        == 1
    # Two workers at once, without their lock: the guard alone keeps it exactly once.
    await start(client, slug, "Twice", "not twice")
    async with pool.acquire() as one, pool.acquire() as two:
        for _ in range(3):
            await asyncio.gather(follow._catch_up(one, store, 1),
                                 follow._catch_up(two, store, 1))
    await settle(Search(store, pool), pool)
    assert await pool.fetchval("SELECT count(*) FROM search.posts WHERE body = 'not twice'") \
        == 1


async def test_a_new_version_is_built_beside_the_live_one_and_swapped_in(
        store, pool, client, project, monkeypatch):
    from tests.e2e.test_search import found, section, start

    slug = await section(client)
    first = await start(client, slug, "Versions", "an aardvark")
    await project()
    old = await live_model(pool)
    monkeypatch.setattr(sink, "VERSION", old.version + 1)
    search = Search(store, pool, build_batch=2)
    applied = await search.catch_up()  # the old version is not written any more
    assert applied == 0
    async with pool.acquire() as conn:
        await follow.fill(conn, store, deadline=0.0, batch=2)  # one page
    live, build = await sink.models(pool)
    assert live == old and build is not None and build.version == old.version + 1
    assert await found(client, "aardvark") == [first["post_id"]]  # still served
    await project()
    new = await live_model(pool)
    assert new.version == old.version + 1 and new.generation > old.generation
    assert await found(client, "aardvark") == [first["post_id"]]


async def test_forum_replay_rebuilds_search_with_the_rest(settings: ServiceSettings, store, pool,
                                                        client, project):
    from tests.e2e.test_search import found, section, start

    slug = await section(client)
    first = await start(client, slug, "Replayed", "a bonobo")
    await project()
    before = await live_model(pool)
    await replay(settings, ["search"])
    after = await live_model(pool)
    assert after.generation > before.generation
    assert await found(client, "bonobo") == [first["post_id"]]
    await replay(settings, [])  # everything: the Redis read models and search
    assert (await live_model(pool)).generation > after.generation
    assert await found(client, "bonobo") == [first["post_id"]]


async def _erasable(client: Any) -> dict[str, Any]:
    from tests.e2e.test_api_writes import sign_up
    from tests.e2e.test_search import reply, section, start

    slug = await section(client)
    ann = await sign_up(client, "Annika")
    first = await start(client, slug, "Ann's thread", "ann writes ocelotword here", ann)
    await reply(client, first["thread_id"], "a guest mentions ocelotword")
    return {"slug": slug, "first": first}


async def test_an_erasure_rebuilds_search_from_the_rewritten_log(store, pool, client,
                                                                project):
    from tests.e2e.test_search import found

    b = await _erasable(client)
    await project()
    assert b["first"]["post_id"] in await found(client, "ocelotword")
    assert await found(client, "ocelotword", author="annika") == [b["first"]["post_id"]]
    before = await live_model(pool)
    erased = await erase(pool, Subject("Annika", False, "anon-0123456789", True),
                         actor="operator", now=datetime.now(UTC))
    await project()
    after = await live_model(pool)
    assert after.generation != before.generation and after.born >= erased.position
    assert b["first"]["post_id"] not in await found(client, "ocelotword")
    assert await found(client, "ocelotword", author="annika") == []
    text = await every_search_text(pool)
    assert "annika" not in text.lower() and "ann writes" not in text
    assert "anon-0123456789" in text
    live = await rows(pool)
    await follow.replay(store, pool)
    assert await rows(pool) == live


async def test_an_erasure_during_a_search_build_restarts_it(store, pool, client, project):
    b = await _erasable(client)
    await project()
    async with pool.acquire() as conn:  # a build under way (a replay, a new version)
        started = await sink.start_build(conn, born=await store.head())
        await follow.fill(conn, store, deadline=0.0, batch=3)
    erased = await erase(pool, Subject("Annika", False, "anon-9876543210", True),
                         actor="operator", now=datetime.now(UTC))
    await project()
    live = await live_model(pool)
    assert live.generation > started.generation and live.born >= erased.position
    text = await every_search_text(pool)
    assert "annika" not in text.lower() and "ann writes" not in text
    assert b["first"]["thread_id"]


async def test_a_lost_generation_is_built_again(store, pool, client, project):
    """Tables gone under a live generation (dropped by hand, or a database put together
    from parts: a logical replica lacks the generations created after its schema was
    copied): the workers forget it and build another, and its orphans are dropped."""
    from tests.e2e.test_search import found, section, start

    slug = await section(client)
    first = await start(client, slug, "Lost", "a capybara")
    await project()
    lost = await live_model(pool)
    async with pool.acquire() as conn:
        orphan = await sink.start_build(conn, born=0)  # then its row goes missing too
        await conn.execute("DELETE FROM search_models WHERE generation = $1",
                           orphan.generation)
    await pool.execute(f"DROP TABLE search.posts_{lost.generation},"
                       f" search.threads_{lost.generation} CASCADE")
    await start(client, slug, "After", "a second capybara")
    await project()
    now = await live_model(pool)
    assert now.generation > orphan.generation
    assert len(await found(client, "capybara")) == 2 and first["post_id"]
    names = {r[0] for r in await pool.fetch(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'search'")}
    assert names == {f"posts_{now.generation}", f"threads_{now.generation}"}
    # Lost with nothing new to write: the next tick sees it, too.
    await pool.execute(f"DROP TABLE search.posts_{now.generation},"
                       f" search.threads_{now.generation} CASCADE")
    await project()
    assert (await live_model(pool)).generation > now.generation
    assert len(await found(client, "capybara")) == 2


async def test_a_broad_search_ranks_the_newest_matches_and_says_there_are_more(store, pool):
    """Ranking reads every match it ranks, so a word in most posts is ranked among its
    newest ``candidates`` matches only; the answer counts those and says there are more."""
    from service import commands as c
    from service.domain.actors import OPERATOR
    from tests.invariants.test_live_equals_rebuild import META
    from workers.readmodels.search import SearchReads

    search = Search(store, pool)
    await activate(search, store)
    world = World(store)
    h = world.handlers
    await h.create_forum(c.CreateForum(slug="s0", title="S"), OPERATOR, META)
    guest = world.people[0]
    started = await h.start_thread("s0", c.StartThread(title="Zebras",
                                                       body="zebra number 0"), guest, META)
    for n in range(1, 9):
        world.now = world.now.replace(minute=n)
        await h.post_reply(started.thread_id, c.PostReply(body=f"zebra number {n}"), guest,
                           META)
    await settle(search, pool)

    everything = await SearchReads(pool, store, per_page=25, min_position_wait=1).search("zebra")
    assert (everything.page.total, everything.page.more) == (9, False)
    capped = await SearchReads(pool, store, per_page=2, min_position_wait=1,
                               candidates=5).search("zebra", page=3)
    assert (capped.page.total, capped.page.pages, capped.page.more) == (5, 3, True)
    newest = sorted(r.post_id for r in everything.page.results)[-5:]
    ranked = set()
    for page in (1, 2, 3):
        answer = await SearchReads(pool, store, per_page=2, min_position_wait=1,
                                   candidates=5).search("zebra", page=page)
        ranked |= {r.post_id for r in answer.page.results}
    assert ranked == set(newest)
