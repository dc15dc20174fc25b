"""The per-process cache of members' standings (service/sessions.py): a request costs one
statement while the member's stream is unchanged, a change re-folds only what is new, and
the cache never holds more than its bound."""

from __future__ import annotations

import pytest

from events.members import MemberRegistered, MemberRoleChanged
from events.records import member_stream
from service import sessions as s
from service.sessions import SessionRefusedError, Sessions
from tests.builders import NOW


class CountingStore:
    def __init__(self, store):  # type: ignore[no-untyped-def]
        self.store, self.reads = store, []

    async def read_stream(self, stream_id, after_version=0):  # type: ignore[no-untyped-def]
        self.reads.append((stream_id, after_version))
        return await self.store.read_stream(stream_id, after_version)


async def add_member(store, name: str) -> str:  # type: ignore[no-untyped-def]
    stream = member_stream(name)
    await store.append(stream, 0, [MemberRegistered(occurred_at=NOW, actor=name, name=name)])
    return stream


async def test_an_unchanged_member_is_not_folded_again_and_a_change_reads_only_what_is_new(
        pool, store):
    counting = CountingStore(store)
    sessions = Sessions(pool, counting, ttl_seconds=60)  # type: ignore[arg-type]
    stream = await add_member(store, "Ann")
    token = await sessions.open(stream)
    for _ in range(3):
        assert (await sessions.resolve(token)).standing.role == "member"
    assert counting.reads == [(stream, 0)]
    await store.append(stream, 1, [MemberRoleChanged(occurred_at=NOW, actor="operator",
                                                     name="Ann", role="moderator")])
    assert (await sessions.resolve(token)).standing.role == "moderator"
    assert counting.reads == [(stream, 0), (stream, 1)]


async def test_the_cache_holds_at_most_its_bound(pool, store, monkeypatch):
    monkeypatch.setattr(s, "STANDING_CACHE_SIZE", 3)
    sessions = Sessions(pool, store, ttl_seconds=60)
    for i in range(6):
        token = await sessions.open(await add_member(store, f"m{i}"))
        await sessions.resolve(token)
    assert len(sessions._standings) == 3


async def test_a_revoked_token_is_refused(pool, store):
    sessions = Sessions(pool, store, ttl_seconds=60)
    token = await sessions.open(await add_member(store, "Bo"))
    assert await sessions.revoke_hash(s.token_hash(token))
    with pytest.raises(SessionRefusedError, match="signed out"):
        await sessions.resolve(token)
    assert not await sessions.revoke_hash(s.token_hash(token))
