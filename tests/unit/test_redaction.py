"""What an erasure does to each event (events/redaction.py): pure, no database."""

from __future__ import annotations

import time

import msgspec
import pytest

from common.bbcode import render
from events.held import HeldPostApproved, PostHeld
from events.members import MemberRegistered, MemberSuspended
from events.redaction import Subject, gather, redact, rewrite_body
from events.threads import PostAdded, PostEdited, PostLiked, PostQuoted, QuoteInfo, ThreadStarted
from tests.builders import NOW


def subject(erase: bool = False, *, guest: bool = False, posts: set[int] | None = None
            ) -> Subject:
    return Subject("Alice", guest, "anon-1", erase, posts if posts is not None else {5})


def post(author: str = "Alice", body: str = "mine", *, guest: bool = False, post_id: int = 5,
         quotes: list[QuoteInfo] | None = None, actor: str | None = None) -> PostAdded:
    return PostAdded(occurred_at=NOW, actor=actor or author, thread_id=1, forum="f",
                     post_id=post_id, number=2, author=author, guest=guest, op=False,
                     first_reply=False, body=body, quotes=quotes or [])


def test_the_subjects_post_takes_the_pseudonym_and_keeps_its_body():
    new = redact(post(), subject())
    assert isinstance(new, PostAdded)
    assert (new.author, new.actor, new.body) == ("anon-1", "anon-1", "mine")


def test_with_erase_the_body_goes_and_the_number_stays():
    new = redact(post(quotes=[QuoteInfo(post_id=3, number=1, author="bob")]), subject(True))
    assert isinstance(new, PostAdded)
    assert (new.body, new.quotes, new.number, new.post_id) == ("", [], 2, 5)


def test_names_are_matched_without_case_and_guests_are_not_members():
    assert redact(post("ALICE"), subject()) is not None
    assert redact(post("alice", guest=True, post_id=9), subject()) is None
    assert redact(post("alice", guest=True, post_id=9), subject(guest=True)) is not None
    assert redact(post("Alicia", post_id=9), subject()) is None


def test_someone_elses_quote_of_the_subject_is_attributed_to_the_pseudonym():
    body = "[quote=Alice post=5]what she said[/quote]\nI agree"
    quoting = post("bob", body, post_id=6, quotes=[QuoteInfo(post_id=5, number=2,
                                                             author="Alice")])
    new = redact(quoting, subject())
    assert isinstance(new, PostAdded)
    assert new.author == "bob"
    assert new.body == "[quote=anon-1 post=5]what she said[/quote]\nI agree"
    assert new.quotes == [QuoteInfo(post_id=5, number=2, author="anon-1")]
    erased = redact(quoting, subject(True))
    assert isinstance(erased, PostAdded)
    assert erased.body == "[quote=anon-1 post=5][/quote]\nI agree"
    assert "what she said" not in render(erased.body)


def test_quotes_are_matched_by_post_id_where_the_tag_gives_one():
    # A guest who typed the same name is someone else: post 7 is not the subject's.
    assert rewrite_body("[quote=alice post=7]x[/quote]", subject(True)) == \
        "[quote=alice post=7]x[/quote]"
    # Without an id the name decides, as the page shows it.
    assert rewrite_body('[QUOTE="alice"]x[/QUOTE]', subject(True)) == \
        "[quote=anon-1][/QUOTE]"


def test_nested_and_unclosed_quotes():
    nested = "[quote=bob post=3]a [quote=Alice post=5]b[/quote] c[/quote] d"
    assert rewrite_body(nested, subject()) == \
        "[quote=bob post=3]a [quote=anon-1 post=5]b[/quote] c[/quote] d"
    assert rewrite_body(nested, subject(True)) == \
        "[quote=bob post=3]a [quote=anon-1 post=5][/quote] c[/quote] d"
    outer = "[quote=Alice post=5]a [quote=Alice post=5]b[/quote] c[/quote] d"
    assert rewrite_body(outer, subject(True)) == "[quote=anon-1 post=5][/quote] d"
    assert rewrite_body("x [quote=Alice post=5]the rest", subject(True)) == \
        "x [quote=anon-1 post=5]"
    assert rewrite_body("[/quote][quote=bob]k[/quote]", subject(True)) == \
        "[/quote][quote=bob]k[/quote]"


