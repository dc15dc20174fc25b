"""The write side's plumbing, shared by every use-case: idempotent answers, appending with
the request's metadata, retrying a lost race, the kept folded threads.

Each use-case returns a ``Result`` carrying the log position its append reached. Requests
with an ``Idempotency-Key`` are answered from the first request's stored result when the
same key comes again with the same request; the append and that record are one statement,
so a replay can never half-happen. The use-cases themselves are in service/handlers.py
(threads and sections) and service/member_handlers.py (members and guests).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TypeVar, cast

import msgspec

from events import (
    ConcurrencyError,
    DuplicateRequestError,
    EventStore,
    ForumEvent,
    IdempotentResult,
    Metadata,
)
from events.records import forum_stream
from events.snapshots import NoSnapshots, SnapshotStore
from service import commands as c
from service.auth import Offloader
from service.domain import review, threads
from service.domain.errors import (
    ConflictError,
    InvalidInputError,
)
from service.namestore import InMemoryNameStore, NameStore
from service.notify import Notifier
from service.thread_cache import DEFAULT_BYTES, ThreadCache
from service.thread_loading import SNAPSHOT_EVERY, ThreadLoader
from service.turns import Turns

R = TypeVar("R", bound=c.Result)
CONFLICT_RETRIES = 8
THREAD_CACHE_BYTES = DEFAULT_BYTES  # folded threads kept per API process (_load_thread)
GUEST_NAME_HOLD = timedelta(days=30)  # how long a guest name stays with its guest


class RequestMeta(msgspec.Struct, frozen=True, kw_only=True):
    """What the HTTP layer knows of a write request besides its body."""

    idempotency_key: str | None = None
    fingerprint: str = ""
    correlation_id: str | None = None


def fingerprint(key: bytes, *parts: bytes | str) -> str:
    """What tells a replayed request from another under the same Idempotency-Key, stored
    in ``idempotency``. Keyed (HMAC) with a server secret: the parts include request
    bodies, a registration's password among them, and a plain SHA-256 of a guessable body
    can be reversed by trying passwords against a stolen table or backup."""
    digest = hmac.new(key, digestmod=hashlib.sha256)
    for part in parts:
        digest.update(part.encode() if isinstance(part, str) else part)
        digest.update(b"\0")
    return digest.hexdigest()


def page_of(number: int, per_page: int) -> int:
    return (number - 1) // per_page + 1



class Plumbing:
    def __init__(
        self,
        store: EventStore,
        notifier: Notifier,
        *,
        hash_password: Callable[[str], str],
        verify_password: Callable[[str | None, str], bool] = lambda stored, given: False,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        per_page: int = 25,
        hold: str = review.DEFAULT_POLICY,
        names: NameStore | None = None,
        guest_name_hold: timedelta = GUEST_NAME_HOLD,
        guest_key: bytes | None = None,
        on_append: Callable[[str], None] = lambda stream: None,
        snapshots: SnapshotStore | None = None,
        thread_cache_bytes: int = THREAD_CACHE_BYTES,
        snapshot_every: int = SNAPSHOT_EVERY,
    ) -> None:
        self.store = store
        self.on_append = on_append  # told the stream of every append that succeeded
        self.names: NameStore = names if names is not None else InMemoryNameStore()
        self.guest_name_hold = guest_name_hold
        # Derives the guest_token of a first guest write made with an Idempotency-Key.
        self.guest_key = guest_key if guest_key is not None else secrets.token_bytes(32)
        # Keys request fingerprints (``fingerprint``): derived, so no secret serves twice.
        self.fingerprint_key = hmac.new(self.guest_key, b"idempotency fingerprints",
                                        hashlib.sha256).digest()
        self.notifier = notifier
        self.hash_password = hash_password
        self.verify_password = verify_password
        self.clock = clock
        self.per_page = per_page
        self.offload = Offloader()  # password hashing: off the event loop, a few at once
        self.hold = review.policy(hold)
        self.threads = ThreadLoader(store, snapshots or NoSnapshots(),
                                    ThreadCache(thread_cache_bytes),
                                    snapshot_every=snapshot_every)
        self.turns = Turns()  # writers of one stream in this process: one at a time

    # -- plumbing ---------------------------------------------------------------------

    async def _first_answer(self, meta: RequestMeta, *kinds: type[R]) -> R | None:
        if meta.idempotency_key is None:
            return None
        first = await self.store.find_idempotent(meta.idempotency_key)
        if first is None:
            return None
        return self._replayed(first, meta, *kinds)

    async def _first_or_held(self, meta: RequestMeta, kind: type[R]) -> R | c.HeldResult | None:
        """The first answer of a write that may have been held for review."""
        first = await self._first_answer(meta, c.HeldResult, kind)
        return cast("R | c.HeldResult | None", first)

    @staticmethod
    def _replayed(first: IdempotentResult, meta: RequestMeta, *kinds: type[R]) -> R:
        """The first answer again; ``kinds``: what it may have been (a write that may be
        held answers a HeldResult or its usual result), tried in order."""
        if first.fingerprint != meta.fingerprint:
            raise InvalidInputError(
                "this Idempotency-Key was already used for a different request"
            )
        for kind in kinds[:-1]:
            try:
                result = msgspec.json.decode(first.response, type=kind)
                break
            except msgspec.ValidationError:
                continue
        else:
            result = msgspec.json.decode(first.response, type=kinds[-1])
        result.position = first.position
        return result

    async def _append(
        self, stream: str, version: int, new: Sequence[ForumEvent], result: R, meta: RequestMeta,
        *, password_hash: str | None = None,
    ) -> R:
        """``password_hash``: a registration's credential, stored with the append (and
        only then), never in an event."""
        idempotency = None
        if meta.idempotency_key is not None:
            idempotency = IdempotentResult(
                key=meta.idempotency_key, fingerprint=meta.fingerprint,
                response=msgspec.json.encode(result), position=0,
            )
        metadata = Metadata(
            correlation_id=meta.correlation_id, idempotency_key=meta.idempotency_key
        )
        try:
            result.position = await self.store.append(
                stream, version, new, metadata=metadata, idempotency=idempotency,
                password_hash=password_hash,
            )
        except DuplicateRequestError as duplicate:
            first = IdempotentResult(
                key=duplicate.key, fingerprint=duplicate.fingerprint,
                response=duplicate.response, position=duplicate.position,
            )
            return self._replayed(first, meta, type(result))
        self.on_append(stream)
        self.notifier.notify()
        return result

    async def _retrying(self, stream: str, attempt: Callable[[], Awaitable[R]]) -> R:
        """Optimistic concurrency: a writer that lost a race reloads and decides again.
        Writers of ``stream`` in this process wait for their turn first
        (service/turns.py), so only another process can make one lose."""
        async with self.turns.of(stream):
            for _ in range(CONFLICT_RETRIES):
                try:
                    return await attempt()
                except ConcurrencyError:
                    continue
        raise ConflictError("the thread is busy; try again")

    async def _load_thread(self, thread_id: int) -> tuple[threads.Thread | None, int]:
        """The thread folded from its stream, and its version: kept, or a snapshot and
        the events after it (service/thread_loading.py)."""
        return await self.threads.load(thread_id)

    async def _forum_exists(self, slug: str) -> bool:
        return bool(await self.store.read_stream(forum_stream(slug)))
