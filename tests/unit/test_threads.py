"""The pure decisions about threads and posts (service/domain/threads.py, text.py): no I/O."""

from __future__ import annotations

from datetime import timedelta

import pytest

from events.threads import (
    PostAdded,
    PostDeleted,
    PostEdited,
    PostLiked,
    PostQuoted,
    PostUnliked,
    ThreadBumped,
    ThreadLocked,
    ThreadMoved,
    ThreadStarted,
    ThreadUnlocked,
)
from service.domain import threads
from service.domain.actors import OPERATOR, Actor
from service.domain.errors import (
    ConflictError,
    ForbiddenError,
    InvalidInputError,
    NotFoundError,
    QuoteNotFoundError,
    ThreadLockedError,
    TooSoonError,
)
from service.domain.text import BODY_MAX, TITLE_MAX, clean_body, clean_title
from tests.builders import NOW, ThreadHistory, guest, member, moderator, new_id, of_type, quote


def start(title: str = "Rome", body: str = "first", actor: Actor | None = None):
    return threads.start_thread(thread_id=new_id(), post_id=new_id(), forum="history",
                                title=title, body=body, actor=actor or member(), now=NOW)


def reply(history: ThreadHistory, body: str = "a reply", actor: Actor | None = None,
          at=NOW):
    return threads.post_reply(history.state, post_id=new_id(), body=body,
                              actor=actor or member(), now=at)


# -- starting a thread ----------------------------------------------------------------

def test_start_thread_gives_thread_started_then_post_number_one_by_the_op():
    ann = member("ann")
    started, first = start(title="Rome", body="hello", actor=ann)
    assert isinstance(started, ThreadStarted)
    assert (started.title, started.author, started.guest) == ("Rome", "ann", False)
    assert isinstance(first, PostAdded)
    assert (first.number, first.op, first.first_reply, first.body) == (1, True, False, "hello")
    assert first.thread_id == started.thread_id


def test_a_guest_starts_a_thread_marked_guest():
    started, first = start(actor=guest("visitor"))
    assert started.guest and first.guest
    assert first.author == "visitor"


@pytest.mark.parametrize("title", ["", " ", "\t\n", "\x00\x01\x7f"])
def test_empty_title_is_rejected(title):
    with pytest.raises(InvalidInputError, match="title"):
        start(title=title)


def test_title_of_200_characters_is_accepted():
    started = start(title="t" * TITLE_MAX)[0]
    assert len(started.title) == 200


def test_title_of_201_characters_is_rejected():
    with pytest.raises(InvalidInputError, match="200"):
        start(title="t" * (TITLE_MAX + 1))


def test_title_length_counts_characters_not_bytes():
    assert len(start(title="é" * 200)[0].title) == 200


@pytest.mark.parametrize("body", ["", "   ", "\n\n", "\x00\x1b\x7f"])
def test_empty_body_is_rejected(body):
    with pytest.raises(InvalidInputError, match="body"):
        start(body=body)


def test_body_of_50000_characters_is_accepted():
    assert len(start(body="b" * BODY_MAX)[1].body) == 50_000


def test_body_of_50001_characters_is_rejected():
    with pytest.raises(InvalidInputError, match="50000"):
        start(body="b" * (BODY_MAX + 1))


def test_body_of_50000_multibyte_characters_is_accepted():
    assert len(start(body="ж" * BODY_MAX)[1].body) == BODY_MAX


def test_control_characters_are_stripped_from_title_and_body():
    started, first = start(title="Ro\x00me\x1b\u2028", body="he\x00l\x07lo\x7f\x85 world\ufeff")
    assert started.title == "Rome"
    assert first.body == "hello world"


def test_newlines_and_tabs_survive_in_a_body_and_crlf_becomes_lf():
    assert clean_body("one\r\ntwo\rthree\n\tfour") == "one\ntwo\nthree\n\tfour"


def test_title_whitespace_is_collapsed():
    assert clean_title("  the   fall\tof\nRome ") == "the fall of Rome"


def test_markup_and_sql_are_kept_verbatim_as_text():
    nasty = "<script>alert('x')</script>'; DROP TABLE events; --"
    assert start(body=nasty)[1].body == nasty


def test_a_new_thread_cannot_quote_any_post():
    with pytest.raises(QuoteNotFoundError):
        start(body=quote(new_id()) + "reply")


# -- replies --------------------------------------------------------------------------

def test_reply_to_missing_thread_is_not_found():
    with pytest.raises(NotFoundError):
        threads.post_reply(None, post_id=1, body="x", actor=member(), now=NOW)


