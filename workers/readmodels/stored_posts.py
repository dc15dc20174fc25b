"""How a thread page stores a post, and what a read makes of it again.

A post is stored once per thread page as its author's counter key (``counter_key``: the
read script fetches the author's live counters by it), length-prefixed, then a short JSON
array, positional and with its trailing defaults left off::

    10:g:user1234[id, created_ms, flags, author, body, quotes, edited_ms]

``flags`` is deleted | guest << 1 | op << 2 | packed << 3; times are milliseconds since
the epoch (the read contract shows them to the millisecond); ``quotes`` are ``[post_id,
number, author]``; ``author`` is "" when the counter key spells it (a name already
case-folded). The thread and the number are not stored: the read knows them (the key,
the index). The length prefix lets a Lua script cut the key off whatever characters a
name holds.

**Packed bodies.** A body of ``PACK_FROM`` bytes or more is stored deflated (raw deflate,
a 4 kB window) after the array and a NUL byte, its slot in the array left empty, when that
saves a tenth or more: prose packs to about 0.6 of its bytes, and bodies are most of a
board's Redis memory (bench/redis_memory.py: 1.35 -> below 1.0 of the body bytes). It
costs ~25 us a post when projected and ~4 us when read (the answer cache and the kept
HTML are by the unpacked text). JSON never holds a raw NUL (msgspec escapes control
characters), so the first NUL ends the array whatever the packed bytes hold. As Rails'
cache does for its larger values; zlib is the standard library's.

Only the BBCode source is stored, not the HTML: keeping both cost 2.65x the body's bytes
per post, and Redis memory is what bounds a board (issue 16). The HTML is made again on
read: a body without ``[`` (most posts) by ``tagless_html``, a cheap escape; others by
the renderer, remembered per process by the source's text (not by post id: an erasure
rewrites a body under the same id), so a hot page renders nothing. As a bonus, a change
of the renderer shows without a rebuild.
"""

from __future__ import annotations

import zlib
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
PACKED: Final = 8

PACK_FROM: Final = 200  # bytes of UTF-8: below it a body gains little (deflate's header)
_WINDOW: Final = -12  # raw deflate, 4 kB window: as small as prose of a post packs (0.60
# of its bytes, as with 32 kB), and a quarter of the time: most of deflate's cost on a
# short text is setting up its window.

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
    if deleted:
        body, quotes = "", []
    packed = _packed(body)
    if packed:
        flags |= PACKED
        body = ""
    row: list[object] = [post_id, millis(created_at), flags,
                         "" if key[2:] == author else author]
    if edited_at is not None:
        row += [body, quotes, millis(edited_at)]
    elif quotes:
        row += [body, quotes]
    elif body:
        row.append(body)
    spelled = key.encode()
    stored = b"%d:%s%s" % (len(spelled), spelled, _encode(row))
    return stored + b"\x00" + packed if packed else stored


def _packed(body: str) -> bytes:
    """The body deflated, or b"" where that is not worth it."""
    if len(body) * 4 < PACK_FROM:  # fewer bytes than PACK_FROM whatever it holds
        return b""
    raw = body.encode()
    if len(raw) < PACK_FROM:
        return b""
    deflate = zlib.compressobj(6, zlib.DEFLATED, _WINDOW, 4)
    packed = deflate.compress(raw) + deflate.flush()
    return packed if len(packed) * 10 <= len(raw) * 9 else b""


def unpacked(stored: bytes) -> bytes:
    """What is stored, with a packed body unpacked after the NUL: for whoever looks for
    text in Redis (the erasure tests: no erased text left in any value)."""
    array, nul, packed = stored.partition(b"\x00")
    if not nul:
        return stored
    try:
        return array + nul + zlib.decompress(packed, _WINDOW)
    except zlib.error:  # not a stored post: a NUL of some other value
        return stored


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
    array, _, packed = stored[end:].partition(b"\x00")
    row = _decode(array)
    deleted = bool(row.flags & DELETED)
    body = zlib.decompress(packed, _WINDOW).decode() if row.flags & PACKED else row.body
    return PostHead(
        row.id, thread_id, number, text_of(row.created),
        None if row.edited is None else text_of(row.edited), deleted, body,
        "" if deleted else html_of(body),
        [StoredQuote(*q) for q in row.quotes],
        AuthorHead(row.author or stored[colon + 3:end].decode(), bool(row.flags & GUEST),
                   bool(row.flags & OP)),
    )
