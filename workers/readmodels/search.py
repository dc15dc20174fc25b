"""Searching: the query people type made into a safe ``tsquery``, and the one statement that
answers it from the live search model (written by workers/search/, read through the
views ``search.posts`` and ``search.threads``).

**What a query means.** Words are all required (AND); ``"two words"`` is a phrase (the
words next to each other, in order); ``word*`` matches every word that begins with
``word`` (at least two letters before the star, else it is the word itself). Nothing else
is syntax: other punctuation is what it is in a post, which PostgreSQL's parser reads the
same way on both sides (``e-mail``, ``example.com``, ``c++``), so only a word of letters
and digits takes a star.

**Safe by construction.** The query is never handed to ``to_tsquery`` as typed: this
module cuts it into terms (one linear pass), removes from each the only characters a
``tsquery`` reads inside a quoted term (``'`` and ``\\``) with the controls, wraps each in
quotes and joins them with ``&``, adding ``:*`` to prefixes. So no input is an operator,
and the text inside the quotes goes to the same parser ``to_tsvector`` used, which makes
a quoted term of several words (a phrase, or ``e-mail``) a ``<->`` chain. Input is at most
``MAX_QUERY`` characters and ``MAX_TERMS`` terms; the statement is cancelled after
``TIMEOUT`` seconds (a word in most posts ranks most posts), answered as 503.
``websearch_to_tsquery`` was not enough: it has phrases but no prefixes, and ``:*``
cannot be added to what it returns.

**Ranking.** Of the newest ``CANDIDATES`` matches (a search that matches more says so,
``more``): ``ts_rank`` with the default weights: a title is weighed A (1.0), words B
(0.4). Repeats of a word count less and less, so no body reaches a title's weight
(asymptotically 0.4 x pi^2/6): a thread whose title has the word ranks above any post that
only says it. Ties: newest first.

**Snippets.** ``ts_headline`` marks matches with two control characters that no stored
text holds (common/search_text.py drops them); here the snippet is HTML-escaped first and
only then are they turned into ``<mark>`` and ``</mark>``: no markup of a post survives.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Final

import asyncpg
import msgspec

from common.characters import drop_controls
from common.html_text import escape
from events import EventStore
from workers.readmodels.errors import (
    BeyondHeadError,
    ReadError,
    ReadModelUnavailableError,
    ReadNotFoundError,
)
from workers.readmodels.formats import rfc3339
from workers.readmodels.reads import known_slug
from workers.readmodels.values import Time

MAX_QUERY: Final = 200
MAX_TERMS: Final = 16
MIN_PREFIX: Final = 2
TIMEOUT: Final = 3.0
# At most this many matches are ranked: the newest. Ranking reads each match's document
# from the heap, so a word in most of a million posts cost 1.1 s; the newest thousand are
# read newest first and cost a few ms (bench/results/2026-12-02-search-capped.md).
CANDIDATES: Final = 1000
# The search pool's sessions (service/lifespan.py): see _statement.
SEARCH_SETTINGS: Final = {"plan_cache_mode": "force_custom_plan"}
CONFIG: Final = "simple"  # as workers/search/sink.py indexes
_START, _STOP = "\x02", "\x03"
_HEADLINE: Final = (f"StartSel={_START}, StopSel={_STOP}, MaxWords=30, MinWords=12, "
                    'ShortWord=2, MaxFragments=2, FragmentDelimiter=" … "')
# In a quoted tsquery term only ' and \ mean something; " and * are this module's syntax.
_UNSAFE: Final = str.maketrans({"'": " ", "\\": " ", '"': " ", "*": " "})


class QueryError(ReadError):
    """A search that cannot be run as asked (too long, too many terms)."""


@dataclass(frozen=True)
class Term:
    text: str  # words with nothing a tsquery would read as syntax
    prefix: bool = False

    def tsquery(self) -> str:
        return f"'{self.text}'" + (":*" if self.prefix else "")


def _words(text: str) -> str:
    return " ".join(text.translate(_UNSAFE).split())


def _has_word(text: str) -> bool:
    return any(ch.isalnum() for ch in text)


def terms(q: str) -> list[Term]:
    """The terms of a query, in order, each once. Linear in ``q``."""
    if len(q) > MAX_QUERY:
        raise QueryError(f"a search is at most {MAX_QUERY} characters")
    found: list[Term] = []
    # Text between double quotes is a phrase (an unclosed one runs to the end).
    for index, part in enumerate(drop_controls(q).split('"')):
        if index % 2:
            phrase = _words(part)
            if _has_word(phrase):
                found.append(Term(phrase))
            continue
        for word in part.split():
            prefix = word.endswith("*")
            text = _words(word)
            if not _has_word(text):
                continue
            # A prefix is a word's beginning: letters and digits only. PostgreSQL would
            # put the star on every piece of "a-b-c", each matching nearly every post.
            found.append(Term(text, prefix and text.isalnum() and len(text) >= MIN_PREFIX))
    unique = list(dict.fromkeys(Term(t.text.lower(), t.prefix) for t in found))
    if len(unique) > MAX_TERMS:
        raise QueryError(f"a search has at most {MAX_TERMS} words and phrases")
    return unique


def tsquery(found: list[Term]) -> str:
    """The ``tsquery`` text of ``found``: every term required."""
    return " & ".join(term.tsquery() for term in found)


def snippet_html(headline: str) -> str:
    """``ts_headline``'s text as safe HTML: escaped, then its marks made ``<mark>``."""
    html = escape(headline)
    if html.count(_START) != html.count(_STOP):  # cannot happen; never unbalanced markup
        return html.replace(_START, "").replace(_STOP, "")
    return html.replace(_START, "<mark>").replace(_STOP, "</mark>")