def test_reply_appends_post_then_bump():
    history = ThreadHistory()
    new = reply(history, body="me too")
    assert [type(e) for e in new] == [PostAdded, ThreadBumped]
    added, bumped = new
    assert (added.number, added.body, added.forum) == (2, "me too", "history")
    assert bumped.reason == "reply"
    assert bumped.thread_id == history.thread_id


def test_post_numbers_are_consecutive():
    history = ThreadHistory()
    for _ in range(30):
        history.reply()
    numbers = [e.number for e in of_type(history.events, PostAdded)]
    assert numbers == list(range(1, 32))
    assert history.state.count == 31


def test_deleted_posts_keep_their_numbers_and_the_next_reply_continues():
    history = ThreadHistory()
    second = history.reply()
    history.delete(second)
    added = reply(history)[0]
    assert added.number == 3
    assert history.state.posts[second].number == 2


def test_first_reply_flag_is_set_only_on_post_number_two():
    history = ThreadHistory()
    flags = []
    for _ in range(4):
        added = reply(history)[0]
        flags.append((added.number, added.first_reply))
        history.apply([added])
    assert flags == [(2, True), (3, False), (4, False), (5, False)]


def test_starter_reply_is_marked_op_and_others_are_not():
    ann = member("ann")
    history = ThreadHistory(ann)
    assert reply(history, actor=ann)[0].op is True
    assert reply(history, actor=member("bob"))[0].op is False


def test_op_flag_matches_the_starter_name_case_insensitively():
    history = ThreadHistory(member("Ann"))
    assert reply(history, actor=member("aNN"))[0].op is True


def test_guest_with_the_starters_name_is_not_op_of_a_members_thread():
    history = ThreadHistory(member("ann"))
    assert reply(history, actor=guest("ann"))[0].op is False


def test_member_with_the_starters_name_is_not_op_of_a_guests_thread():
    history = ThreadHistory(guest("ann"))
    assert reply(history, actor=member("ann"))[0].op is False
    assert reply(history, actor=guest("ANN"))[0].op is True


def test_reply_to_locked_thread_is_rejected():
    history = ThreadHistory()
    history.lock()
    with pytest.raises(ThreadLockedError):
        reply(history, actor=member())
    with pytest.raises(ThreadLockedError):
        reply(history, actor=guest())
    with pytest.raises(ThreadLockedError):
        reply(history, actor=history.starter)


def test_moderators_may_reply_to_a_locked_thread():
    history = ThreadHistory()
    history.lock()
    assert reply(history, actor=moderator())[0].number == 2
    assert reply(history, actor=OPERATOR)[0].number == 2


def test_unlocked_thread_takes_replies_again():
    history = ThreadHistory()
    history.lock()
    history.apply(threads.set_locked(history.state, actor=moderator(), now=NOW, locked=False))
    assert reply(history)[0].number == 2


def test_reply_body_rules_apply_to_replies_too():
    history = ThreadHistory()
    with pytest.raises(InvalidInputError):
        reply(history, body=" \x00 ")
    with pytest.raises(InvalidInputError):
        reply(history, body="x" * (BODY_MAX + 1))


# -- quotes ---------------------------------------------------------------------------

def test_quote_of_an_existing_post_records_one_post_quoted_event():
    bob = member("bob")
    history = ThreadHistory()
    quoted = history.reply(bob, "original words")
    new = reply(history, body=quote(quoted, "bob") + "I agree")
    added = new[0]
    assert [type(e) for e in new] == [PostAdded, PostQuoted, ThreadBumped]
    assert [(q.post_id, q.number, q.author) for q in added.quotes] == [(quoted, 2, "bob")]
    pq = new[1]
    assert (pq.post_id, pq.quoted_post_id, pq.quoted_number, pq.quoted_author) == (
        added.post_id, quoted, 2, "bob")


def test_each_quoted_post_gets_its_own_event_in_order():
    history = ThreadHistory()
    a, b = history.reply(), history.reply()
    body = quote(b) + quote(history.first_post_id) + quote(a) + "all of you"
    new = reply(history, body=body)
    assert [e.quoted_post_id for e in of_type(new, PostQuoted)] == [b, history.first_post_id, a]
    assert isinstance(new[-1], ThreadBumped)


def test_the_same_post_quoted_twice_is_one_quote():
    history = ThreadHistory()
    a = history.reply()
    new = reply(history, body=quote(a) + quote(a) + "twice")
    assert len(of_type(new, PostQuoted)) == 1


