"""A batch of projected changes, coalesced per key, for the atomic write (workers/commit.py).

Projections queue commands on a ``Batch`` (hset, rpush, zadd… with redis-py's argument
order). The batch coalesces them per key as they come: a thread's twenty replies in one
batch become one RPUSH of twenty posts, a counter bumped forty times one HINCRBY, a field
set twice one HSET. Redis spends its time per element, not per event, so this is what
keeps a rebuild from being bound by Redis. Commands on different keys commute, so only
the order per key is kept, and only where it matters (lists, and a hash field set to text
and then incremented).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Final

from workers.readmodels import rfc3339, score_text
from workers.resp import Command


def wire(value: Any) -> str | bytes:
    """A value as Redis is sent it: text and bytes as they are (bytes: UTF-8 JSON or text
    here), numbers as their text, a time as the read contract's text."""
    kind = type(value)  # the usual ones first, without isinstance's walk of the classes
    if kind is str or kind is bytes:
        return value  # type: ignore[no-any-return]
    if kind is int:
        return repr(value)
    if isinstance(value, str | bytes):
        return value  # type: ignore[no-any-return]
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, datetime):
        return rfc3339(value)
    raise TypeError(f"cannot send {type(value).__name__} to Redis")


def _score(value: float | datetime) -> str:
    return score_text(value) if isinstance(value, datetime) else repr(value)


# Longer commands go in pieces, so that no one command holds Redis for long.
_MAX_ARGS: Final = 1000

class _Incr:
    """A hash field's pending HINCRBY (a plain value is a pending HSET)."""

    __slots__ = ("amount",)

    def __init__(self, amount: int) -> None:
        self.amount = amount


# A list key's pending changes, in order: ["RPUSH", v, v, ...], ["RPUSHX", v, ...] (only
# onto a list that is there: a thread page the cache evicted is not started again
# partial) or ["LSET", index, v].
_RPUSH: Final = "RPUSH"
_RPUSHX: Final = "RPUSHX"
_LSET: Final = "LSET"
_DEL: Final = "DEL"


