"""A coalesced batch leaves Redis exactly as its commands applied one by one would:
same keys, same values, same hash field order, same list order, same scores.

Random sequences of the commands projections use, on a few keys that already hold data
(so HINCRBY and ZREM meet existing fields and members), go once through redis-py one
command at a time and once through ``Batch`` + ``commit`` (split into a few batches).
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis.asyncio import Redis

from tests.integration.test_commit import commit
from workers.batch import Batch
from workers.readmodels import score

pytestmark = pytest.mark.asyncio

HASHES = ["h0", "h1"]
FIELDS = ["f0", "f1", "f2"]
LISTS = ["l0", "l1"]
ZSETS = ["z0", "z1"]
FIRSTS = ["n0", "n1"]  # sorted sets that only take ZADD NX
MEMBERS = ["m0", "m1", "m2"]

values = st.integers(-5, 5)
operations = st.one_of(
    st.tuples(st.just("hset"), st.sampled_from(HASHES), st.sampled_from(FIELDS), values),
    st.tuples(st.just("hset_map"), st.sampled_from(HASHES),
              st.dictionaries(st.sampled_from(FIELDS), values, min_size=1, max_size=3)),
    st.tuples(st.just("hincrby"), st.sampled_from(HASHES), st.sampled_from(FIELDS), values),
    st.tuples(st.just("rpush"), st.sampled_from(LISTS), st.lists(values, min_size=1,
                                                                   max_size=3)),
    st.tuples(st.just("lset"), st.sampled_from(LISTS), st.integers(0, 2), values),
    st.tuples(st.just("zadd"), st.sampled_from(ZSETS),
              st.dictionaries(st.sampled_from(MEMBERS), st.floats(-1e6, 1e6), min_size=1,
                              max_size=2)),
    st.tuples(st.just("zrem"), st.sampled_from(ZSETS), st.sampled_from(MEMBERS)),
    st.tuples(st.just("zadd_nx"), st.sampled_from(FIRSTS),
              st.dictionaries(st.sampled_from(MEMBERS), st.floats(-1e6, 1e6), min_size=1,
                              max_size=2)),
    st.tuples(st.just("zadd_one"), st.sampled_from(ZSETS), st.sampled_from(MEMBERS),
              st.floats(-1e6, 1e6)),
    st.tuples(st.just("zadd_one_nx"), st.sampled_from(FIRSTS), st.sampled_from(MEMBERS),
              st.floats(-1e6, 1e6)),
    # Times as scores: the batch writes them as text, redis-py sends score()'s float.
    st.tuples(st.just("zadd_time"), st.sampled_from(ZSETS), st.sampled_from(MEMBERS),
              st.datetimes(timezones=st.just(UTC))),
)


async def seed(redis: Redis, base: str) -> None:
    await redis.hset(f"{base}:h0", mapping={"f1": 7, "f2": 1})
    await redis.hset(f"{base}:h1", mapping={"f0": 3})
    for name in LISTS:
        await redis.rpush(f"{base}:{name}", "a", "b", "c")
    await redis.zadd(f"{base}:z0", {"m1": 2.5})
    await redis.zadd(f"{base}:n0", {"m2": -3.5})


def queue(target: Any, base: str, op: tuple[Any, ...]) -> Any:
    kind, key, *args = op
    key = f"{base}:{key}"
    match kind:
        case "hset":
            return target.hset(key, args[0], args[1])
        case "hset_map":
            return target.hset(key, mapping=args[0])
        case "hincrby":
            return target.hincrby(key, args[0], args[1])
        case "rpush":
            return target.rpush(key, *args[0])
        case "lset":
            return target.lset(key, args[0], args[1])
        case "zadd":
            return target.zadd(key, args[0])
        case "zrem":
            return target.zrem(key, args[0])
        case "zadd_nx":
            return target.zadd(key, args[0], nx=True)
        case "zadd_one" | "zadd_one_nx":
            nx = kind == "zadd_one_nx"
            if isinstance(target, Batch):
                return target.zadd_one(key, args[0], args[1], nx=nx)
            return target.zadd(key, {args[0]: args[1]}, nx=nx)
        case "zadd_time":
            moment: datetime = args[1]
            return target.zadd(key, {args[0]: moment if isinstance(target, Batch)
                                     else score(moment)})
    raise AssertionError(kind)


async def snapshot(redis: Redis, base: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in HASHES:
        out[name] = list((await redis.hgetall(f"{base}:{name}")).items())
    for name in LISTS:
        out[name] = await redis.lrange(f"{base}:{name}", 0, -1)
    for name in [*ZSETS, *FIRSTS]:
        out[name] = await redis.zrange(f"{base}:{name}", 0, -1, withscores=True)
    return out


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(operations, max_size=40), cuts=st.lists(st.integers(0, 40), max_size=2))
async def test_a_coalesced_batch_equals_its_commands_one_by_one(
    redis: Redis, key_prefix: str, ops: list[tuple[Any, ...]], cuts: list[int],
) -> None:
    one, batched = f"{key_prefix}:one", f"{key_prefix}:batched"
    for base in (one, batched):
        # The keys are known: no SCAN, whose cost grows with the shared Redis's keyspace.
        await redis.delete(*(f"{base}:{name}" for name in [*HASHES, *LISTS, *ZSETS, *FIRSTS, "s0"]))
        await seed(redis, base)
    for op in ops:
        await queue(redis, one, op)
    bounds = [0, *sorted(min(c, len(ops)) for c in cuts), len(ops)]
    for start, stop in itertools.pairwise(bounds):
        batch = Batch()
        for op in ops[start:stop]:
            queue(batch, batched, op)
        assert await commit(redis, batch, {}, {})
    assert await snapshot(redis, batched) == await snapshot(redis, one)


async def test_repeated_changes_collapse_into_few_commands() -> None:
    batch = Batch()
    for number in range(1, 21):
        batch.rpush("t:1:posts", f"post {number}")
        batch.hset("t:1", mapping={"posts": number, "replies": number - 1})
        batch.hincrby("s:f", "posts", 1)
        batch.zadd("s:f:threads", {"1": float(number)})
    assert sorted(batch.commands()) == sorted([
        ("HSET", "t:1", "posts", "20", "replies", "19"),
        ("HINCRBY", "s:f", "posts", "20"),
        ("RPUSH", "t:1:posts", *(f"post {n}" for n in range(1, 21))),
        ("ZADD", "s:f:threads", "20.0", "1"),
    ])


async def test_commands_too_long_for_one_lua_call_go_in_order_in_pieces(
    redis: Redis, key_prefix: str,
) -> None:
    batch = Batch()
    for n in range(30_000):
        batch.rpush(f"{key_prefix}:list", n)
        batch.hset(f"{key_prefix}:hash", str(n), n)
        batch.zadd(f"{key_prefix}:zset", {str(n): float(n)})
    assert await commit(redis, batch, {}, {})
    assert await redis.lrange(f"{key_prefix}:list", 0, -1) == [
        str(n).encode() for n in range(30_000)]
    assert await redis.hlen(f"{key_prefix}:hash") == 30_000
    assert await redis.zcard(f"{key_prefix}:zset") == 30_000


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(adds=st.lists(st.integers(0, 30), max_size=60),
       cuts=st.lists(st.integers(0, 60), max_size=3))
async def test_a_trimmed_set_keeps_the_highest_of_everything_added_however_batched(
    redis: Redis, key_prefix: str, adds: list[int], cuts: list[int],
) -> None:
    """``Batch.ztrim`` on a key that takes ZADD only, each member always with the same
    score (workers/projections/member_stats.py: a post and when it was written): trimmed
    after every ZADD one by one, or once per batch wherever batches are cut, the set holds
    the same members (ties included)."""
    one, batched = f"{key_prefix}:trim-one", f"{key_prefix}:trim-batched"
    await redis.delete(one, batched)
    for member in adds:
        await redis.zadd(one, {f"m{member}": float(member % 7)})
        await redis.zremrangebyrank(one, 0, -6)
    bounds = [0, *sorted(min(c, len(adds)) for c in cuts), len(adds)]
    for start, stop in itertools.pairwise(bounds):
        batch = Batch()
        for member in adds[start:stop]:
            batch.zadd_one(batched, f"m{member}", float(member % 7))
            batch.ztrim(batched, 5)
        assert await commit(redis, batch, {}, {})
    assert await redis.zrange(batched, 0, -1, withscores=True) == \
        await redis.zrange(one, 0, -1, withscores=True)
