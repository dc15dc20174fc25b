"""What the projection workers read from the environment (common/settings.py says how)."""

from __future__ import annotations

from common.settings import CommonSettings


class WorkerSettings(CommonSettings, frozen=True, kw_only=True):
    broker_url: str = ""  # empty: the Redis URL
    # An idle Redis-broker consumer sleeps at most this long between polls (Dramatiq's
    # default is a second): it bounds how late a nudge is seen.
    idle_poll_ms: int = 25

    def __post_init__(self) -> None:
        if not self.broker_url and self.redis_cluster:
            # Dramatiq's Redis broker runs scripts over several keys of no common hash
            # tag: it cannot run on a Redis Cluster.
            raise ValueError("FORUM_REDIS_CLUSTER=true needs FORUM_BROKER_URL: RabbitMQ "
                             "(amqp://...) or a Redis that is not a cluster")

    @property
    def broker(self) -> str:
        return self.broker_url or self.redis_url