class Batch:
    """The changes of one projection pass, coalesced per key; encoded once to send.

    A hash key's pending changes map each field to a value (HSET) or an ``_Incr``. A
    change merges into its field's pending one when the two compose (a number set then
    incremented is a set; incr then incr one incr); the one pair that does not (a value
    that is not a number, then incr) seals the key's changes so far and starts new ones,
    applied after them. A sorted-set member's last ZADD or ZREM is its final state, so
    each member keeps only that; under ZADD NX, its first (a key used with NX takes
    nothing else). A list keeps its operations in order, adjacent RPUSHes joined.

    Times (``datetime``) may be given as values and as sorted-set scores: they are written
    as ``rfc3339`` text and as ``score``, formatted only if they survive coalescing (a
    thread bumped twenty times in a batch is formatted once)."""

    __slots__ = ("_expires", "_firsts", "_hashes", "_lists", "_sealed", "_trims", "_zsets")

    def __init__(self) -> None:
        self._hashes: dict[str, dict[str, Any]] = {}
        self._sealed: dict[str, list[dict[str, Any]]] = {}
        self._lists: dict[str, list[list[Any]]] = {}
        self._zsets: dict[str, dict[str, float | datetime | None]] = {}
        self._firsts: dict[str, dict[str, float | datetime]] = {}  # ZADD NX
        self._trims: dict[str, int] = {}  # sorted sets kept to their highest N
        self._expires: dict[str, int] = {}  # key -> seconds, set after its changes

    # The subset of redis-py's command methods that projections use.
    def hset(self, key: str, field: str | None = None, value: Any = None,
             mapping: Mapping[str, Any] | None = None) -> None:
        fields = self._hashes.get(key)
        if fields is None:
            fields = self._hashes[key] = {}
        if field is not None:
            fields[field] = value
        if mapping:
            fields.update(mapping)

    def hincrby(self, key: str, field: str, amount: int = 1) -> None:
        fields = self._hashes.get(key)
        if fields is None:
            self._hashes[key] = {field: _Incr(amount)}
            return
        pending = fields.get(field)
        if pending is None:
            fields[field] = _Incr(amount)
        elif type(pending) is _Incr:
            pending.amount += amount
        elif type(pending) is int:
            fields[field] = pending + amount
        else:  # after a text value the increment applies to what is there then
            self._sealed.setdefault(key, []).append(fields)
            self._hashes[key] = {field: _Incr(amount)}

    def rpush(self, key: str, *values: Any) -> None:
        ops = self._lists.get(key)
        if ops is None:
            self._lists[key] = [[_RPUSH, *values]]
        elif ops[-1][0] is _RPUSH:
            ops[-1].extend(values)
        else:
            ops.append([_RPUSH, *values])

    def rpushx(self, key: str, *values: Any) -> None:
        """RPUSHX: onto the list only if it exists (or joined to a push before it in this
        batch, which makes it exist)."""
        ops = self._lists.get(key)
        if ops is None:
            self._lists[key] = [[_RPUSHX, *values]]
        elif ops[-1][0] is _RPUSH or ops[-1][0] is _RPUSHX:
            ops[-1].extend(values)
        else:
            ops.append([_RPUSHX, *values])

    def expire(self, key: str, seconds: int) -> None:
        """EXPIRE, sent after every other change of the batch (a missing key: none)."""
        self._expires[key] = seconds

    def lset(self, key: str, index: int, value: Any) -> None:
        self._lists.setdefault(key, []).append([_LSET, index, value])

    def drop_list(self, key: str) -> None:
        """DEL of a list key: what was queued for it before in this batch is moot."""
        self._lists[key] = [[_DEL]]

    def zadd(self, key: str, mapping: Mapping[str, float | datetime], nx: bool = False
             ) -> None:
        """``nx``: add only members not there yet (a member keeps its first score)."""
        for member, value in mapping.items():
            self.zadd_one(key, member, value, nx)

    def zadd_one(self, key: str, member: str, value: float | datetime, nx: bool = False
                 ) -> None:
        """``zadd(key, {member: value}, nx)`` without the mapping: a bump, a thread
        started, a guest's first post happen on most events."""
        if nx:
            _one_kind(key, self._zsets)
            firsts = self._firsts.get(key)
            if firsts is None:
                self._firsts[key] = {member: value}
            elif member not in firsts:
                firsts[member] = value
            return
        _one_kind(key, self._firsts)
        members = self._zsets.get(key)
        if members is None:
            self._zsets[key] = {member: value}
        else:
            members[member] = value

    def zrem(self, key: str, *members: str) -> None:
        _one_kind(key, self._firsts)
        pending = self._zsets.setdefault(key, {})
        for member in members:
            pending[member] = None

    def ztrim(self, key: str, keep: int) -> None:
        """After this batch's changes, keep only the ``keep`` highest-scored members of
        ``key`` (a bounded "most recent" list). Only for keys that take ZADD alone: then
        trimming after each change or once after all of them leaves the same members (the
        ``keep`` highest of all ever added), whichever batches a rebuild cuts."""
        _one_kind(key, self._firsts)
        self._zsets.setdefault(key, {})
        self._trims[key] = keep

    def commands(self) -> list[Command]:
        """The coalesced commands. Per key in the order the changes came; across keys in
        any order (every command touches one key)."""
        out: list[Command] = []
        for key, fields in self._hashes.items():
            for sealed in self._sealed.get(key, ()):
                _emit_hash(out, key, sealed)
            _emit_hash(out, key, fields)
        for key, ops in self._lists.items():
            for op in ops:
                if op[0] is _RPUSH or op[0] is _RPUSHX:
                    # RPUSHX in pieces: the first piece's RPUSH (if any) made the list.
                    _emit(out, op[0], key, [v if type(v) is str else wire(v)
                                            for v in op[1:]], 1,
                          continued=_RPUSHX)
                elif op[0] is _DEL:
                    out.append((_DEL, key))
                else:
                    out.append((_LSET, key, str(op[1]), wire(op[2])))
        for key, members in self._zsets.items():
            removed = [m for m, s in members.items() if s is None]
            if removed:
                _emit(out, "ZREM", key, removed, 1)
            added = [x for m, s in members.items() if s is not None for x in (_score(s), m)]
            if added:
                _emit(out, "ZADD", key, added, 2)
            keep = self._trims.get(key)
            if keep is not None:
                out.append(("ZREMRANGEBYRANK", key, "0", str(-keep - 1)))
        for key, firsts in self._firsts.items():
            _emit(out, "ZADD", key, [x for m, s in firsts.items() for x in (_score(s), m)], 2,
                  "NX")
        for key, seconds in self._expires.items():
            out.append(("EXPIRE", key, str(seconds)))
        return out


def _one_kind(key: str, other: Mapping[str, object]) -> None:
    """A sorted set takes ZADD NX or ZADD/ZREM in one batch, never both: coalesced apart,
    the two would lose their order."""
    if key in other:
        raise ValueError(f"{key}: ZADD NX and ZADD/ZREM on one key")


def _emit(out: list[Command], command: str, key: str, args: Sequence[str | bytes],
          group: int, option: str | None = None, continued: str | None = None) -> None:
    """``command key [option] *args`` as one command, or several in order when long;
    ``group``: how many args go together (2 for field/value pairs); ``continued``: the
    command of the pieces after the first (the same if None)."""
    head = (command, key) if option is None else (command, key, option)
    if len(args) <= _MAX_ARGS:
        out.append((*head, *args))
        return
    step = _MAX_ARGS - _MAX_ARGS % group
    for start in range(0, len(args), step):
        out.append((*head, *args[start:start + step]))
        if continued is not None:
            head = (continued, key)


def _emit_hash(out: list[Command], key: str, fields: dict[str, Any]) -> None:
    """In the order fields were first changed, adjacent sets joined, so fields are created
    in Redis in the same order as applying the changes one by one would."""
    run: list[str | bytes] = []
    for field, value in fields.items():
        kind = type(value)
        if kind is str:
            run += (field, value)
            continue
        if kind is not _Incr:
            run += (field, wire(value))
            continue
        if run:
            _emit(out, "HSET", key, run, 2)
            run = []
        out.append(("HINCRBY", key, field, str(value.amount)))
    if run:
        _emit(out, "HSET", key, run, 2)
