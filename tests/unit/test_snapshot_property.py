"""A thread's state from a snapshot and the events after it is the state from the whole
stream, and decides the same (service/domain/snapshot.py): random histories of replies,
quotes, edits, deletions, likes, locks, moves, bumps, holds, approvals and rejections by
members, guests (with and without identities) and moderators, each cut at every version."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from events.catalog import ForumEvent
from service.domain import review, snapshot, threads
from service.domain.actors import OPERATOR, Actor
from service.domain.errors import DomainError
from service.domain.threads import Thread

START = datetime(2011, 6, 8, 12, 0, tzinfo=UTC)
ELSEWHERE = timezone(timedelta(hours=2))  # a time not in UTC: kept aside by the posts

ACTORS = [
    Actor("Ann", "member"), Actor("bob", "member"), Actor("ANN", "member"),
    Actor("gus", "guest", guest_id="g1"), Actor("gus", "guest", guest_id="g2"),
    Actor("old", "guest"), Actor("Mo", "moderator"), OPERATOR,
]
FAKE_POST = 999_999

OPS = ("reply", "reply", "reply", "quote", "edit", "delete", "like", "like", "unlike", "unlike",
       "lock", "unlock", "move", "bump", "hold", "approve", "reject")

op = st.tuples(st.sampled_from(OPS), st.integers(0, len(ACTORS) - 1), st.integers(0, 40),
               st.integers(0, 40), st.sampled_from([0, 1, 7, 90, 1500]), st.booleans())


class History:
    """A stream grown through the real decisions; a refused decision appends nothing."""

    def __init__(self, held_start: bool, starter: Actor) -> None:
        self.ids = iter(range(1000, 100_000))
        self.starter = starter
        self.now = START
        self.thread_id = next(self.ids)
        first = next(self.ids)
        if held_start:
            self.events: list[ForumEvent] = review.hold_thread(
                thread_id=self.thread_id, post_id=first, forum="history", title="Rome",
                body="www.example.com", actor=starter, now=self.now, reason="links")
        else:
            self.events = threads.start_thread(
                thread_id=self.thread_id, post_id=first, forum="history", title="Rome",
                body="first", actor=starter, now=self.now)
        self.state: Thread | None = threads.fold(self.events)
        self.posts: list[int] = [first]
        self.held: list[int] = [first] if held_start else []

    def pick(self, known: list[int], index: int) -> int:
        return known[index % len(known)] if known and index < 36 else FAKE_POST

    def body(self, a: int, b: int) -> str:
        quoted = [self.pick(self.posts, a)] + ([self.pick(self.posts, b)] if b % 3 else [])
        return "re " + "".join(f"[quote=x post={p}]q[/quote]" for p in quoted)

    def author_of(self, post_id: int, fallback: Actor) -> Actor:
        post = self.state.posts.get(post_id) if self.state else None
        return Actor(post.author, "member") if post and not post.guest else fallback

    def liker_of(self, post_id: int, fallback: Actor) -> Actor:
        post = self.state.posts.get(post_id) if self.state else None
        return Actor(min(post.likers), "member") if post and post.likers else fallback

    def run(self, kind: str, who: int, a: int, b: int, minutes: int, odd: bool) -> None:
        actor = ACTORS[who]
        if who % 2 and kind in ("edit", "delete"):  # often the post's own author
            actor = self.author_of(self.pick(self.posts, a), actor)
        elif who % 2 and kind == "unlike":
            actor = self.liker_of(self.pick(self.posts, a), actor)
        elif kind == "bump" and who % 2:
            actor = self.starter
        elif kind in ("approve", "reject", "lock", "move") and who % 3:
            actor = ACTORS[6]
        self.now += timedelta(minutes=minutes)
        now = self.now.astimezone(ELSEWHERE) if odd else self.now
        state = self.state if kind in ("approve", "reject") else threads.visible(self.state)
        decide: dict[str, Callable[[], list[ForumEvent]]] = {
            "reply": lambda: threads.post_reply(state, post_id=next(self.ids), body="hi",
                                                actor=actor, now=now),
            "quote": lambda: threads.post_reply(state, post_id=next(self.ids),
                                                body=self.body(a, b), actor=actor, now=now),
            "edit": lambda: threads.edit_post(state, post_id=self.pick(self.posts, a),
                                              body=self.body(0, 0) if b % 4 == 1 else "e",
                                              actor=actor, now=now),
            "delete": lambda: threads.delete_post(state, post_id=self.pick(self.posts, a),
                                                  actor=actor, now=now),
            "like": lambda: threads.like(state, post_id=self.pick(self.posts, a),
                                         actor=actor, now=now, liked=True),
            "unlike": lambda: threads.like(state, post_id=self.pick(self.posts, a),
                                           actor=actor, now=now, liked=False),
            "lock": lambda: threads.set_locked(state, actor=actor, now=now, locked=True),
            "unlock": lambda: threads.set_locked(state, actor=actor, now=now, locked=False),
            "move": lambda: threads.move(state, to_forum=("history", "misc")[a % 2],
                                         actor=actor, now=now),
            "bump": lambda: threads.bump(state, actor=actor, now=now),
            "hold": lambda: review.hold_reply(state, post_id=next(self.ids),
                                              body=self.body(a, b), actor=actor, now=now,
                                              reason="links"),
            "approve": lambda: review.approve(state, held_id=self.pick(self.held, a),
                                              actor=actor, now=now),
            "reject": lambda: review.reject(state, held_id=self.pick(self.held, a),
                                            actor=actor, now=now),
        }
        try:
            new = decide[kind]()
        except DomainError:
            return
        self.events.extend(new)
        for event in new:
            self.state = threads.evolve(self.state, event)
            post_id = getattr(event, "post_id", None)
            if type(event).__name__ == "PostAdded" and post_id not in self.posts:
                self.posts.append(post_id)
            held_id = getattr(event, "held_id", None)
            if type(event).__name__ in ("PostHeld", "ThreadHeld"):
                self.held.append(held_id)


def outcome(decide: Callable[[], list[ForumEvent]]) -> object:
    try:
        return decide()
    except DomainError as error:
        return type(error), str(error)


def decisions(state: Thread | None, history: History) -> list[object]:
    """Every decision the write side could make next, for each post and held post."""
    now = history.now + timedelta(hours=30)
    out: list[object] = []
    visible = threads.visible(state)
    for post_id in [*history.posts, FAKE_POST]:
        body = f"[quote=x post={post_id}]q[/quote]"
        for actor in ACTORS:
            out.append(outcome(lambda a=actor, b=body: threads.post_reply(  # type: ignore[misc]
                visible, post_id=1, body=b, actor=a, now=now)))
            out.append(outcome(lambda a=actor, p=post_id: threads.edit_post(  # type: ignore[misc]
                visible, post_id=p, body="again", actor=a, now=now)))
            out.append(outcome(lambda a=actor, p=post_id: threads.like(  # type: ignore[misc]
                visible, post_id=p, actor=a, now=now, liked=True)))
            out.append(outcome(lambda a=actor, p=post_id: threads.delete_post(  # type: ignore[misc]
                visible, post_id=p, actor=a, now=now)))
    for actor in ACTORS:
        out.append(outcome(lambda a=actor: threads.bump(visible, actor=a, now=now)))  # type: ignore[misc]
        out.append(outcome(lambda a=actor: threads.move(  # type: ignore[misc]
            visible, to_forum="misc", actor=a, now=now)))
    for held_id in [*history.held, FAKE_POST]:
        out.append(outcome(lambda h=held_id: review.approve(  # type: ignore[misc]
            state, held_id=h, actor=OPERATOR, now=now)))
    return out


def from_snapshot(events: list[ForumEvent], cut: int) -> Thread | None:
    head = threads.fold(events[:cut])
    assert head is not None
    state: Thread | None = snapshot.decode(snapshot.encode(head))
    for event in events[cut:]:
        state = threads.evolve(state, event)
    return state


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(held_start=st.booleans(), starter=st.integers(0, len(ACTORS) - 1),
       ops=st.lists(op, min_size=15, max_size=80))
def test_snapshot_and_tail_equal_the_whole_stream_and_decide_the_same(
        held_start: bool, starter: int, ops: list[tuple[str, int, int, int, int, bool]]):
    history = History(held_start, ACTORS[starter])
    for kind, who, a, b, minutes, odd in ops:
        history.run(kind, who, a, b, minutes, odd)
    whole = threads.fold(history.events)
    expected = decisions(whole, history)
    cuts = range(1, len(history.events) + 1)
    for cut in cuts:
        assert from_snapshot(history.events, cut) == whole, f"cut at version {cut}"
    for cut in {1, len(cuts) // 2 or 1, len(cuts)}:  # the decisions: costlier, a few cuts
        state = from_snapshot(history.events, cut)
        assert decisions(state, history) == expected, f"cut at version {cut}"

def test_an_empty_thread_and_one_of_every_kind_of_post_round_trip():
    history = History(False, ACTORS[0])
    for kind, who in [("reply", 3), ("reply", 5), ("hold", 4), ("like", 1), ("edit", 0),
                      ("delete", 1), ("lock", 6), ("approve", 7), ("reply", 2)]:
        history.run(kind, who, 1, 2, 5, kind == "reply")
    state = threads.fold(history.events)
    assert state is not None and len(state.posts) >= 3 and state.posts.odd_created
    assert snapshot.decode(snapshot.encode(state)) == state
    only_started = threads.fold(history.events[:1])
    assert only_started is not None
    assert snapshot.decode(snapshot.encode(only_started)) == only_started
