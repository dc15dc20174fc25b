"""A post as the thread page stores it (workers/readmodels/stored_posts.py) reads back as
the post the API shows: every field, the HTML the renderer makes of its source, times to
the millisecond; and it is stored in few bytes beyond its body."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from common.bbcode import render
from workers.readmodels import rfc3339, stored_posts
from workers.readmodels.values import AuthorHead, PostHead, StoredQuote

times = st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30),
                     timezones=st.just(UTC))
quotes = st.lists(st.tuples(st.integers(1, 2**63 - 1), st.integers(1, 10**6),
                            st.text(max_size=20)), max_size=3)
bodies = st.text(max_size=200) | st.sampled_from([
    "[b]bold[/b] and [i]it[/i]", "[quote=bob post=3]hi[/quote]\nyes", "a < b & c\n\td",
    "[url]http://example.com/[/url]", "[b]unclosed", "\x00\x07 controls",
])


@given(post_id=st.integers(1, 2**63 - 1), thread_id=st.integers(1, 2**63 - 1),
       number=st.integers(1, 10**6), created=times, edited=st.none() | times,
       deleted=st.booleans(), body=bodies, quoted=quotes, author=st.text(max_size=32),
       guest=st.booleans(), op=st.booleans())
def test_a_stored_post_reads_back_whole(
        post_id: int, thread_id: int, number: int, created: datetime,
        edited: datetime | None, deleted: bool, body: str,
        quoted: list[tuple[int, int, str]], author: str, guest: bool, op: bool) -> None:
    stored = stored_posts.encode(post_id, created, edited, deleted, body, quoted, author,
                                 guest, op)
    assert stored_posts.decode(stored, thread_id, number) == PostHead(
        post_id, thread_id, number, rfc3339(created),
        rfc3339(edited) if edited else None, deleted, "" if deleted else body,
        "" if deleted else render(body),
        [] if deleted else [StoredQuote(*q) for q in quoted],
        AuthorHead(author, guest, op))


def test_a_plain_post_costs_few_bytes_beside_its_body() -> None:
    body = "Reply 5 in thread 1234.\nI think the point about the empire is right."
    stored = stored_posts.encode(123456789, datetime(2011, 6, 8, 12, tzinfo=UTC), None,
                                 False, body, [], "user123", True, False)
    assert stored == (b'9:g:user123[123456789,1307534400000,2,"",'
                      b'"Reply 5 in thread 1234.\\nI think the point about the empire is '
                      b'right."]')
    assert len(stored) - len(body) <= 45  # the counter key, the id, the time, the newline
    assert stored_posts.decode(stored, 1, 1).author.name == "user123"
    named = stored_posts.encode(1, datetime(2011, 6, 8, tzinfo=UTC), None, False, "x", [],
                                "Zoë:\n[", False, True)
    key = "m:zoë:\n[".encode()  # a name that is not case-folded is kept apart
    assert named.startswith(b"%d:%s[1," % (len(key), key))
    assert stored_posts.decode(named, 1, 1).author == AuthorHead("Zoë:\n[", False, True)


def test_rendered_html_is_remembered_by_source() -> None:
    body = "[b]remembered[/b] once"
    first = stored_posts.html_of(body)
    assert first == render(body)
    assert stored_posts.html_of(body) is first


PROSE = ("The archive of the old county records was moved twice before the fire, and most "
         "of what survived was catalogued by volunteers who never agreed on a scheme. ") * 4


@given(body=st.text(min_size=50, max_size=3000) | st.just(PROSE) | st.just("é" * 300),
       edited=st.none() | times, quoted=quotes)
def test_a_long_body_is_stored_packed_and_reads_back_whole(
        body: str, edited: datetime | None, quoted: list[tuple[int, int, str]]) -> None:
    stored = stored_posts.encode(7, datetime(2020, 1, 1, tzinfo=UTC), edited, False, body,
                                 quoted, "ann", True, False)
    post = stored_posts.decode(stored, 3, 2)
    assert (post.body, post.html) == (body, render(body))
    assert post.quotes == [StoredQuote(*q) for q in quoted]
    if b"\x00" in stored:  # packed: the text is there once unpacked
        assert body.encode() in stored_posts.unpacked(stored)


def test_prose_is_stored_in_about_two_thirds_of_its_bytes_short_bodies_as_they_are() -> None:
    stored = stored_posts.encode(7, datetime(2020, 1, 1, tzinfo=UTC), None, False, PROSE,
                                 [], "ann", True, False)
    assert b"\x00" in stored and len(stored) < 0.7 * len(PROSE)
    assert PROSE.encode() in stored_posts.unpacked(stored)
    short = "A short reply, " * 10  # 150 bytes: below PACK_FROM
    assert short.encode() in stored_posts.encode(8, datetime(2020, 1, 1, tzinfo=UTC), None,
                                                 False, short, [], "ann", True, False)
    deleted = stored_posts.encode(7, datetime(2020, 1, 1, tzinfo=UTC), None, True, PROSE,
                                  [], "ann", True, False)
    assert b"\x00" not in deleted and stored_posts.decode(deleted, 3, 2).body == ""