def test_quote_of_a_post_that_does_not_exist_is_rejected():
    history = ThreadHistory()
    with pytest.raises(QuoteNotFoundError):
        reply(history, body=quote(new_id()) + "hm")


def test_quote_of_a_post_in_another_thread_is_rejected():
    other = ThreadHistory()
    history = ThreadHistory()
    with pytest.raises(QuoteNotFoundError):
        reply(history, body=quote(other.first_post_id) + "from elsewhere")


def test_quote_of_a_deleted_post_is_rejected():
    history = ThreadHistory()
    gone = history.reply()
    history.delete(gone)
    with pytest.raises(QuoteNotFoundError):
        reply(history, body=quote(gone) + "hm")


def test_quote_not_found_is_an_invalid_input():
    assert issubclass(QuoteNotFoundError, InvalidInputError)


def test_plain_quotes_without_a_post_id_are_not_references():
    history = ThreadHistory()
    new = reply(history, body="[quote]someone said[/quote][quote=bob]x[/quote] yes")
    assert not of_type(new, PostQuoted)


# -- bumping --------------------------------------------------------------------------

def test_starter_may_bump_once():
    history = ThreadHistory()
    new = threads.bump(history.state, actor=history.starter, now=NOW + timedelta(days=3))
    assert [(type(e), e.reason) for e in new] == [(ThreadBumped, "starter")]


def test_starter_bump_twice_within_24_hours_is_too_soon():
    history = ThreadHistory()
    history.bump(history.starter, at=NOW)
    with pytest.raises(TooSoonError) as refused:
        threads.bump(history.state, actor=history.starter, now=NOW + timedelta(hours=1))
    assert refused.value.retry_after == 23 * 3600


def test_too_soon_retry_after_is_at_least_one_second():
    history = ThreadHistory()
    history.bump(history.starter, at=NOW)
    almost = NOW + timedelta(hours=24) - timedelta(milliseconds=1)
    with pytest.raises(TooSoonError) as refused:
        threads.bump(history.state, actor=history.starter, now=almost)
    assert refused.value.retry_after == 1


def test_starter_may_bump_again_after_24_hours():
    history = ThreadHistory()
    history.bump(history.starter, at=NOW)
    later = NOW + timedelta(hours=24)
    assert threads.bump(history.state, actor=history.starter, now=later)[0].reason == "starter"


def test_starter_bump_is_matched_case_insensitively():
    history = ThreadHistory(member("Ann"))
    history.bump(member("ann"), at=NOW)
    with pytest.raises(TooSoonError):
        threads.bump(history.state, actor=member("ANN"), now=NOW + timedelta(minutes=5))


def test_replies_do_not_use_up_the_starters_bump():
    history = ThreadHistory()
    history.reply(history.starter)
    assert threads.bump(history.state, actor=history.starter, now=NOW)[0].reason == "starter"


def test_non_starter_bump_is_forbidden():
    history = ThreadHistory(member("ann"))
    with pytest.raises(ForbiddenError):
        threads.bump(history.state, actor=member("bob"), now=NOW)
    with pytest.raises(ForbiddenError):
        threads.bump(history.state, actor=guest("ann"), now=NOW)


def test_guest_starter_may_bump_their_thread():
    history = ThreadHistory(guest("visitor"))
    new = threads.bump(history.state, actor=guest("visitor"), now=NOW)
    assert new[0].reason == "starter"


def test_moderator_may_bump_any_time():
    history = ThreadHistory()
    mod = moderator()
    for minutes in range(5):
        history.bump(mod, at=NOW + timedelta(minutes=minutes))
    history.bump(OPERATOR, at=NOW + timedelta(minutes=6))
    reasons = [e.reason for e in of_type(history.events, ThreadBumped)]
    assert reasons == ["moderator"] * 6


def test_moderator_bumps_do_not_use_up_the_starters_bump():
    history = ThreadHistory()
    history.bump(moderator(), at=NOW)
    assert threads.bump(history.state, actor=history.starter, now=NOW)[0].reason == "starter"


def test_starter_cannot_bump_a_locked_thread_but_a_moderator_can():
    history = ThreadHistory()
    history.lock()
    with pytest.raises(ThreadLockedError):
        threads.bump(history.state, actor=history.starter, now=NOW)
    assert threads.bump(history.state, actor=moderator(), now=NOW)[0].reason == "moderator"


