"""service/turns.py: one holder per key, in arrival order, and nothing kept afterwards."""

from __future__ import annotations

import asyncio

from service.turns import Turns


async def test_holders_of_one_key_take_turns_in_arrival_order_others_do_not_wait():
    turns = Turns()
    order: list[str] = []
    inside = 0

    async def write(key: str, name: str) -> None:
        nonlocal inside
        async with turns.of(key):
            inside += key == "a"
            assert inside <= 1
            order.append(name)
            await asyncio.sleep(0.001)
            inside -= key == "a"

    await asyncio.gather(write("a", "a1"), write("a", "a2"), write("b", "b1"),
                         write("a", "a3"))
    assert [n for n in order if n.startswith("a")] == ["a1", "a2", "a3"]
    assert order.index("b1") < order.index("a2")  # another key is not held up
    assert len(turns) == 0


async def test_a_waiter_cancelled_or_a_holder_raising_leaves_nothing_behind():
    turns = Turns()
    held = asyncio.Event()
    release = asyncio.Event()

    async def hold() -> None:
        async with turns.of("a"):
            held.set()
            await release.wait()
            raise RuntimeError("the write failed")

    holder = asyncio.create_task(hold())
    await held.wait()

    async def wait() -> None:
        async with turns.of("a"):
            raise AssertionError("never reached: cancelled while waiting")

    waiter = asyncio.create_task(wait())
    await asyncio.sleep(0)
    waiter.cancel()
    release.set()
    results = await asyncio.gather(holder, waiter, return_exceptions=True)
    assert isinstance(results[0], RuntimeError)
    assert isinstance(results[1], asyncio.CancelledError)
    assert len(turns) == 0
    async with turns.of("a"):  # and the key is free
        pass
