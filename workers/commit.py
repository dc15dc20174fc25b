"""The atomic write of a batch of projected changes with its checkpoints (invariant 3).

``commit`` sends the coalesced commands (workers/batch.py) as ONE call of a Lua script,
which Redis runs atomically: first it compares every guard key (checkpoints, namespace
pointers) with the value the batch was computed from, and applies nothing if any moved
(another worker got there first, or a rebuild swapped the namespace); else it runs the
commands and sets the new checkpoints. That is the exactly-once step as a compare-and-set,
in one round trip and without MULTI's per-command replies. Commands travel as one msgpack
array that the script unpacks (``cmsgpack``, built into Redis).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import NoScriptError

from workers.batch import Batch, encode, pack_pairs

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


async def commit(redis: Redis, batch: Batch, guards: Mapping[str, bytes | str | None],
                 sets: Mapping[str, Any]) -> bool:
    """Apply ``batch`` and ``sets`` atomically if every guard key still holds its value
    (``None``: the key must be missing). False, with nothing applied, if any moved."""
    args = (pack_pairs(guards), encode(batch), pack_pairs(sets))
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
