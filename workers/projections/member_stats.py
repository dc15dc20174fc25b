"""Per author: threads started, posts written, reputation received; members' profiles."""

from __future__ import annotations

from events import RecordedEvent
from events.members import MemberRegistered
from events.threads import PostAdded, PostLiked, PostUnliked, ThreadStarted
from workers.projections.base import Pipe
from workers.readmodels import Namespace, counter_key, rfc3339


class MemberStats:
    name = "member_stats"
    version = 1

    def _profile(self, ns: Namespace, name: str, guest: bool, when: str, pipe: Pipe) -> str:
        key = ns.member(counter_key(name, guest))
        if guest:  # a guest's profile begins with their first post
            pipe.hsetnx(key, "joined", when)
            pipe.hset(key, mapping={"name": name, "guest": 1})
        return key

    def apply(self, record: RecordedEvent, ns: Namespace, pipe: Pipe) -> None:
        event = record.event
        match event:
            case MemberRegistered():
                pipe.hset(ns.member(counter_key(event.name, False)), mapping={
                    "name": event.name, "guest": 0, "joined": rfc3339(event.occurred_at),
                })
            case ThreadStarted():
                key = self._profile(ns, event.author, event.guest,
                                    rfc3339(event.occurred_at), pipe)
                pipe.hincrby(key, "threads", 1)
            case PostAdded():
                key = self._profile(ns, event.author, event.guest,
                                    rfc3339(event.occurred_at), pipe)
                pipe.hincrby(key, "posts", 1)
            case PostLiked():
                pipe.hincrby(ns.member(counter_key(event.author, event.guest)), "reputation", 1)
            case PostUnliked():
                pipe.hincrby(ns.member(counter_key(event.author, event.guest)), "reputation",
                             -1)