# -- the answers ----------------------------------------------------------------------

class FoundThread(msgspec.Struct):
    id: int
    title: str
    forum: str


class Found(msgspec.Struct):
    """A post that matched. ``snippet`` is HTML: its words around the matches, escaped,
    the matches in ``<mark>``."""

    thread: FoundThread
    post_id: int
    number: int
    author: str
    guest: bool
    created_at: Time
    snippet: str


class SearchPage(msgspec.Struct):
    """``GET /api/search``'s answer: best matches first. ``total`` counts at most
    ``CANDIDATES`` matches (the newest, which are the ones ranked); ``more`` says there
    were more: narrowing the search (another word, a phrase, a section) reaches them."""

    results: list[Found]
    page: int
    pages: int
    total: int
    per_page: int
    more: bool = False


@dataclass(frozen=True)
class Searched:
    page: SearchPage
    position: int  # the search model's checkpoint: what the answer reflects

    @property
    def seen(self) -> tuple[int, ...]:  # the conditional-GET view (service/conditional.py)
        return (self.position,)

    @property
    def spaces(self) -> tuple[str, ...]:
        return ()


# -- the statement --------------------------------------------------------------------

def _statement(forum: bool, author: bool, candidates: int) -> str:
    """One statement: the newest ``candidates`` matches ranked, their count (one more
    tells there are more), the
    model's checkpoint, and the page of hits with their snippets (computed for the page
    only). At least one row, whose hit columns are NULL when the page is empty. Filters
    are written in only when asked, so each combination is its own statement.

    The tsquery is written where the planner sees it (not behind a materialized CTE), and
    the pool plans every run for its own values (``plan_cache_mode=force_custom_plan``,
    ``SEARCH_SETTINGS``): from the index's statistics PostgreSQL reads a word in most posts
    newest first by the primary key, stopping at the cap, and a rare one through the GIN
    index; a generic plan would pick one path for both."""
    filters = (" AND p.forum = $5" if forum else "") + (
        f" AND lower(p.author) = lower(${6 if forum else 5})" if author else "")
    return f"""
WITH candidates AS MATERIALIZED (
    SELECT p.post_id, p.created_at, p.document
    FROM search.posts p
    WHERE p.document @@ to_tsquery('{CONFIG}', $1){filters}
    ORDER BY p.post_id DESC LIMIT {int(candidates) + 1}
),
found AS MATERIALIZED (
    SELECT post_id, created_at, ts_rank(document, to_tsquery('{CONFIG}', $1)) AS rank
    FROM candidates ORDER BY post_id DESC LIMIT {int(candidates)}
),
meta AS (
    SELECT (SELECT count(*) FROM candidates) AS total,
           (SELECT checkpoint FROM search_models WHERE live) AS position
),
hits AS (
    SELECT post_id, rank, created_at FROM found
    ORDER BY rank DESC, created_at DESC, post_id DESC LIMIT $2 OFFSET $3
)
SELECT meta.total, meta.position, p.post_id, p.thread_id, t.title, t.forum, p.number,
       p.author, p.guest, p.created_at,
       ts_headline('{CONFIG}', p.body, to_tsquery('{CONFIG}', $1), $4)
FROM meta
LEFT JOIN (hits JOIN search.posts p USING (post_id)
           JOIN search.threads t ON t.thread_id = p.thread_id) ON true
ORDER BY hits.rank DESC, hits.created_at DESC, hits.post_id DESC
"""


