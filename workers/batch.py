"""One atomic write of a batch of projected changes, with its checkpoints.

Projections queue commands on a ``Batch`` (hset, rpush, zadd… with redis-py's argument
order). ``commit`` sends them as ONE call of a Lua script, which Redis runs atomically:
first it compares every guard key (checkpoints, namespace pointers) with the value the
batch was computed from, and applies nothing if any moved (another worker got there
first, or a rebuild swapped the namespace); else it runs the commands and sets the new
checkpoints. That is the exactly-once step of invariant 3 as a compare-and-set, in one
round trip and without MULTI's per-command replies.

Commands travel as one msgpack array that the script unpacks (``cmsgpack``, built into
Redis): with a few commands per event and thousands of events per batch, packing each
command in Python was most of a rebuild's time.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import msgspec
from redis.asyncio import Redis
from redis.exceptions import NoScriptError

_APPLY = b"""
local guards = cmsgpack.unpack(ARGV[1])
for i = 1, #guards, 2 do
  local current = redis.call('GET', guards[i])
  if current == false then current = '' end
  if current ~= guards[i + 1] then return 0 end
end
local commands = cmsgpack.unpack(ARGV[2])
for i = 1, #commands do
  redis.call(unpack(commands[i]))
end
local sets = cmsgpack.unpack(ARGV[3])
for i = 1, #sets, 2 do
  redis.call('SET', sets[i], sets[i + 1])
end
return 1
"""
_SHA = hashlib.sha1(_APPLY).hexdigest()  # noqa: S324 -- Redis names scripts by SHA-1
_encode = msgspec.msgpack.Encoder().encode


def _arg(value: Any) -> str:
    """Values travel as msgpack strings: a Lua number would come out as %.14g, losing
    digits, and the cmsgpack of Redis knows no bin type (so bytes, always UTF-8 JSON or
    text here, are sent as str)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int | float):
        return repr(value)
    raise TypeError(f"cannot send {type(value).__name__} to Redis")


class Batch:
    """Commands of a projection pass, queued as tuples; msgpack-encoded once to send."""

    __slots__ = ("commands",)

    def __init__(self) -> None:
        self.commands: list[tuple[str, ...]] = []

    def __len__(self) -> int:
        return len(self.commands)

    # The subset of redis-py's command methods that projections use.
    def set(self, key: str, value: Any) -> None:
        self.commands.append(("SET", key, _arg(value)))

    def hset(self, key: str, field: str | None = None, value: Any = None,
             mapping: Mapping[str, Any] | None = None) -> None:
        args: list[str] = ["HSET", key]
        if field is not None:
            args += [field, _arg(value)]
        for k, v in (mapping or {}).items():
            args += [k, _arg(v)]
        self.commands.append(tuple(args))

    def hsetnx(self, key: str, field: str, value: Any) -> None:
        self.commands.append(("HSETNX", key, field, _arg(value)))

    def hincrby(self, key: str, field: str, amount: int = 1) -> None:
        self.commands.append(("HINCRBY", key, field, str(amount)))

    def rpush(self, key: str, *values: Any) -> None:
        self.commands.append(("RPUSH", key, *(_arg(v) for v in values)))

    def lset(self, key: str, index: int, value: Any) -> None:
        self.commands.append(("LSET", key, str(index), _arg(value)))

    def zadd(self, key: str, mapping: Mapping[str, float]) -> None:
        args: list[str] = ["ZADD", key]
        for member, score in mapping.items():
            args += [repr(score), _arg(member)]
        self.commands.append(tuple(args))

    def zrem(self, key: str, *members: Any) -> None:
        self.commands.append(("ZREM", key, *(_arg(m) for m in members)))


def _flat(pairs: Mapping[str, Any]) -> bytes:
    out: list[str] = []
    for key, value in pairs.items():
        out += [key, "" if value is None else _arg(value)]
    return _encode(out)


async def commit(redis: Redis, batch: Batch, guards: Mapping[str, bytes | str | None],
                 sets: Mapping[str, Any]) -> bool:
    """Apply ``batch`` and ``sets`` atomically if every guard key still holds its value
    (``None``: the key must be missing). False, with nothing applied, if any moved."""
    args = (_flat(guards), _encode(batch.commands), _flat(sets))
    pool = redis.connection_pool
    connection = await pool.get_connection()  # type: ignore[no-untyped-call]
    try:
        for attempt in range(2):
            await connection.send_command("EVALSHA", _SHA, 0, *args, check_health=False)
            try:
                answer = await connection.read_response()
            except NoScriptError:
                if attempt:
                    raise
                await connection.send_command("SCRIPT", "LOAD", _APPLY)
                await connection.read_response()
                continue
            return bool(answer)
    except BaseException:
        # An interrupted exchange leaves the connection in an unknown state.
        await connection.disconnect()
        raise
    finally:
        await pool.release(connection)
    raise AssertionError("unreachable")
