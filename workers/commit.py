"""The atomic write of a batch of projected changes with its checkpoints (invariant 3).

A batch commits as one MULTI/EXEC transaction (workers/batch.py coalesces its commands),
and only if every guard key (checkpoints, namespace pointers) still holds the value the
batch was computed from: a compare-and-set built on WATCH. The connection watches the
guard keys and knows their values as of the WATCH; a commit whose guards are those values
goes straight to MULTI, and if any watched key changes before EXEC, Redis applies nothing
(another worker got there first, or a rebuild swapped the namespace). Right after EXEC the
same write watches the keys again and reads them, so a stream of batches costs one round
trip each: the next batch's guards are the checkpoints this one set, and the values read
tell whether anyone wrote in between.

Why not a Lua script, as before: Redis spent half its time in Lua (unpacking the batch into
Lua strings and converting each command's arguments and reply), 40% of its CPU in a
rebuild. The transaction goes over a connection of the commit's own
(workers/redis_link.py), which packs it and parses the replies with hiredis.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Protocol

import hiredis
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from common.redis_client import is_cluster, node_client
from workers.batch import wire
from workers.readmodels.keys import TAGS, partition_of_key
from workers.redis_link import RedisLink
from workers.resp import Command


class Commands(Protocol):
    """A batch of changes (workers/batch.py ``Batch``, workers/apply.py ``Changes``)."""

    def commands(self) -> list[Command]: ...


def as_bytes(value: bytes | str | None) -> bytes | None:
    return value.encode() if isinstance(value, str) else value


class Committer:
    """Commits batches, one at a time, over a connection of its own to ``redis``'s server
    (async context manager; workers/redis_link.py), taken by the first commit: a pass
    with nothing to commit costs no connection. Not for concurrent use: at most one
    commit in flight."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._link: RedisLink | None = None
        self._open = False
        # The watched keys and their values as of the WATCH; None: nothing watched.
        self._watched: dict[str, bytes | None] | None = None
        self._broken = False

    async def __aenter__(self) -> Committer:
        self._open = True
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        trace: TracebackType | None) -> None:
        link, self._link = self._link, None
        watched, self._watched = self._watched, None
        self._open = False
        if link is None:
            return
        if self._broken or kind is not None:
            # An interrupted exchange leaves the connection in an unknown state.
            await link.close()
            return
        if watched:  # a later transaction on it must not fail for a change to these
            await link.exchange([("UNWATCH",)])  # (on failure, the link closes itself)
        await link.release(self._redis)

    async def commit(self, batch: Commands, guards: Mapping[str, bytes | str | None],
                     sets: Mapping[str, Any], *, more: bool = True) -> bool:
        """Apply ``batch`` and ``sets`` atomically if every guard key still holds its value
        (``None``: the key must be missing). False, with nothing applied, if any moved.
        ``more``: another commit is to follow, guarded by what this one sets: the guard
        keys are watched and read again in the same exchange."""
        if not self._open:
            raise RuntimeError("Committer used outside its async with")
        if self._broken:
            raise RuntimeError("an earlier commit on this connection was interrupted")
        if self._link is None:
            self._link = await RedisLink.open(self._redis)
        link = self._link
        expected = {key: as_bytes(value) for key, value in guards.items()}
        keys = list(expected)
        self._broken = True  # until the exchange completes
        if self._watched is None or list(self._watched) != keys:
            await self._watch(link, keys)
        if self._watched != expected:
            self._watched = None
            await link.exchange([("UNWATCH",)])
            self._broken = False
            return False
        commands: list[Command] = [("MULTI",), *batch.commands()]
        commands += [("SET", key, wire(value)) for key, value in sets.items()]
        commands.append(("EXEC",))
        again = more and bool(keys)
        if again:
            commands += [("WATCH", *keys), ("MGET", *keys)]
        replies = await link.exchange(commands)
        self._watched = None  # EXEC unwatches everything
        if again:
            self._watched = dict(zip(keys, replies.pop(), strict=True))
            replies.pop()  # WATCH's OK
        done = replies.pop()  # EXEC's: the commands' replies, or None
        self._broken = False
        errors = [r for r in replies if isinstance(r, hiredis.ReplyError)]
        if isinstance(done, hiredis.ReplyError):  # EXECABORT: a command was refused
            raise ResponseError(f"{done}: {errors[0] if errors else ''}")
        if done is None:  # a watched key changed: nothing was applied
            return False
        # LSET of a thread page Redis evicted (volatile keys, docs/design.md "Thread pages
        # as a cache"): nothing to change, the next read rebuilds the page.
        errors = [r for r in done if isinstance(r, hiredis.ReplyError)
                  and not str(r).startswith("ERR no such key")]
        if errors:  # applied but for these: a bug in a projection, not a conflict
            raise ResponseError(f"{len(errors)} commands of a commit failed: {errors[0]}")
        return True

    async def _watch(self, link: RedisLink, keys: list[str]) -> None:
        commands: list[Command] = [] if self._watched is None else [("UNWATCH",)]
        if keys:
            commands += [("WATCH", *keys), ("MGET", *keys)]
        replies = await link.exchange(commands) if commands else []
        self._watched = dict(zip(keys, replies[-1], strict=True)) if keys else {}


