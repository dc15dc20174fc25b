"""Everything the app holds open: the PostgreSQL pool, Redis, the nudger. Built when the
app starts, closed when it stops; nothing is opened at import."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta

import asyncpg
import structlog
from litestar import Litestar
from redis.asyncio import Redis

from events.errors import StoreUnavailableError
from events.offset import LOG_AHEAD
from events.postgres import PostgresEventStore, create_pool
from service.auth import Authenticator, hash_password, verify_password
from service.bans import Banned
from service.data_rights import DataRights
from service.handlers import Handlers
from service.limits import Limiter
from service.metrics import Metrics
from service.namestore import PostgresNameStore, guest_token_key
from service.notify import CoalescingNotifier, Notifier, NullNotifier
from service.sessions import Sessions
from service.settings import Settings
from service.web.kept import KeptPages
from workers.readmodels import Keys
from workers.readmodels.reads import Reads
from workers.readmodels.search import SearchReads

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


def _notifier(settings: Settings) -> Notifier:
    if settings.broker_url == "none":
        return NullNotifier()
    from workers.nudge import nudger

    return CoalescingNotifier(nudger(settings))


@asynccontextmanager
async def services(settings: Settings, metrics: Metrics | None = None
                   ) -> AsyncIterator[Services]:
    pool = await create_pool(settings.database_url, max_size=settings.db_pool_size)
    redis = Redis.from_url(settings.redis_url, socket_connect_timeout=2, socket_timeout=5)
    notifier = _notifier(settings)
    try:
        store = PostgresEventStore(pool)
        await _say_if_ahead(store)
        handlers = Handlers(store, notifier, hash_password=hash_password,
                            verify_password=verify_password,
                            per_page=settings.per_page, hold=settings.hold,
                            names=PostgresNameStore(pool),
                            guest_name_hold=timedelta(days=settings.guest_name_days),
                            guest_key=await guest_token_key(pool),
                            on_append=metrics.appended if metrics else lambda stream: None)
        sessions = Sessions(pool, store, settings.session_ttl)
        yield Services(
            settings=settings, pool=pool, store=store, redis=redis, notifier=notifier,
            handlers=handlers, auth=Authenticator(sessions, settings.operator_token),
            reads=Reads(redis, Keys(settings.key_prefix), store, per_page=settings.per_page,
                        min_position_wait=settings.min_position_wait,
                        cache_ms=settings.page_cache_ms),
            search=SearchReads(pool, store, per_page=settings.per_page,
                               min_position_wait=settings.min_position_wait),
            limiter=Limiter(settings, redis), bans=Banned(pool), pages=KeptPages(),
            rights=DataRights(pool, store, verify_password=verify_password,
                              offload=handlers.offload, clock=handlers.clock),
        )
    finally:
        await notifier.close()
        await redis.aclose()
        await pool.close()


async def _say_if_ahead(store: PostgresEventStore) -> None:
    """Loudly, at start-up: a log restored or replicated from another cluster and not
    migrated since (events/offset.py). Only a diagnosis: it never stops the start."""
    try:
        ahead = await store.ahead_of_cluster()
    except (StoreUnavailableError, asyncpg.PostgresError) as error:
        log.warning("log_offset_unchecked", error=repr(error))
        return
    if ahead:
        log.error("log_ahead_of_cluster", detail=LOG_AHEAD)


def lifespan(settings: Settings, metrics: Metrics):  # type: ignore[no-untyped-def]
    @asynccontextmanager
    async def run(app: Litestar) -> AsyncIterator[None]:
        async with services(settings, metrics) as svc:
            app.state.services = svc
            yield

    return run
