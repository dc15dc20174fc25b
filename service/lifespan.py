"""Everything the app holds open: the PostgreSQL pool, Redis, the nudger. Built when the
app starts, closed when it stops; nothing is opened at import."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta

import asyncpg
import structlog
from litestar import Litestar
from redis.asyncio import Redis

from common.redis_client import connect
from events.offset import say_if_ahead
from events.postgres import PostgresEventStore, create_pool
from events.snapshots import PostgresSnapshotStore
from service.auth import Authenticator, hash_password, verify_password
from service.bans import Banned
from service.conditional import Tags
from service.data_rights import DataRights
from service.handlers import Handlers
from service.limits import Limiter
from service.metrics import Metrics
from service.namestore import PostgresNameStore, guest_token_key
from service.notify import CoalescingNotifier, Notifier, NullNotifier, WakingNotifier
from service.sessions import Sessions
from service.settings import Settings
from service.web.kept import KeptPages
from workers.readmodels import Keys
from workers.readmodels.reads import Reads
from workers.readmodels.search import SEARCH_SETTINGS, SearchReads

log = structlog.get_logger(__name__)


@dataclass
class Services:
    settings: Settings
    pool: asyncpg.Pool
    store: PostgresEventStore
    redis: Redis
    notifier: Notifier
    handlers: Handlers
    auth: Authenticator
    reads: Reads
    search: SearchReads
    limiter: Limiter
    bans: Banned
    pages: KeptPages
    rights: DataRights
    tags: Tags


def _notifier(settings: Settings, redis: Redis, metrics: Metrics | None) -> Notifier:
    if settings.broker_url == "none":
        return NullNotifier()
    from workers.nudge import nudger

    nudge = CoalescingNotifier(nudger(settings))
    if settings.redis_cluster:  # workers do not listen there (workers/wake.py)
        return nudge
    return WakingNotifier(redis, Keys(settings.key_prefix).wake(), nudge,
                          metrics.nudged if metrics else lambda via: None)


@asynccontextmanager
async def services(settings: Settings, metrics: Metrics | None = None
                   ) -> AsyncIterator[Services]:
    pool = await create_pool(settings.database_url, max_size=settings.db_pool_size)
    search_pool: asyncpg.Pool | None = None
    redis = connect(settings.redis_url, cluster=settings.redis_cluster,
                    socket_connect_timeout=2, socket_timeout=5)
    notifier = _notifier(settings, redis, metrics)
    handlers: Handlers | None = None
    limiter = Limiter(settings, redis)
    try:
        search_pool = await create_pool(settings.database_url, min_size=1,
                                        max_size=settings.search_pool_size,
                                        server_settings=SEARCH_SETTINGS)
        store = PostgresEventStore(pool)
        await say_if_ahead(log, store)
        handlers = Handlers(store, notifier, hash_password=hash_password,
                            verify_password=verify_password,
                            per_page=settings.per_page, hold=settings.hold,
                            names=PostgresNameStore(pool),
                            guest_name_hold=timedelta(days=settings.guest_name_days),
                            guest_key=await guest_token_key(pool),
                            on_append=metrics.appended if metrics else lambda stream: None,
                            snapshots=PostgresSnapshotStore(pool),
                            thread_cache_bytes=settings.thread_cache_bytes,
                            snapshot_every=settings.thread_snapshot_every)
        sessions = Sessions(pool, store, settings.session_ttl)
        yield Services(
            settings=settings, pool=pool, store=store, redis=redis, notifier=notifier,
            handlers=handlers, auth=Authenticator(sessions, settings.operator_token),
            reads=Reads(redis, Keys(settings.key_prefix), store, per_page=settings.per_page,
                        min_position_wait=settings.min_position_wait,
                        cache_ms=settings.page_cache_ms),
            search=SearchReads(search_pool, store, per_page=settings.per_page,
                               min_position_wait=settings.min_position_wait),
            limiter=limiter, bans=Banned(pool), pages=KeptPages(),
            rights=DataRights(pool, store, verify_password=verify_password,
                              offload=handlers.offload, clock=handlers.clock),
            tags=release_tags(settings),
        )
    finally:
        if handlers is not None:  # snapshots being saved: done, or given up
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(handlers.threads.settle(), 5)
        await notifier.close()
        await limiter.close()
        await redis.aclose()
        if search_pool is not None:
            await search_pool.close()
        await pool.close()


def release_tags(settings: Settings) -> Tags:
    """The ETags of this release: the code, and the settings that shape answers (a page's
    size, the feeds' length and absolute links)."""
    return Tags.of_settings(settings.per_page, settings.feed_entries, settings.public_url)


def lifespan(settings: Settings, metrics: Metrics):  # type: ignore[no-untyped-def]
    @asynccontextmanager
    async def run(app: Litestar) -> AsyncIterator[None]:
        async with services(settings, metrics) as svc:
            app.state.services = svc
            yield

    return run
