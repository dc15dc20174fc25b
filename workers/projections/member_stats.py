"""Per author: threads started, posts written, reputation received; members' profiles."""

from __future__ import annotations

from events import ForumEvent
from events.members import MemberRegistered
from events.threads import PostAdded, PostLiked, PostUnliked, ThreadStarted
from workers.batch import Batch
from workers.readmodels import Namespace, counter_key, rfc3339


class MemberStats:
    name = "member_stats"
    version = 1
    handles: frozenset[type] = frozenset({
        MemberRegistered, ThreadStarted, PostAdded, PostLiked, PostUnliked
    })

    def _profile(self, ns: Namespace, name: str, guest: bool, when: str, batch: Batch) -> str:
        key = ns.member(counter_key(name, guest))
        if guest:  # a guest's profile begins with their first post
            batch.hsetnx(key, "joined", when)
            batch.hset(key, mapping={"name": name, "guest": 1})
        return key

    def apply(self, event: ForumEvent, ns: Namespace, batch: Batch) -> None:
        match event:
            case MemberRegistered():
                batch.hset(ns.member(counter_key(event.name, False)), mapping={
                    "name": event.name, "guest": 0, "joined": rfc3339(event.occurred_at),
                })
            case ThreadStarted():
                key = self._profile(ns, event.author, event.guest,
                                    rfc3339(event.occurred_at), batch)
                batch.hincrby(key, "threads", 1)
            case PostAdded():
                key = self._profile(ns, event.author, event.guest,
                                    rfc3339(event.occurred_at), batch)
                batch.hincrby(key, "posts", 1)
            case PostLiked():
                batch.hincrby(ns.member(counter_key(event.author, event.guest)), "reputation", 1)
            case PostUnliked():
                batch.hincrby(ns.member(counter_key(event.author, event.guest)), "reputation",
                             -1)
