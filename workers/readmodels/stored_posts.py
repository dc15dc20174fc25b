"""How a thread page stores a post, and what a read makes of it again.

A post is stored once per thread page as its author's counter key (``counter_key``: the
read script fetches the author's live counters by it), length-prefixed, then a short JSON
array, positional and with its trailing defaults left off::

    10:g:user1234[id, created_ms, flags, author, body, quotes, edited_ms]

``flags`` is deleted | guest << 1 | op << 2; times are milliseconds since the epoch (the
read contract shows them to the millisecond); ``quotes`` are ``[post_id, number, author]``;
``author`` is "" when the counter key spells it (a name already case-folded). The thread
and the number are not stored: the read knows them (the key, the index). The length
prefix lets a Lua script cut the key off whatever characters a name holds.

Only the BBCode source is stored, not the HTML: keeping both cost 2.65x the body's bytes
per post, and Redis memory is what bounds a board (issue 16). The HTML is made again on
read: a body without ``[`` (most posts) by ``tagless_html``, a cheap escape; others by
the renderer, remembered per process by the source's text (not by post id: an erasure
rewrites a body under the same id), so a hot page renders nothing. As a bonus, a change
of the renderer shows without a rebuild.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Final

import msgspec

from common.bbcode import render
from common.html_text import tagless_html
from workers.readmodels.formats import rfc3339
from workers.readmodels.keys import counter_key
from workers.readmodels.values import AuthorHead, PostHead, StoredQuote

DELETED: Final = 1
GUEST: Final = 2
OP: Final = 4

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND: Final = timedelta(milliseconds=1)
_encode: Final = msgspec.json.Encoder().encode


class StoredPost(msgspec.Struct, array_like=True):
    id: int
    created: int
    flags: int
    author: str
    body: str = ""
    quotes: list[tuple[int, int, str]] = []
    edited: int | None = None


_decode: Final = msgspec.json.Decoder(StoredPost).decode


def millis(moment: datetime) -> int:
    """Milliseconds since the epoch, truncated as ``rfc3339`` truncates."""
    if moment.tzinfo is not UTC:
        moment = (moment.replace(tzinfo=UTC) if moment.tzinfo is None
                  else moment.astimezone(UTC))
    return (moment - _EPOCH) // _MILLISECOND


def text_of(ms: int) -> str:
    """``rfc3339`` of the time ``millis`` made ``ms`` of."""
    return rfc3339(_EPOCH + ms * _MILLISECOND)


def encode(post_id: int, created_at: datetime, edited_at: datetime | None, deleted: bool,
           body: str, quotes: list[tuple[int, int, str]], author: str, guest: bool,
           op: bool) -> bytes:
    """A post as the thread page stores it (a deleted post keeps no body nor quotes)."""
    flags = (DELETED if deleted else 0) | (GUEST if guest else 0) | (OP if op else 0)
    key = counter_key(author, guest)
    row: list[object] = [post_id, millis(created_at), flags,
                         "" if key[2:] == author else author]
    if deleted:
        body, quotes = "", []
    if edited_at is not None:
        row += [body, quotes, millis(edited_at)]
    elif quotes:
        row += [body, quotes]
    elif body:
        row.append(body)
    spelled = key.encode()
    return b"%d:%s%s" % (len(spelled), spelled, _encode(row))


# Rendered HTML of bodies with tags, by source text; emptied when it holds this many
# characters (a page's worth of posts is a few tens of kB).
_RENDERED_LIMIT: Final = 8 << 20
_rendered: dict[str, str] = {}
_rendered_size = 0


def html_of(body: str) -> str:
    """The body's HTML, as the projection once stored it."""
    global _rendered_size
    html = tagless_html(body)  # most posts: no call into the parser's module
    if html is not None:
        return html
    html = _rendered.get(body)
    if html is None:
        html = render(body)
        if _rendered_size + len(body) + len(html) > _RENDERED_LIMIT:
            _rendered.clear()
            _rendered_size = 0
        _rendered[body] = html
        _rendered_size += len(body) + len(html)
    return html


def decode(stored: bytes, thread_id: int, number: int) -> PostHead:
    """The post a read shows, from what is stored for it."""
    colon = stored.index(b":")
    end = colon + 1 + int(stored[:colon])
    row = _decode(stored[end:])
    deleted = bool(row.flags & DELETED)
    return PostHead(
        row.id, thread_id, number, text_of(row.created),
        None if row.edited is None else text_of(row.edited), deleted, row.body,
        "" if deleted else html_of(row.body),
        [StoredQuote(*q) for q in row.quotes],
        AuthorHead(row.author or stored[colon + 3:end].decode(), bool(row.flags & GUEST),
                   bool(row.flags & OP)),
    )
