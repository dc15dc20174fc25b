"""A Redis Cluster of the session's own for the tests that run the forum on a cluster."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.rediscluster import CLI, SERVER, RedisCluster, available


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[RedisCluster]:
    """Three masters, no replicas, on free ports; stopped and removed after the session."""
    if not available():
        pytest.skip(f"a Redis Cluster needs {SERVER} and {CLI}")
    with RedisCluster() as cluster:
        yield cluster
