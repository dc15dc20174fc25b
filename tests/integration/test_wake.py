"""Waking the projectors (workers/wake.py, service/notify.py WakingNotifier) on the real
Redis: a write's notification reaches a listening worker as one PUBLISH, falls back to the
broker's message when nobody listens, and wakes that arrive during a run make one more run,
not one each."""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis

from service.notify import NullNotifier, WakingNotifier
from workers.readmodels import Keys
from workers.wake import listen


async def until(condition, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "never came"
        await asyncio.sleep(0.01)


async def test_a_listening_worker_is_woken_and_the_broker_is_left_alone(redis: Redis,
                                                                        keys: Keys):
    runs = 0
    stop = False

    async def run() -> None:
        nonlocal runs
        runs += 1

    listener = asyncio.create_task(listen(redis, keys.wake(), run, lambda: stop))
    fallback, sent = NullNotifier(), []
    notifier = WakingNotifier(redis, keys.wake(), fallback, sent.append)
    try:
        # Subscribed once PUBSUB NUMSUB says so (the listener subscribes in the background).
        await until_subscribed(redis, keys.wake())
        notifier.notify()
        await until(lambda: runs == 1)
        assert (sent, fallback.count) == (["wake"], 0)
    finally:
        stop = True
        await asyncio.wait_for(listener, 3)
        await notifier.close()


async def until_subscribed(redis: Redis, channel: str) -> None:
    for _ in range(500):
        if dict(await redis.pubsub_numsub(channel)).get(channel.encode(), 0):
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the listener never subscribed")


async def test_with_nobody_listening_the_broker_carries_the_nudge(redis: Redis, keys: Keys):
    fallback, sent = NullNotifier(), []
    notifier = WakingNotifier(redis, keys.wake(), fallback, sent.append)
    notifier.notify()
    await until(lambda: fallback.count == 1)
    assert sent == ["broker"]
    await notifier.close()


async def test_with_redis_away_the_broker_carries_the_nudge(keys: Keys):
    away = Redis(port=1, socket_connect_timeout=0.5)  # nothing listens on port 1
    fallback = NullNotifier()
    notifier = WakingNotifier(away, keys.wake(), fallback)
    notifier.notify()
    await until(lambda: fallback.count == 1)
    await notifier.close()
    await away.aclose()


async def test_wakes_during_a_run_make_one_more_run_and_a_failing_run_is_survived(
        redis: Redis, keys: Keys):
    runs = 0
    release = asyncio.Event()
    stop = False

    async def run() -> None:
        nonlocal runs
        runs += 1
        if runs == 1:
            await release.wait()  # a long pass: wakes pile up meanwhile
        if runs == 2:
            raise RuntimeError("Redis went away mid-pass")

    listener = asyncio.create_task(listen(redis, keys.wake(), run, lambda: stop))
    try:
        await until_subscribed(redis, keys.wake())
        await redis.publish(keys.wake(), b"")
        await until(lambda: runs == 1)
        for _ in range(20):
            await redis.publish(keys.wake(), b"")
        await asyncio.sleep(0.05)  # all twenty delivered to the listener's socket
        release.set()
        await until(lambda: runs == 2)
        await asyncio.sleep(0.2)
        assert runs == 2  # twenty wakes, one run (which failed, and was logged)
        await redis.publish(keys.wake(), b"")
        await until(lambda: runs == 3)  # still listening
    finally:
        stop = True
        await asyncio.wait_for(listener, 3)