def test_bump_of_missing_thread_is_not_found():
    with pytest.raises(NotFoundError):
        threads.bump(None, actor=OPERATOR, now=NOW)


def test_bump_moves_bumped_at():
    history = ThreadHistory()
    later = NOW + timedelta(days=365 * 7)
    history.reply(at=later)
    assert history.state.bumped_at == later
    assert history.state.created_at == NOW


# -- editing --------------------------------------------------------------------------

def test_author_may_edit_their_post():
    ann = member("ann")
    history = ThreadHistory()
    post_id = history.reply(ann, "tpyo")
    later = NOW + timedelta(minutes=3)
    (edited,) = threads.edit_post(history.state, post_id=post_id, body="typo", actor=ann,
                                  now=later)
    assert isinstance(edited, PostEdited)
    assert (edited.body, edited.number, edited.author, edited.created_at) == (
        "typo", 2, "ann", NOW)
    history.apply([edited])
    assert history.state.posts[post_id].edited_at == later  # the body: only in the log


def test_moderator_may_edit_anyones_post():
    history = ThreadHistory()
    post_id = history.reply(member())
    new = threads.edit_post(history.state, post_id=post_id, body="[snip]", actor=moderator(),
                            now=NOW)
    assert new[0].body == "[snip]"


def test_another_member_may_not_edit_a_post():
    history = ThreadHistory()
    post_id = history.reply(member("ann"))
    with pytest.raises(ForbiddenError):
        threads.edit_post(history.state, post_id=post_id, body="x", actor=member("bob"),
                          now=NOW)


def test_a_guest_may_not_edit_even_a_post_under_their_own_name():
    history = ThreadHistory()
    post_id = history.reply(guest("visitor"))
    with pytest.raises(ForbiddenError):
        threads.edit_post(history.state, post_id=post_id, body="x", actor=guest("visitor"),
                          now=NOW)


def test_edit_of_a_deleted_post_is_a_conflict():
    ann = member("ann")
    history = ThreadHistory()
    post_id = history.reply(ann)
    history.delete(post_id)
    with pytest.raises(ConflictError):
        threads.edit_post(history.state, post_id=post_id, body="x", actor=ann, now=NOW)


def test_edit_in_a_locked_thread_is_refused_to_the_author():
    ann = member("ann")
    history = ThreadHistory()
    post_id = history.reply(ann)
    history.lock()
    with pytest.raises(ThreadLockedError):
        threads.edit_post(history.state, post_id=post_id, body="x", actor=ann, now=NOW)
    assert threads.edit_post(history.state, post_id=post_id, body="x", actor=moderator(),
                             now=NOW)


def test_edit_of_unknown_post_is_not_found():
    history = ThreadHistory()
    with pytest.raises(NotFoundError):
        threads.edit_post(history.state, post_id=new_id(), body="x", actor=OPERATOR, now=NOW)


def test_edit_follows_the_body_rules():
    ann = member("ann")
    history = ThreadHistory(ann)
    with pytest.raises(InvalidInputError):
        threads.edit_post(history.state, post_id=history.first_post_id, body="\x00",
                          actor=ann, now=NOW)


def test_edit_may_quote_earlier_posts_but_not_later_ones_or_itself():
    ann = member("ann")
    history = ThreadHistory()
    earlier = history.reply()
    mine = history.reply(ann)
    later = history.reply()
    new = threads.edit_post(history.state, post_id=mine, body=quote(earlier) + "yes",
                            actor=ann, now=NOW)
    assert [type(e) for e in new] == [PostEdited, PostQuoted]
    for bad in (later, mine):
        with pytest.raises(QuoteNotFoundError):
            threads.edit_post(history.state, post_id=mine, body=quote(bad) + "x", actor=ann,
                              now=NOW)


# -- deleting -------------------------------------------------------------------------

def test_author_may_delete_their_post_which_keeps_its_number():
    ann = member("ann")
    history = ThreadHistory()
    post_id = history.reply(ann)
    (deleted,) = threads.delete_post(history.state, post_id=post_id, actor=ann, now=NOW)
    assert isinstance(deleted, PostDeleted)
    assert deleted.number == 2
    history.apply([deleted])
    assert history.state.posts[post_id].deleted
    assert history.state.count == 2


def test_another_member_may_not_delete_a_post():
    history = ThreadHistory()
    post_id = history.reply(member("ann"))
    with pytest.raises(ForbiddenError):
        threads.delete_post(history.state, post_id=post_id, actor=member("bob"), now=NOW)


