"""How a read reaches Redis (workers/readmodels/reads.py says what each read asks): the
namespaces the pointers name, as last seen; the read's script calls and the ``FETCH``es
of what it finds in other slots, guessed from the last read of the same page and sent in
one pipeline (on a cluster one request per node, at once); made again when a namespace
was fenced (its checkpoint missing) or a page evicted; waiting, when asked, until every
partition read has reached a position.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, Final, NamedTuple

from redis.asyncio import Redis
from redis.exceptions import NoScriptError

from common.redis_client import mget
from events import EventStore
from workers.page_rebuild import rebuild_page
from workers.projections import PROJECTIONS
from workers.readmodels import scripts
from workers.readmodels.answer_cache import KEPT
from workers.readmodels.errors import BeyondHeadError, ReadModelUnavailableError
from workers.readmodels.keys import Keys, Namespace, partition_of_key, version_of
from workers.readmodels.scripts import Call, Fetch

# A read made again this many times (namespaces fenced, pages evicted under it) gives up.
_ATTEMPTS: Final = 5
# While a read waits for a position, it reads the pointers again this often (seconds):
# a namespace swapped out no longer moves.
_REREAD_POINTERS: Final = 0.1

# A read's script calls, built from the namespaces of the projections it reads.
Calls = Callable[[list[Namespace]], list[Call]]
# The names of what a read fetches from other slots, from its calls' answers (each past
# its checkpoints); a read without calls knows them beforehand.
Needs = Callable[[list[list[Any]]], list[str]]
# The fetch of one such name.
Fetcher = Callable[[list[Namespace], str], Fetch]



def no_needs(_: list[list[Any]]) -> list[str]:
    return []


def no_fetch(_: list[Namespace], name: str) -> Fetch:
    raise AssertionError(f"this read fetches nothing ({name!r})")


class Got(NamedTuple):
    """What a read found: each call's answer past its checkpoints, the reply to each
    fetch it needed, by name, and how far that reflects the log: ``position``, the lowest
    checkpoint read; ``seen``, every checkpoint read (the calls' in order, then the
    fetched partitions' by key: what was read is the same while they are); ``spaces``,
    the namespaces read; ``checkpoints``, the keys of ``seen``."""

    answers: list[list[Any]]
    fetched: dict[str, Any]
    position: int
    seen: tuple[int, ...]
    spaces: tuple[str, ...]
    checkpoints: tuple[str, ...]


class _Fetched(NamedTuple):
    replies: dict[str, Any]
    checkpoints: dict[str, int]


class _Guess:
    """What a read fetched last time, by name; and the fetches made of them for the
    namespaces ``made`` (built once: a hot page's next reads send the same)."""

    __slots__ = ("fetches", "made", "names", "plans")

    def __init__(self, names: list[str]) -> None:
        self.names = names
        self.made: tuple[str, ...] = ()
        self.plans: dict[str, Fetch] = {}
        self.fetches: list[tuple[Call, list[str]]] = []


class _AgainError(Exception):
    """This attempt of a read is void; ``fenced``: a namespace it read was fenced."""

    def __init__(self, fenced: bool) -> None:
        self.fenced = fenced


class Reader:
    """The round trips of reads (subclassed by ``Reads``)."""

    def __init__(self, redis: Redis, keys: Keys, store: EventStore, *,
                 min_position_wait: float) -> None:
        self.redis = redis
        self.keys = keys
        self.store = store
        self.min_position_wait = min_position_wait
        self._spaces: dict[str, tuple[str, Namespace]] = {}
        self._guesses: OrderedDict[Hashable, _Guess] = OrderedDict()
        self._scripts = {source: redis.register_script(source) for source in scripts.READS}

    # -- the plumbing ------------------------------------------------------------------

    async def _namespaces(self, names: tuple[str, ...]) -> list[tuple[str, Namespace]] | None:
        """The live namespaces of ``names`` as last seen; None if one has none (or one
        this code cannot read)."""
        if any(name not in self._spaces for name in names):
            pointers = await mget(self.redis, [self.keys.active(name) for name in names])
            for name, pointer in zip(names, pointers, strict=True):
                if pointer is None or not self._learn(name, pointer):
                    return None
        return [self._spaces[name] for name in names]

    def _learn(self, name: str, pointer: bytes | str) -> bool:
        """Read ``name`` from the namespace ``pointer`` names from now on; False if it is
        of another version of the projection, whose keys may lie otherwise (after an
        upgrade, until the workers have rebuilt it: reads answer 503 meanwhile)."""
        ns = pointer.decode() if isinstance(pointer, bytes) else pointer
        if version_of(ns) != PROJECTIONS[name].version:
            self._spaces.pop(name, None)
            return False
        if self._spaces.get(name, ("",))[0] != ns:
            self._spaces[name] = (ns, self.keys.namespace(name, ns))
        return True

    def _forget(self, names: tuple[str, ...]) -> None:
        """Read these pointers again before the next read of them."""
        for name in names:
            self._spaces.pop(name, None)

    def _guess(self, guess: Hashable | None) -> _Guess | None:
        return None if guess is None else self._guesses.get(guess)

    def _remember(self, guess: Hashable | None, names: list[str]) -> _Guess | None:
        if guess is None:
            return None
        kept = self._guesses[guess] = _Guess(names)
        self._guesses.move_to_end(guess)
        if len(self._guesses) > KEPT:
            self._guesses.popitem(last=False)
        return kept

    async def _send(self, calls: list[Call]) -> list[list[Any]]:
        """Each call's answer. Several calls go in one pipeline: one round trip (on a
        cluster, one request per node, sent at once)."""
        if len(calls) <= 1:
            return [await self._scripts[call.script](keys=call.all_keys(), args=call.argv())
                    for call in calls]
        for _ in range(2):
            pipe = self.redis.pipeline(transaction=False)
            for call in calls:
                keys = call.all_keys()
                # EVALSHA by name: a cluster pipeline refuses its ``evalsha`` method, but
                # sends the command itself to the node of its keys (redis-py reads them
                # from EVALSHA's arguments).
                pipe.execute_command("EVALSHA", self._scripts[call.script].sha, len(keys),
                                     *keys, *call.argv())
            replies: list[Any] = await pipe.execute(raise_on_error=False)
            if not any(isinstance(reply, NoScriptError) for reply in replies):
                break
            # A node that never saw the scripts (restarted, or new): give them to every
            # node, and send again.
            for source in {call.script for call in calls}:
                await self.redis.script_load(source)
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
        return replies

    @staticmethod
    def _fetches(plans: dict[str, Fetch]) -> list[tuple[Call, list[str]]]:
        """The fetches as one ``FETCH`` call per partition, each with the names it reads."""
        partitions: dict[int, list[str]] = {}
        for name, plan in plans.items():
            partitions.setdefault(partition_of_key(plan.checkpoint), []).append(name)
        return [(scripts.fetch([plans[name] for name in names]), names)
                for names in partitions.values()]

    @staticmethod
    def _fetched(fetches: list[tuple[Call, list[str]]], answers: list[list[Any]]
                 ) -> _Fetched:
        fetched = _Fetched({}, {})
        for (call, names), answer in zip(fetches, answers, strict=True):
            if answer[0] == 2:
                raise _AgainError(fenced=True)
            fetched.checkpoints.update(zip(call.checkpoints, map(int, answer[1]),
                                           strict=True))
            fetched.replies.update(zip(names, answer[2:], strict=True))
        return fetched

    async def _attempt(self, names: tuple[str, ...], calls: Calls, needs: Needs,
                       fetch: Fetcher, guess: Hashable | None, thread_id: int | None
                       ) -> Got | None:
        """One attempt of a read: its calls and the fetches it guessed, sent together
        (one round trip); then, if the guess was wrong, the fetches it needs. None while
        a read model it needs has no live namespace; raises ``_AgainError`` when it must
        be made again."""
        spaces = await self._namespaces(names)
        if spaces is None:
            return None
        namespaces = [ns for _, ns in spaces]
        sent = calls(namespaces)
        remembered = self._guess(guess) if sent else None
        guessed = needs([]) if not sent else remembered.names if remembered else []
        made = tuple(ns for ns, _ in spaces)
        if remembered is not None and remembered.made == made:
            plans, fetches = remembered.plans, remembered.fetches
        else:
            plans = {name: fetch(namespaces, name) for name in guessed}
            fetches = self._fetches(plans)
            if remembered is not None:  # the same page's next read sends the same
                remembered.made, remembered.plans, remembered.fetches = made, plans, fetches
        answers = await self._send([*sent, *(call for call, _ in fetches)])
        answers, fetched_answers = answers[:len(sent)], answers[len(sent):]
        for answer in answers:
            if answer[0] == 2:
                raise _AgainError(fenced=True)
            if answer[0] == 4 and thread_id is not None:  # the page was evicted
                await rebuild_page(self.redis, self.keys, self.store, thread_id)
                raise _AgainError(fenced=False)
        fetched = self._fetched(fetches, fetched_answers)
        bodies = [answer[2:] for answer in answers]
        needed = needs(bodies) if sent else guessed
        if needed != guessed:
            kept = self._remember(guess, needed)
            if any(name not in plans for name in needed):
                plans = {name: fetch(namespaces, name) for name in needed}
                fetches = self._fetches(plans)
                if kept is not None:
                    kept.made, kept.plans, kept.fetches = made, plans, fetches
                fetched = self._fetched(fetches,
                                        await self._send([call for call, _ in fetches]))
        seen = [int(c) for answer in answers for c in answer[1]]
        keys = [key for call in sent for key in call.checkpoints]
        fetched_keys = sorted({plans[n].checkpoint for n in needed})
        seen += [fetched.checkpoints[c] for c in fetched_keys]
        return Got(bodies, {name: fetched.replies[name] for name in needed},
                   min(seen, default=0), tuple(seen), made, (*keys, *fetched_keys))

    async def _call(self, names: tuple[str, ...], calls: Calls, needs: Needs,
                    fetch: Fetcher, guess: Hashable | None, thread_id: int | None
                    ) -> Got | None:
        for attempt in range(_ATTEMPTS):
            try:
                return await self._attempt(names, calls, needs, fetch, guess, thread_id)
            except _AgainError as again:
                if again.fenced:
                    self._forget(names)
                    # A swap fences the old namespace, then moves the pointer: a read
                    # between the two finds the same pointer again.
                    await asyncio.sleep(0.005 * attempt)
        raise ReadModelUnavailableError("the read models changed during the read; try again")

    async def _read(self, names: tuple[str, ...], calls: Calls, min_position: int | None,
                    *, needs: Needs = no_needs, fetch: Fetcher = no_fetch,
                    guess: Hashable | None = None, thread_id: int | None = None) -> Got:
        """What ``calls`` and the fetches ``needs`` names found in the read models
        ``names``; waits until the lowest checkpoint read is ``min_position`` when asked.
        ``guess``: what the fetches are remembered by, from one read to the next.
        ``thread_id``: the thread whose page the calls read, rebuilt if they find it
        missing or partial."""
        deadline = time.monotonic() + self.min_position_wait
        reread = time.monotonic() + _REREAD_POINTERS
        checked = False
        while True:
            got = await self._call(names, calls, needs, fetch, guess, thread_id)
            if got is None:
                if min_position is None or time.monotonic() >= deadline:
                    raise ReadModelUnavailableError(
                        "the read models are being rebuilt; try again shortly", 2)
            elif min_position is None or got.position >= min_position:
                return got
            elif time.monotonic() >= deadline:
                raise ReadModelUnavailableError(
                    f"the read models have not reached position {min_position} yet", 1)
            if not checked:  # only a read that would wait pays for this query
                checked = True
                if min_position is not None and not await self.store.has_position(min_position):
                    raise BeyondHeadError(f"position {min_position} is beyond the log's "
                                          "head: no write answered it")
            if time.monotonic() >= reread:
                self._forget(names)
                reread = time.monotonic() + _REREAD_POINTERS
            elif got is not None:
                # Wait on the checkpoints alone (one MGET, a fraction of the read), and
                # read again as soon as they have all reached the position, or one is gone.
                await self._await_checkpoints(got.checkpoints, min_position,
                                              min(reread, deadline))
                continue
            await asyncio.sleep(0.005)

    async def _await_checkpoints(self, keys: tuple[str, ...], position: int, until: float
                                 ) -> None:
        """Until ``until`` (a ``time.monotonic()``), poll ``keys`` every 2 ms; return
        once each is at ``position`` or missing (fenced: the read is made again)."""
        while keys and time.monotonic() < until:
            await asyncio.sleep(0.002)
            values = await mget(self.redis, keys)
            if None in values or min(int(v) for v in values) >= position:
                return
