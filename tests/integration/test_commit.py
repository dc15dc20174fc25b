"""The commit's compare-and-set (workers/commit.py) against a real Redis: a batch applies
whole, with its checkpoints, only while every guard key holds what it was computed from;
anything else applies nothing and says so."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from tests.conftest import REDIS_URL
from workers.batch import Batch
from workers.commit import Committer
from workers.redis_link import RedisLink


async def commit(redis: Redis, batch: Batch, guards: Mapping[str, bytes | str | None],
                 sets: Mapping[str, Any]) -> bool:
    """One batch on a committer of its own (see ``Committer.commit``)."""
    async with Committer(redis) as committer:
        return await committer.commit(batch, guards, sets, more=False)

pytestmark = pytest.mark.asyncio


def a_batch(key: str, value: str) -> Batch:
    batch = Batch()
    batch.rpush(f"{key}:list", value)
    batch.hincrby(f"{key}:hash", "n", 1)
    return batch


async def test_a_batch_applies_with_its_checkpoint_when_the_guards_hold(
    redis: Redis, key_prefix: str,
) -> None:
    cp = f"{key_prefix}:cp"
    assert await commit(redis, a_batch(key_prefix, "a"), {cp: None}, {cp: 7})
    assert await redis.get(cp) == b"7"
    assert await redis.lrange(f"{key_prefix}:list", 0, -1) == [b"a"]
    assert await redis.hget(f"{key_prefix}:hash", "n") == b"1"


async def test_a_guard_that_moved_applies_nothing(redis: Redis, key_prefix: str) -> None:
    cp = f"{key_prefix}:cp"
    await redis.set(cp, 5)
    assert not await commit(redis, a_batch(key_prefix, "a"), {cp: b"4"}, {cp: 9})
    assert not await commit(redis, a_batch(key_prefix, "a"), {cp: None}, {cp: 9})
    assert await redis.get(cp) == b"5"
    assert not await redis.exists(f"{key_prefix}:list", f"{key_prefix}:hash")


async def test_a_write_between_two_commits_stops_the_second(
    redis: Redis, key_prefix: str,
) -> None:
    cp, pointer = f"{key_prefix}:cp", f"{key_prefix}:pointer"
    await redis.set(pointer, "v1")
    async with Committer(redis) as committer:
        assert await committer.commit(a_batch(key_prefix, "a"), {cp: None, pointer: "v1"},
                                      {cp: 1})
        await redis.set(pointer, "v2")  # a swap, by another client
        assert not await committer.commit(a_batch(key_prefix, "b"),
                                          {cp: b"1", pointer: "v1"}, {cp: 2})
    assert await redis.get(cp) == b"1"
    assert await redis.lrange(f"{key_prefix}:list", 0, -1) == [b"a"]


async def test_a_stream_of_commits_each_guarded_by_the_last(
    redis: Redis, key_prefix: str,
) -> None:
    cp = f"{key_prefix}:cp"
    async with Committer(redis) as committer:
        previous: bytes | None = None
        for n in range(1, 6):
            assert await committer.commit(a_batch(key_prefix, str(n)), {cp: previous},
                                          {cp: n})
            previous = str(n).encode()
    assert await redis.lrange(f"{key_prefix}:list", 0, -1) == [
        str(n).encode() for n in range(1, 6)]
    assert await redis.hget(f"{key_prefix}:hash", "n") == b"5"


async def test_a_command_redis_refuses_is_an_error_not_a_conflict(
    redis: Redis, key_prefix: str,
) -> None:
    await redis.set(f"{key_prefix}:list", "not a list")
    with pytest.raises(ResponseError, match="WRONGTYPE"):
        await commit(redis, a_batch(key_prefix, "a"), {}, {})


async def test_the_connection_goes_back_unwatched(redis: Redis, key_prefix: str) -> None:
    cp = f"{key_prefix}:cp"
    async with Committer(redis) as committer:
        assert await committer.commit(a_batch(key_prefix, "a"), {cp: None}, {cp: 1})
        used = committer._link
    # The kept connection must not still watch cp: a later transaction on it would
    # fail for a change that has nothing to do with it.
    link = await RedisLink.open(redis)
    assert link is used
    try:
        await redis.set(cp, 2)
        assert await link.exchange([("MULTI",), ("SET", f"{key_prefix}:other", "1"),
                                    ("EXEC",)]) == [b"OK", b"QUEUED", [b"OK"]]  # not aborted
    finally:
        await link.close()


async def test_nothing_to_commit_opens_no_connection(redis: Redis) -> None:
    async with Committer(redis) as committer:
        pass
    assert committer._link is None


async def test_the_commit_uses_the_clients_db(redis: Redis, key_prefix: str) -> None:
    """The committer's own connection goes where the app's client does: here db 9."""
    on_db_9 = Redis.from_url(REDIS_URL.rsplit("/", 1)[0] + "/9")
    cp = f"{key_prefix}:cp"
    try:
        assert await commit(on_db_9, a_batch(key_prefix, "a"), {cp: None}, {cp: 7})
        assert await on_db_9.get(cp) == b"7"
        assert await on_db_9.lrange(f"{key_prefix}:list", 0, -1) == [b"a"]
        assert not await redis.exists(cp, f"{key_prefix}:list")  # not on the default db
    finally:
        await on_db_9.delete(cp, f"{key_prefix}:list", f"{key_prefix}:hash")
        await on_db_9.aclose()


async def test_the_commit_authenticates_as_the_clients_user(
    redis: Redis, key_prefix: str,
) -> None:
    """An ACL user of its own (the shared server's default user is left as it is)."""
    user, password = key_prefix, "pw-" + key_prefix
    await redis.acl_setuser(user, enabled=True, passwords=[f"+{password}"],
                            keys=[f"{key_prefix}:*"], commands=["+@all"])
    url = REDIS_URL.replace("redis://", f"redis://{user}:{password}@", 1)
    as_user = Redis.from_url(url)
    cp = f"{key_prefix}:cp"
    try:
        assert await commit(as_user, a_batch(key_prefix, "a"), {cp: None}, {cp: 7})
        assert await redis.get(cp) == b"7"
        wrong = Redis.from_url(url.replace(password, "wrong"))
        with pytest.raises(RedisConnectionError):  # redis-py's AuthenticationError
            await commit(wrong, a_batch(key_prefix, "b"), {}, {})
        await wrong.aclose()
    finally:
        await as_user.aclose()
        await redis.acl_deluser(user)


async def test_an_interrupted_commit_drops_its_connection(
    redis: Redis, key_prefix: str,
) -> None:
    batch = Batch()
    for n in range(20_000):
        batch.rpush(f"{key_prefix}:list", "x" * 100 + str(n))
    async with Committer(redis) as committer:
        assert await committer.commit(Batch(), {}, {})  # connected: cancelled mid-exchange
        task = asyncio.ensure_future(committer.commit(batch, {}, {}))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        link = committer._link
        assert link is not None and link.closed  # dropped, before the committer's end
    again = await RedisLink.open(redis)  # and not kept for the next one
    assert again is not link
    await again.close()
    # Whatever reached Redis, it was the whole transaction or nothing of it.
    assert await redis.llen(f"{key_prefix}:list") in (0, 20_000)


async def test_a_connection_redis_drops_is_a_redis_connection_error(
    redis: Redis, key_prefix: str,
) -> None:
    cp = f"{key_prefix}:cp"
    async with Committer(redis) as committer:
        assert await committer.commit(a_batch(key_prefix, "a"), {cp: None}, {cp: 1})
        link = committer._link
        assert link is not None
        [client_id] = await link.exchange([("CLIENT", "ID")])
        await redis.client_kill_filter(_id=client_id)
        with pytest.raises(RedisConnectionError):
            await committer.commit(a_batch(key_prefix, "b"), {cp: b"1"}, {cp: 2})
    assert await redis.get(cp) == b"1"
    assert await redis.lrange(f"{key_prefix}:list", 0, -1) == [b"a"]