_POSITION: Final = "SELECT checkpoint FROM search_models WHERE live"


def _pages(total: int, per_page: int) -> int:
    return max(1, -(-total // per_page))


class SearchReads:
    def __init__(self, pool: asyncpg.Pool, store: EventStore, *, per_page: int,
                 min_position_wait: float, candidates: int = CANDIDATES) -> None:
        self.pool = pool
        self.store = store
        self.per_page = per_page
        self.min_position_wait = min_position_wait
        self.candidates = candidates
        self._statements = {(f, a): _statement(f, a, candidates)
                            for f in (False, True) for a in (False, True)}

    async def search(self, q: str, *, forum: str | None = None, author: str | None = None,
                     page: int = 1, min_position: int | None = None) -> Searched:
        """The ``page``-th page of posts matching ``q`` (in section ``forum``, by
        ``author``, when given), best first. With ``min_position``, waits (at most
        ``min_position_wait`` seconds) until the search model has reached it."""
        found = terms(q)
        if forum is not None:
            known_slug(forum)
        if author is not None and drop_controls(author) != author:
            found = []  # no name holds controls: nobody wrote anything
        deadline = time.monotonic() + self.min_position_wait
        checked = False
        while True:
            answer = await self._once(found, forum, author, page)
            if min_position is None or answer.position >= min_position:
                return answer
            if time.monotonic() >= deadline:
                raise ReadModelUnavailableError(
                    f"search has not reached position {min_position} yet", 1)
            if not checked:
                checked = True
                if not await self.store.has_position(min_position):
                    raise BeyondHeadError(f"position {min_position} is beyond the log's "
                                          "head: no write answered it")
            await asyncio.sleep(0.02)

    async def _once(self, found: list[Term], forum: str | None, author: str | None,
                    page: int) -> Searched:
        per_page = self.per_page
        rows: list[asyncpg.Record] = []
        try:
            if not found:  # nothing to look for: nothing found, as of the model's position
                position = await self.pool.fetchval(_POSITION, timeout=TIMEOUT)
                total = 0
            else:
                args: list[object] = [tsquery(found), per_page, (page - 1) * per_page,
                                      _HEADLINE]
                args += [v for v in (forum, author) if v is not None]
                statement = self._statements[forum is not None, author is not None]
                rows = await self.pool.fetch(statement, *args, timeout=TIMEOUT)
                total, position = rows[0][0], rows[0][1]
        except asyncpg.UndefinedTableError:  # no generation was ever swapped in
            position = None
        except TimeoutError:
            raise ReadModelUnavailableError(
                "the search took too long: add words, use a phrase or choose a section", 5
            ) from None
        if position is None:
            raise ReadModelUnavailableError("search is being built; try again shortly", 2)
        position, total = int(position), int(total)
        more = total > self.candidates
        total = min(total, self.candidates)
        pages = _pages(total, per_page)
        if page > pages:
            raise ReadNotFoundError(f"page {page} is past the last page ({pages})")
        results = [
            Found(FoundThread(r[3], r[4], r[5]), r[2], r[6], r[7], r[8], rfc3339(r[9]),
                  snippet_html(r[10]))
            for r in rows if r[2] is not None
        ]
        return Searched(SearchPage(results, page, pages, total, per_page, more), position)
