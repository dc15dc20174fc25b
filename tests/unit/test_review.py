"""Hold for review, the pure part (service/domain/review.py): which posts are held, and what
approving and rejecting decide. No I/O."""

from __future__ import annotations

from datetime import timedelta

import pytest

from events.held import HeldPostApproved, HeldPostRejected, PostHeld, ThreadHeld
from events.threads import PostAdded, PostQuoted, ThreadBumped, ThreadStarted
from service.domain import review, threads
from service.domain.actors import OPERATOR, Actor
from service.domain.errors import (
    ConflictError,
    ForbiddenError,
    NotFoundError,
    QuoteNotFoundError,
    ThreadLockedError,
)
from tests.builders import NOW, ThreadHistory, guest, member, moderator, new_id, of_type, quote

LINKS = ("see [url=https://x.example]this[/url]", "[URL]x.example[/url]", "go to http://x.io",
         "HTTPS://X.IO now", "visit www.example.com")
NO_LINKS = ("plain words", "an url-less post", "wwwx dot com", "http:/ half", "[b]x[/b]")


def guest_with_id(name: str = "gus") -> Actor:
    return Actor(name, "guest", guest_id="g1d")


@pytest.mark.parametrize("body", LINKS)
def test_a_link_is_a_url_tag_or_http_or_www_anywhere(body):
    assert review.has_link(body)


@pytest.mark.parametrize("body", NO_LINKS)
def test_text_without_a_link_has_none(body):
    assert not review.has_link(body)


def test_by_default_a_guests_post_with_a_link_is_held_and_nothing_else():
    rule = review.policy("guest-links")
    assert review.hold_reason(rule, guest(), LINKS[0])
    assert review.hold_reason(rule, guest(), "plain") is None
    assert review.hold_reason(rule, member(), LINKS[0]) is None
    assert review.hold_reason(rule, moderator(), LINKS[0]) is None
    assert review.hold_reason(rule, OPERATOR, LINKS[0]) is None


def test_the_other_policies_hold_what_they_say():
    assert review.hold_reason("guests", guest(), "plain")
    assert review.hold_reason("guests", member(), LINKS[2]) is None
    assert review.hold_reason("links", member(), LINKS[2])
    assert review.hold_reason("links", guest(), LINKS[2])
    assert review.hold_reason("links", member(), "plain") is None
    assert review.hold_reason("links", moderator(), LINKS[2]) is None
    for actor in (guest(), member()):
        assert review.hold_reason("off", actor, LINKS[0]) is None


def test_the_policy_setting_is_checked_not_guessed():
    assert review.policy(" Guests ") == "guests"
    assert review.DEFAULT_POLICY == "guest-links"
    with pytest.raises(ValueError, match="FORUM_HOLD"):
        review.policy("guest_links")


def held_reply(history: ThreadHistory, actor: Actor | None = None, body: str = LINKS[0]
               ) -> int:
    held_id = new_id()
    history.apply(review.hold_reply(history.state, post_id=held_id, body=body,
                                    actor=actor or guest_with_id(), now=NOW, reason="r"))
    return held_id


def test_a_held_reply_takes_no_number_and_is_kept_pending_with_its_author():
    history = ThreadHistory()
    history.reply()
    held_id = held_reply(history)
    (event,) = of_type(history.events, PostHeld)
    assert (event.held_id, event.author_key, event.guest_id) == (held_id, "guest:g1d", "g1d")
    state = history.state
    assert state.count == 2 and held_id not in state.posts
    assert state.held[held_id].body == LINKS[0]
    # the next published reply takes number 3: no hole where the held one would be
    history.reply()
    assert max(p.number for p in history.state.posts.values()) == 3


def test_approving_publishes_the_post_with_the_threads_next_number_at_that_moment():
    history = ThreadHistory()
    first_held = held_reply(history)
    second_held = held_reply(history, body=quote(history.first_post_id) + LINKS[1])
    history.reply()  # number 2, published while the others wait
    later = NOW + timedelta(hours=1)
    new = history.apply(review.approve(history.state, held_id=second_held,
                                       actor=moderator("mo"), now=later))
    approved, added, quoted, bumped = new
    assert isinstance(approved, HeldPostApproved) and approved.actor == "mo"
    assert (approved.held_id, approved.number, approved.author_key) == (
        second_held, 3, "guest:g1d")
    assert isinstance(added, PostAdded)
    assert (added.post_id, added.number, added.author, added.guest, added.occurred_at) == (
        second_held, 3, "gus", True, later)
    assert not added.first_reply and added.quotes[0].post_id == history.first_post_id
    assert isinstance(quoted, PostQuoted) and isinstance(bumped, ThreadBumped)
    history.apply(review.approve(history.state, held_id=first_held, actor=OPERATOR,
                                 now=later))
    numbers = sorted(p.number for p in history.state.posts.values())
    assert numbers == [1, 2, 3, 4]
    assert history.state.held == {}


