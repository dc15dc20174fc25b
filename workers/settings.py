"""The one configuration object, built from the environment (``FORUM_*``).

It lives on the read side because both the workers and the service need it, and imports
run one way: events <- workers <- service.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import msgspec

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/forum"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    database_url: str = DEFAULT_DATABASE_URL
    redis_url: str = DEFAULT_REDIS_URL
    broker_url: str = ""  # empty: the Redis URL
    operator_token: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    # Redis key prefix of the read models: lets tests and several boards share one Redis.
    key_prefix: str = "forum"
    per_page: int = 25
    max_body_bytes: int = 256 * 1024
    min_position_wait: float = 2.0
    # API processes keep each answer this long (see service/views.py); 0 turns it off.
    page_cache_ms: int = 250
    ready_max_lag: float = 30.0
    log_level: str = "INFO"
    log_json: bool = False
    db_pool_size: int = 20
    # An idle Redis-broker consumer sleeps at most this long between polls (Dramatiq's
    # default is a second): it bounds how late a nudge is seen.
    idle_poll_ms: int = 25
    # Which posts are held for a moderator's review (service/domain/review.py):
    # guest-links | guests | links | off.
    hold: str = "guest-links"

    @property
    def broker(self) -> str:
        return self.broker_url or self.redis_url

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Every field can be set as ``FORUM_<FIELD>``; ``overrides`` win over both."""
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for name in cls.__struct_fields__:
            raw = env.get(f"FORUM_{name.upper()}")
            if raw is not None and raw != "":
                values[name] = raw
        values.update({k: v for k, v in overrides.items() if v is not None})
        return msgspec.convert(values, cls, strict=False)
