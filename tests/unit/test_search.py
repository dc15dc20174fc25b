"""Search, the pure parts: what a query means (workers/readmodels/search.py), the words of a
body (common/search_text.py), and what a page of the log changes (workers/search/changes.py)."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from common.characters import drop_controls
from common.search_text import searchable_text
from events.threads import PostAdded, PostDeleted, PostEdited, ThreadMoved, ThreadStarted
from tests.builders import NOW
from workers.readmodels.search import (
    MAX_TERMS,
    QueryError,
    Term,
    snippet_html,
    terms,
    tsquery,
)
from workers.search.changes import changes


def test_words_phrases_and_prefixes():
    assert terms("Zebra lions") == [Term("zebra"), Term("lions")]
    assert terms('"Red zebra" lions') == [Term("red zebra"), Term("lions")]
    assert terms("zeb* z* 1*") == [Term("zeb", prefix=True), Term("z"), Term("1")]
    assert terms('a "b c" d "e f') == [Term("a"), Term("b c"), Term("d"), Term("e f")]
    assert terms('"zeb*"') == [Term("zeb")]  # no prefixes inside a phrase
    assert terms("e-ma* c++ example.com") == [Term("e-ma"), Term("c++"), Term("example.com")]
    assert terms("zebra ZEBRA zebra*") == [Term("zebra"), Term("zebra", prefix=True)]
    assert tsquery(terms('zeb* "red zebra"')) == "'zeb':* & 'red zebra'"


@pytest.mark.parametrize("q", ["", " ", "*", '""', "!", "& | !", "-- ''", "\u0000\u202e"])
def test_nothing_to_look_for(q):
    assert terms(q) == []


def test_tsquery_syntax_is_never_syntax():
    found = terms("zebra & !lions | (x) <-> y:* 'quoted' back\\slash")
    query = tsquery(found)
    # Operators alone hold no word: they are dropped; the rest is quoted text.
    assert [t.text for t in found] == ["zebra", "!lions", "(x)", "y:", "quoted",
                                      "back slash"]
    assert query == "'zebra' & '!lions' & '(x)' & 'y:' & 'quoted' & 'back slash'"


@given(st.text(max_size=200))
def test_any_query_makes_quoted_terms_only(q):
    for term in terms(q):
        assert term.text and "'" not in term.text and "\\" not in term.text
        assert term.text == term.text.lower() and drop_controls(term.text) == term.text
        assert term.text.strip() == term.text and "  " not in term.text
        assert not term.prefix or term.text.isalnum()
        assert term.tsquery().startswith("'")


def test_too_long_or_too_many_terms_is_refused():
    with pytest.raises(QueryError):
        terms("x" * 201)
    with pytest.raises(QueryError):
        terms(" ".join(f"w{i}" for i in range(MAX_TERMS + 1)))
    assert len(terms(" ".join(f"w{i}" for i in range(MAX_TERMS)))) == MAX_TERMS


def test_a_huge_query_is_refused_before_any_work():
    began = time.process_time()
    for _ in range(100):
        with pytest.raises(QueryError):
            terms('"' * 10_000_000)
    assert time.process_time() - began < 1.0


def test_snippets_are_escaped_then_marked():
    assert snippet_html("a \x02<b>zebra</b>\x03 & co") == \
        "a <mark>&lt;b&gt;zebra&lt;/b&gt;</mark> &amp; co"
    assert snippet_html("\x02x") == "x"  # unbalanced: no marks at all


def test_the_words_of_a_body():
    assert searchable_text("plain\r\nwords\x02 ") == "plain\nwords"
    assert searchable_text("[b]wo[/b]rd [i]and[/i] [url=http://x.example]link[/url]") \
        == "word and link"
    quoted = "[quote=ann post=1]her words [quote]older[/quote] still hers[/quote]\nmine"
    assert searchable_text(quoted).split() == ["mine"]
    assert searchable_text("[quote]unclosed quote runs to the end") == ""
    assert searchable_text("a stray [/quote] closer, and [b typed") == \
        "a stray  closer, and [b typed"


def _added(post_id: int, thread_id: int = 7, number: int = 2, body: str = "words",
           forum: str = "s") -> PostAdded:
    return PostAdded(occurred_at=NOW, actor="ann", thread_id=thread_id, forum=forum,
                     post_id=post_id, number=number, author="ann", guest=False,
                     op=number == 1, first_reply=number == 2, body=body)


def _edited(post_id: int, body: str) -> PostEdited:
    return PostEdited(occurred_at=NOW, actor="ann", thread_id=7, post_id=post_id, number=2,
                      author="ann", guest=False, op=False, created_at=NOW, body=body)


def _deleted(post_id: int) -> PostDeleted:
    return PostDeleted(occurred_at=NOW, actor="ann", thread_id=7, forum="s",
                       post_id=post_id, number=2, author="ann", guest=False, op=False,
                       created_at=NOW)


def test_a_page_writes_each_post_once_with_what_it_ended_as():
    started = ThreadStarted(occurred_at=NOW, actor="ann", thread_id=7, forum="s",
                            title="Title", author="ann", guest=False)
    moved = ThreadMoved(occurred_at=NOW + timedelta(seconds=1), actor="mod", thread_id=7,
                        from_forum="s", to_forum="t", posts=3, created_at=NOW,
                        bumped_at=NOW, unanswered=False)
    feed = list(enumerate([
        started, _added(1, number=1, body="[b]first[/b]"), _added(2), _edited(2, "second"),
        _added(3), _deleted(3), _edited(40, "stored post, new words"), _deleted(41),
        _edited(41, "after its deletion"), moved, _added(4, forum="t"),
    ], start=1))
    out = changes(feed)
    assert out.threads == {7: ("s", "Title")}
    assert {p: (n.text, n.forum) for p, n in out.posts.items()} == {
        1: ("first", "s"), 2: ("second", "s"), 4: ("words", "t")}  # the move: in SQL
    assert out.edits == {40: "stored post, new words"}
    assert out.deletes == {3, 41}
    assert out.moves == {7: "t"}
    assert not changes([]) and changes(feed[:1])