class _Listed:
    """Commands already made (``Commands``)."""

    __slots__ = ("_commands",)

    def __init__(self, commands: list[Command]) -> None:
        self._commands = commands

    def commands(self) -> list[Command]:
        return self._commands


class SlotCommitter:
    """``Committer`` on a Redis Cluster, where a transaction holds keys of one hash slot:
    a batch is split by partition (workers/readmodels/keys.py: a partition's keys and
    its checkpoints share its slot) and each part committed by a ``Committer`` of that
    partition's own, over a connection to the node serving its slot, all at once. Each
    part is exactly-once by itself; a batch applied in some partitions and refused in
    others leaves their checkpoints apart, and the next pass reads them and applies each
    event only above each partition's own (workers/catch_up.py ``aligned``). Guards are
    checkpoints only: the pointers are in other slots (workers/rebuild.py ``fence``)."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._committers: dict[int, Committer] = {}

    async def __aenter__(self) -> SlotCommitter:
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        trace: TracebackType | None) -> None:
        committers, self._committers = self._committers, {}
        for committer in committers.values():
            await committer.__aexit__(kind, error, trace)

    async def commit(self, batch: Commands, guards: Mapping[str, bytes | str | None],
                     sets: Mapping[str, Any], *, more: bool = True) -> bool:
        parts: dict[int, list[Command]] = {}
        for command in batch.commands():
            parts.setdefault(partition_of_key(str(command[1])), []).append(command)
        guarded: dict[int, dict[str, bytes | str | None]] = {}
        for key, value in guards.items():
            guarded.setdefault(partition_of_key(key), {})[key] = value
        setting: dict[int, dict[str, Any]] = {}
        for key, value in sets.items():
            setting.setdefault(partition_of_key(key), {})[key] = value
        touched = sorted(set(parts) | set(setting))
        committers = [await self._committer(p) for p in touched]
        done = await asyncio.gather(*(
            committer.commit(_Listed(parts.get(p, [])), guarded.get(p, {}),
                             setting.get(p, {}), more=more)
            for p, committer in zip(touched, committers, strict=True)))
        return all(done)

    async def _committer(self, partition: int) -> Committer:
        committer = self._committers.get(partition)
        if committer is None:
            node = node_client(self._redis, f"{{{TAGS[partition]}}}")
            committer = self._committers[partition] = await Committer(node).__aenter__()
        return committer


def committer_for(redis: Redis) -> Committer | SlotCommitter:
    """The committer of a catch-up pass on ``redis``."""
    return SlotCommitter(redis) if is_cluster(redis) else Committer(redis)