def test_a_like_by_the_subject_and_a_like_of_their_post():
    liked_by = PostLiked(occurred_at=NOW, actor="Alice", thread_id=1, post_id=6, number=3,
                         author="bob", guest=False, likes=1)
    new = redact(liked_by, subject())
    assert isinstance(new, PostLiked)
    assert (new.actor, new.author) == ("anon-1", "bob")
    liked = msgspec.structs.replace(liked_by, actor="bob", author="Alice", post_id=5)
    new = redact(liked, subject())
    assert isinstance(new, PostLiked)
    assert (new.actor, new.author) == ("bob", "anon-1")


def test_member_events_held_posts_and_quote_records():
    registered = MemberRegistered(occurred_at=NOW, actor="Alice", name="Alice")
    assert redact(registered, subject()) == MemberRegistered(occurred_at=NOW, actor="anon-1",
                                                            name="anon-1")
    suspended = MemberSuspended(occurred_at=NOW, actor="mod", name="Alice", reason="spam")
    new = redact(suspended, subject())
    assert isinstance(new, MemberSuspended)
    assert (new.actor, new.name, new.reason) == ("mod", "anon-1", "spam")
    held = PostHeld(occurred_at=NOW, actor="Alice", held_id=8, thread_id=1, forum="f",
                    author="Alice", guest=False, author_key="member:alice", op=False,
                    body="held words")
    s = subject(True)
    gather(held, s)
    assert 8 in s.posts
    new = redact(held, s)
    assert isinstance(new, PostHeld)
    assert (new.author, new.author_key, new.body) == ("anon-1", "member:anon-1", "")
    approved = HeldPostApproved(occurred_at=NOW, actor="mod", held_id=8, thread_id=1,
                                author_key="member:alice", number=3)
    new = redact(approved, s)
    assert isinstance(new, HeldPostApproved)
    assert new.author_key == "member:anon-1"
    quoted = PostQuoted(occurred_at=NOW, actor="bob", thread_id=1, post_id=6,
                        quoted_post_id=5, quoted_number=2, quoted_author="Alice")
    new = redact(quoted, subject())
    assert isinstance(new, PostQuoted)
    assert (new.actor, new.quoted_author) == ("bob", "anon-1")


def test_a_thread_keeps_its_title_and_an_unrelated_event_is_untouched():
    started = ThreadStarted(occurred_at=NOW, actor="Alice", thread_id=1, forum="f",
                            title="Alice's question", author="Alice", guest=False)
    new = redact(started, subject(True))
    assert isinstance(new, ThreadStarted)
    assert (new.author, new.title) == ("anon-1", "Alice's question")
    assert redact(post("bob", "hello", post_id=6), subject(True)) is None
    edited = PostEdited(occurred_at=NOW, actor="Alice", thread_id=1, post_id=5, number=2,
                        author="Alice", guest=False, op=False, created_at=NOW, body="v2")
    new = redact(edited, subject(True))
    assert isinstance(new, PostEdited)
    assert (new.author, new.body) == ("anon-1", "")


@pytest.mark.parametrize("unit", ["[quote=Alice post=5]", "[quote=Alice]x[/quote]",
                                  "[/quote]", "[quote=bob post=5]"])
def test_rewriting_a_body_costs_linear_time(unit: str):
    def cost(n: int) -> float:
        body = unit * n
        started = time.perf_counter()
        rewrite_body(body, subject(True))
        return time.perf_counter() - started

    cost(200)
    small, large = min(cost(1000) for _ in range(3)), min(cost(8000) for _ in range(3))
    assert large < small * 8 * 4, (small, large)
