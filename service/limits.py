"""Abuse limits: how often an address, a guest identity or a member may write, register
and sign in.

Counters are moving windows of the ``limits`` library in Redis (one Lua script per check,
so every API process shares them and a burst split across processes is cut off all the
same), under ``<FORUM_KEY_PREFIX>:limits:``. They are ephemeral operational data: nothing
here is an event, and every key expires with its window (ARCHITECTURE.md, invariant 11).

A route applies a limit with one line, once it knows who is writing::

    await throttle("reply", who)

``ACTIONS`` is the rule table: which ``Settings`` field limits each action per guest
identity (and per address, for every guest there together; and per typed guest name,
since a guest that never sends its token back is a new identity each time), per member,
and per address whoever asks; every write also counts against ``limit_address``.
Moderators and the operator are never limited. ``FORUM_RATE_LIMITS=off`` turns everything
here off.

If Redis cannot be reached the limits let requests through (and log it): writes go to
PostgreSQL and must not fail because a counter store is down (invariant 5).
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import structlog
from limits import RateLimitItem, parse_many
from limits.aio.storage import RedisClusterStorage, RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter
from litestar import Request
from litestar.datastructures import State
from redis.asyncio import Redis
from redis.exceptions import RedisError

from common.redis_client import is_cluster
from service.addresses import address_of
from service.domain.actors import Actor
from service.domain.errors import TooSoonError
from service.settings import Settings

log = structlog.get_logger(__name__)

ActionName = Literal["thread", "reply", "bump", "edit", "like", "write", "register", "signin",
                     "search"]


@dataclass(frozen=True)
class Action:
    noun: str  # what the refusal says there were too many of
    guest: str | None = None  # per guest identity, and per address for all its guests
    member: str | None = None  # per member
    address: str | None = None  # per address, whoever asks
    write: bool = True  # also counted in ``limit_address``


ACTIONS: dict[str, Action] = {
    "thread": Action("new threads", guest="limit_thread_guest", member="limit_thread"),
    "reply": Action("posts", guest="limit_reply_guest", member="limit_reply"),
    "bump": Action("bumps", guest="limit_bump", member="limit_bump"),
    "edit": Action("edits", guest="limit_edit", member="limit_edit"),  # and deletions
    "like": Action("likes", member="limit_like"),  # guests cannot like
    # Any other write (sections, roles, and routes added later without a rule of their own).
    "write": Action("changes", guest="limit_write", member="limit_write"),
    "register": Action("registrations", address="limit_register", write=False),
    "signin": Action("sign-in attempts", address="limit_signin", write=False),
    # A search is the one read that costs PostgreSQL work (up to its 3 s timeout for a
    # word in most posts): limited per address so one client cannot keep it busy.
    "search": Action("searches", address="limit_search", write=False),
}
FAILED_SIGNIN = "too many failed sign-ins for this name or from this address"
SETTINGS_FIELDS = tuple(sorted(
    {f for a in ACTIONS.values() for f in (a.guest, a.member, a.address) if f}
    | {"limit_address", "limit_signin_failures_name", "limit_signin_failures_address"}))

Check = tuple[RateLimitItem, tuple[str, ...]]


def _switch(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("on", "true", "1", "yes"):
        return True
    if lowered in ("off", "false", "0", "no"):
        return False
    raise ValueError(f"FORUM_RATE_LIMITS must be on or off, not {value!r}")


def _parse(field: str, value: str) -> tuple[RateLimitItem, ...]:
    if not value.strip() or value.strip().lower() == "none":
        return ()
    try:
        return tuple(parse_many(value))
    except ValueError as error:
        raise ValueError(f"FORUM_{field.upper()}: {value!r} is not a limit like "
                         "'6/minute;60/hour'") from error


def _id(kind: str, value: str) -> str:
    """Names and addresses are hashed: keys stay short and nothing a client typed can
    change a key's shape."""
    return kind + "-" + hashlib.sha256(value.encode("utf-8", "replace")).hexdigest()[:32]