def test_deleting_twice_is_a_conflict():
    history = ThreadHistory()
    post_id = history.reply()
    history.delete(post_id)
    with pytest.raises(ConflictError):
        threads.delete_post(history.state, post_id=post_id, actor=OPERATOR, now=NOW)


# -- likes ----------------------------------------------------------------------------

def test_a_member_likes_another_members_post_once():
    history = ThreadHistory()
    post_id = history.reply(member("ann"))
    bob = member("bob")
    (liked,) = history.apply(threads.like(history.state, post_id=post_id, actor=bob, now=NOW,
                                          liked=True))
    assert isinstance(liked, PostLiked)
    assert (liked.likes, liked.author) == (1, "ann")
    with pytest.raises(ConflictError):
        threads.like(history.state, post_id=post_id, actor=member("BOB"), now=NOW, liked=True)


def test_likes_count_each_member_and_unlike_takes_one_back():
    history = ThreadHistory()
    post_id = history.reply(member("ann"))
    for name in ("bob", "cy", "dee"):
        history.apply(threads.like(history.state, post_id=post_id, actor=member(name),
                                   now=NOW, liked=True))
    (unliked,) = threads.like(history.state, post_id=post_id, actor=member("cy"), now=NOW,
                              liked=False)
    assert isinstance(unliked, PostUnliked)
    assert unliked.likes == 2


def test_unlike_without_a_like_is_a_conflict():
    history = ThreadHistory()
    post_id = history.reply()
    with pytest.raises(ConflictError):
        threads.like(history.state, post_id=post_id, actor=member(), now=NOW, liked=False)


def test_liking_your_own_post_is_forbidden():
    ann = member("ann")
    history = ThreadHistory()
    post_id = history.reply(ann)
    with pytest.raises(ForbiddenError):
        threads.like(history.state, post_id=post_id, actor=member("ANN"), now=NOW, liked=True)


@pytest.mark.parametrize("actor", [guest("visitor"), OPERATOR], ids=["guest", "operator"])
def test_only_members_may_like(actor):
    history = ThreadHistory()
    post_id = history.reply()
    with pytest.raises(ForbiddenError):
        threads.like(history.state, post_id=post_id, actor=actor, now=NOW, liked=True)


def test_a_member_may_like_a_guests_post_under_the_members_own_name():
    history = ThreadHistory()
    post_id = history.reply(guest("ann"))
    assert threads.like(history.state, post_id=post_id, actor=member("ann"), now=NOW,
                        liked=True)


def test_liking_a_deleted_post_is_a_conflict():
    history = ThreadHistory()
    post_id = history.reply()
    history.delete(post_id)
    with pytest.raises(ConflictError):
        threads.like(history.state, post_id=post_id, actor=member(), now=NOW, liked=True)


def test_liking_an_unknown_post_is_not_found():
    history = ThreadHistory()
    with pytest.raises(NotFoundError):
        threads.like(history.state, post_id=new_id(), actor=member(), now=NOW, liked=True)


# -- moderation -----------------------------------------------------------------------

def test_only_moderators_lock_and_locking_twice_is_a_conflict():
    history = ThreadHistory()
    with pytest.raises(ForbiddenError):
        threads.set_locked(history.state, actor=history.starter, now=NOW, locked=True)
    (locked,) = history.apply(threads.set_locked(history.state, actor=moderator(), now=NOW,
                                                 locked=True))
    assert isinstance(locked, ThreadLocked)
    with pytest.raises(ConflictError):
        threads.set_locked(history.state, actor=OPERATOR, now=NOW, locked=True)
    (unlocked,) = threads.set_locked(history.state, actor=OPERATOR, now=NOW, locked=False)
    assert isinstance(unlocked, ThreadUnlocked)


def test_move_carries_the_threads_counters_and_refuses_a_no_op():
    history = ThreadHistory()
    history.reply(at=NOW + timedelta(days=1))
    with pytest.raises(ForbiddenError):
        threads.move(history.state, to_forum="misc", actor=member(), now=NOW)
    with pytest.raises(ConflictError):
        threads.move(history.state, to_forum="history", actor=OPERATOR, now=NOW)
    (moved,) = threads.move(history.state, to_forum="misc", actor=OPERATOR, now=NOW)
    assert isinstance(moved, ThreadMoved)
    assert (moved.from_forum, moved.to_forum, moved.posts, moved.unanswered) == (
        "history", "misc", 2, False)
    assert moved.bumped_at == NOW + timedelta(days=1)