def test_the_first_approved_reply_takes_the_thread_off_the_unanswered_list():
    history = ThreadHistory()
    held_id = held_reply(history)
    added = of_type(review.approve(history.state, held_id=held_id, actor=moderator(),
                                   now=NOW), PostAdded)[0]
    assert added.number == 2 and added.first_reply


def test_a_held_reply_is_refused_for_what_a_reply_is_refused_for():
    history = ThreadHistory()
    with pytest.raises(QuoteNotFoundError):
        held_reply(history, body=quote(new_id()) + LINKS[0])
    history.lock()
    with pytest.raises(ThreadLockedError):
        held_reply(history)
    with pytest.raises(NotFoundError):
        review.hold_reply(None, post_id=new_id(), body="x", actor=guest(), now=NOW,
                          reason="r")


def test_a_reply_held_before_its_thread_was_locked_is_still_published_by_approval():
    history = ThreadHistory()
    held_id = held_reply(history)
    history.lock()
    new = review.approve(history.state, held_id=held_id, actor=moderator(), now=NOW)
    assert of_type(new, PostAdded)[0].number == 2


def test_only_moderators_decide_and_each_held_post_only_once():
    history = ThreadHistory()
    held_id = held_reply(history)
    for who in (member(), guest_with_id()):
        for decide in (review.approve, review.reject):
            with pytest.raises(ForbiddenError):
                decide(history.state, held_id=held_id, actor=who, now=NOW)
    with pytest.raises(NotFoundError):
        review.approve(history.state, held_id=new_id(), actor=moderator(), now=NOW)
    (rejected,) = history.apply(review.reject(history.state, held_id=held_id,
                                              actor=moderator(), now=NOW))
    assert isinstance(rejected, HeldPostRejected) and rejected.author_key == "guest:g1d"
    for decide in (review.approve, review.reject):
        with pytest.raises(ConflictError):
            decide(history.state, held_id=held_id, actor=moderator(), now=NOW)
    assert history.state.count == 1 and held_id not in history.state.posts


def test_a_held_new_thread_does_not_exist_until_approved():
    thread_id, post_id = new_id(), new_id()
    events = review.hold_thread(thread_id=thread_id, post_id=post_id, forum="history",
                                title=" Cheap ", body=LINKS[4], actor=guest_with_id(),
                                now=NOW, reason="r")
    (held,) = events
    assert isinstance(held, ThreadHeld) and held.title == "Cheap"
    state = threads.fold(events)
    assert state is not None and threads.visible(state) is None
    with pytest.raises(NotFoundError):  # nobody replies to it meanwhile
        review.hold_reply(state, post_id=new_id(), body=LINKS[0], actor=guest(), now=NOW,
                          reason="r")
    with pytest.raises(NotFoundError):
        threads.post_reply(threads.visible(state), post_id=new_id(), body="x",
                           actor=member(), now=NOW)
    later = NOW + timedelta(days=1)
    new = review.approve(state, held_id=post_id, actor=moderator(), now=later)
    approved, started, added = new
    assert isinstance(approved, HeldPostApproved) and approved.number == 1
    assert isinstance(started, ThreadStarted) and started.occurred_at == later
    assert (started.thread_id, started.title, started.author, started.guest) == (
        thread_id, "Cheap", "gus", True)
    assert isinstance(added, PostAdded)
    assert (added.post_id, added.number, added.op, added.first_reply) == (
        post_id, 1, True, False)
    published = threads.fold([*events, *new])
    assert threads.visible(published) is published and published is not None
    assert published.count == 1 and post_id in published.decided
    with pytest.raises(ConflictError):
        review.approve(published, held_id=post_id, actor=moderator(), now=later)


def test_a_rejected_new_thread_never_exists():
    post_id = new_id()
    events = review.hold_thread(thread_id=new_id(), post_id=post_id, forum="history",
                                title="Cheap", body=LINKS[4], actor=guest(), now=NOW,
                                reason="r")
    state = threads.fold(events)
    events += review.reject(state, held_id=post_id, actor=moderator(), now=NOW)
    assert threads.visible(threads.fold(events)) is None


def test_a_held_new_thread_may_not_quote():
    with pytest.raises(QuoteNotFoundError):
        review.hold_thread(thread_id=new_id(), post_id=new_id(), forum="history",
                           title="T", body=quote(new_id()) + LINKS[0], actor=guest(),
                           now=NOW, reason="r")