def counted_address(address: str) -> str:
    """What the limits count per address: an IPv6 client by its /64, since one subscriber
    is usually handed a whole /64 and could otherwise take a fresh address per request."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(parsed, ipaddress.IPv6Address):
        return str(ipaddress.ip_network(f"{parsed}/64", strict=False))
    return address


def _seconds(reset_time: float) -> int:
    return max(1, math.ceil(reset_time - time.time()))


class Limiter:
    """The rule table applied to Redis counters; one per API process."""

    def __init__(self, settings: Settings, redis: Redis) -> None:
        self.enabled = _switch(settings.rate_limits)
        self.rules = {field: _parse(field, getattr(settings, field))
                      for field in SETTINGS_FIELDS}
        storage: RedisStorage | RedisClusterStorage
        if is_cluster(redis):
            # limits' cluster storage makes a client of its own from the URL (it cannot
            # share one); its scripts each touch one key or keys of one hash tag.
            storage = RedisClusterStorage(
                "async+redis+cluster://" + settings.redis_url.split("://", 1)[-1].split("/")[0],
                implementation="redispy", key_prefix=f"{settings.key_prefix}:limits")
        else:
            options: Any = {"connection_pool": redis.connection_pool}
            storage = RedisStorage("async+redis://", implementation="redispy",
                                   key_prefix=f"{settings.key_prefix}:limits", **options)
        self._storage = storage
        self._window = MovingWindowRateLimiter(storage)

    async def close(self) -> None:
        """Close the client the cluster storage made of its own (the plain storage uses
        the app's pool)."""
        if isinstance(self._storage, RedisClusterStorage):
            await self._storage.bridge.storage.aclose()  # type: ignore[attr-defined]

    def _checks(self, field: str | None, action: str, kind: str, value: str) -> list[Check]:
        if field is None:
            return []
        return [(item, (action, _id(kind, value))) for item in self.rules[field]]

    async def _take(self, hits: Sequence[Check], tests: Sequence[Check], detail: str) -> None:
        """Spend one of every ``hits`` counter, or none and refuse (429) with when to come
        back; refuse as well when a ``tests`` counter is full. Each spend is atomic in
        Redis; looking first keeps a refused request from spending what it did not use."""
        checks = [*hits, *tests]
        if not checks:
            return
        try:
            stats = await asyncio.gather(
                *(self._window.get_window_stats(item, *ids) for item, ids in checks))
            full = [s.reset_time for s in stats if s.remaining < 1]
            if not full:
                taken = await asyncio.gather(
                    *(self._window.hit(item, *ids) for item, ids in hits))
                lost = [check for check, ok in zip(hits, taken, strict=True) if not ok]
                if not lost:
                    return
                # Another process took the last place between our look and our spend.
                full = [(await self._window.get_window_stats(item, *ids)).reset_time
                        for item, ids in lost]
        except (RedisError, OSError) as error:
            log.warning("rate_limits_unavailable", error=repr(error))
            return
        seconds = _seconds(max(full))
        raise TooSoonError(f"{detail}; try again in {seconds} seconds", seconds)

    async def check(self, action: ActionName, actor: Actor | None, address: str) -> None:
        """Count one ``action`` by ``actor`` (None: not yet known) from ``address``."""
        if not self.enabled or (actor is not None and actor.moderates):
            return
        rule = ACTIONS[action]
        checks = self._checks(rule.address, action, "address", address)
        if rule.write:
            checks += self._checks("limit_address", "any", "address", address)
        if actor is not None and actor.guest:
            checks += self._checks(rule.guest, action, "person", actor.key)
            checks += self._checks(rule.guest, action, "guests-at", address)
            if actor.guest_id is not None:
                # A guest that never sends its token back is a new identity every time:
                # its typed name is counted too, from every address.
                name_key = Actor(actor.name, "guest").key
                checks += self._checks(rule.guest, action, "person", name_key)
        elif actor is not None:
            checks += self._checks(rule.member, action, "person", actor.key)
        await self._take(checks, [], f"too many {rule.noun} in a short time")

    def _failures(self, name: str, address: str) -> tuple[list[Check], list[Check]]:
        folded = name.strip().casefold()
        return (self._checks("limit_signin_failures_name", "signin-failed", "name", folded),
                self._checks("limit_signin_failures_address", "signin-failed", "address",
                             address))

    async def sign_in(self, name: str, address: str) -> None:
        """Before checking a password: refuse while earlier failures for this name or from
        this address are too many (the wait grows tier by tier), and count the attempt."""
        if not self.enabled:
            return
        by_name, by_address = self._failures(name, address)
        attempts = self._checks(ACTIONS["signin"].address, "signin", "address", address)
        await self._take([], [*by_name, *by_address], FAILED_SIGNIN)
        await self._take(attempts, [], f"too many {ACTIONS['signin'].noun} in a short time")

    async def sign_in_failed(self, name: str, address: str) -> None:
        if not self.enabled:
            return
        by_name, by_address = self._failures(name, address)
        try:
            await asyncio.gather(*(self._window.hit(item, *ids)
                                   for item, ids in [*by_name, *by_address]))
        except (RedisError, OSError) as error:
            log.warning("rate_limits_unavailable", error=repr(error))

    async def signed_in(self, name: str, address: str) -> None:
        """A success forgives the name's failures; the address's stay counted (an attacker
        with one account of their own must not be able to wipe them)."""
        if not self.enabled:
            return
        by_name, _ = self._failures(name, address)
        try:
            await asyncio.gather(*(self._window.clear(item, *ids) for item, ids in by_name))
        except (RedisError, OSError) as error:
            log.warning("rate_limits_unavailable", error=repr(error))


class Throttle:
    """The limiter bound to one request's client address (the ``throttle`` dependency)."""

    def __init__(self, limiter: Limiter, address: str) -> None:
        self.limiter = limiter
        self.address = counted_address(address)

    async def __call__(self, action: ActionName, actor: Actor | None) -> None:
        await self.limiter.check(action, actor, self.address)

    async def sign_in(self, name: str) -> None:
        await self.limiter.sign_in(name, self.address)

    async def sign_in_failed(self, name: str) -> None:
        await self.limiter.sign_in_failed(name, self.address)

    async def signed_in(self, name: str) -> None:
        await self.limiter.signed_in(name, self.address)


async def provide_throttle(request: Request[Any, Any, Any], state: State) -> Throttle:
    return Throttle(state.services.limiter, address_of(request.scope))
