"""Settings from the environment (``FORUM_*``): the part both sides read, and how any
part is read. Each side extends it with its own fields (workers/settings.py,
service/settings.py); one object is built per process and passed in, never read at
import.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Self

import msgspec

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/forum"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


class CommonSettings(msgspec.Struct, frozen=True, kw_only=True):
    """What the workers and the service both read: where the log and the read models
    are, and how to log."""

    database_url: str = DEFAULT_DATABASE_URL
    redis_url: str = DEFAULT_REDIS_URL
    # ``redis_url`` names a node of a Redis Cluster (common/redis_client.py).
    redis_cluster: bool = False
    # Redis key prefix of the read models: lets tests and several boards share one Redis.
    key_prefix: str = "forum"
    log_level: str = "INFO"
    log_json: bool = False

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> Self:
        """Every field can be set as ``FORUM_<FIELD>``; ``overrides`` win over both."""
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for name in cls.__struct_fields__:
            raw = env.get(f"FORUM_{name.upper()}")
            if raw is not None and raw != "":
                values[name] = raw
        values.update({k: v for k, v in overrides.items() if v is not None})
        return msgspec.convert(values, cls, strict=False)
