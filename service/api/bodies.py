"""The JSON answers of the reads: the values workers/readmodels/reads.py returns, spliced
into bytes. A post is encoded without its tail (the author's live counters and the like
count), which is spliced in as the decimal bytes Redis holds.

Every answer carries its ETag (service/conditional.py), made from the value's state, not
from the bytes: service/conditional.py's middleware answers 304 when it is asked for."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Final, TypeVar

import msgspec
from litestar import MediaType, Response

from service.conditional import Stated, Tags, body_tag
from workers.readmodels import values as v

_encode: Final = msgspec.json.Encoder().encode
V = TypeVar("V")
# The reads keep an answer for a moment (``page_cache_ms``) and hand the same value to
# every request meanwhile: its bytes are spliced once, not per request (splicing a page of
# posts was a seventh of a kept thread page's cost). Keyed by the value's identity, and
# holding the value, so the identity is not reused while its bytes are kept; bounded by
# the bytes kept (a value holds about as much again), oldest out first.
_SPLICED: Final[OrderedDict[int, tuple[object, bytes]]] = OrderedDict()
_SPLICED_BYTES: Final = 4 << 20
_kept_bytes = 0


def _spliced(view: V, splice: Callable[[V], bytes]) -> bytes:
    global _kept_bytes
    kept = _SPLICED.get(id(view))
    if kept is not None and kept[0] is view:
        return kept[1]
    body = splice(view)
    if len(body) <= _SPLICED_BYTES // 8:
        _SPLICED[id(view)] = (view, body)
        _kept_bytes += len(body)
        while _kept_bytes > _SPLICED_BYTES:
            _, (_, dropped) = _SPLICED.popitem(last=False)
            _kept_bytes -= len(dropped)
    return body


def answer(body: bytes, view: Stated, tags: Tags | None, *, private: bool = False
           ) -> Response[bytes]:
    """A read's answer, with the position it reflects (``X-Projection-Position``) and its
    ETag: of the value's state, or (``tags`` None: an answer that depends on who asks) of
    the bytes."""
    headers = {"X-Projection-Position": str(view.position),
               "ETag": body_tag(body) if tags is None else tags.of("json", view)}
    if private:
        headers["Cache-Control"] = "private, no-store"
    return Response(content=body, media_type=MediaType.JSON, headers=headers)


def _post(entry: v.PostEntry, tail: bytes = b"") -> bytes:
    return b"".join((
        _encode(entry.post)[:-2], b',"threads":', entry.threads, b',"posts":', entry.posts,
        b',"reputation":', entry.reputation, b'},"likes":', entry.likes, tail, b"}",
    ))


def _thread_page(view: v.ThreadPage) -> bytes:
    return b"".join((
        b'{"thread":', _encode(view.thread), b',"posts":[',
        b",".join(_post(entry) for entry in view.posts),
        b'],"page":%d,"pages":%d,"per_page":%d}' % (view.page, view.pages, view.per_page),
    ))


def thread_page(view: v.ThreadPage, tags: Tags) -> Response[bytes]:
    return answer(_spliced(view, _thread_page), view, tags)


def post(view: v.OnePost, tags: Tags) -> Response[bytes]:
    return answer(_post(view.post, b',"page":%d' % view.page), view, tags)


def _threads(listing: v.Listing) -> bytes:
    return b'"threads":%s,"page":%d,"pages":%d' % (
        _encode(listing.threads), listing.page, listing.pages)


def _section_threads(view: v.SectionPage) -> bytes:
    return b'{"forum":%s,%s}' % (_encode(view.forum), _threads(view.listing))


def section_threads(view: v.SectionPage, tags: Tags) -> Response[bytes]:
    return answer(_spliced(view, _section_threads), view, tags)


def unanswered(view: v.Listing, tags: Tags) -> Response[bytes]:
    return answer(b"{%s}" % _threads(view), view, tags)


def archive_year(slug: str, year: int, view: v.Listing, tags: Tags) -> Response[bytes]:
    return answer(b'{"forum":%s,"year":%d,%s}' % (_encode(slug), year, _threads(view)),
                  view, tags)


def archive_years(view: v.ArchiveYears, tags: Tags) -> Response[bytes]:
    return answer(_encode({"forum": view.forum, "years": view.years}), view, tags)


def forums(view: v.Forums, tags: Tags) -> Response[bytes]:
    return answer(_encode({"forums": view.forums, "page": 1, "pages": 1}), view, tags)


def user(view: v.UserStats, tags: Tags) -> Response[bytes]:
    return answer(_encode({
        "name": view.name, "guest": view.guest, "joined": view.joined,
        "threads": view.threads, "posts": view.posts, "reputation": view.reputation,
    }), view, tags)


def held(view: v.HeldQueue) -> Response[bytes]:
    """Whose held posts these are depends on who asks: tagged by the bytes."""
    return answer(b"".join((b'{"held":[', b",".join(view.items),
                            b'],"page":%d,"pages":%d}' % (view.page, view.pages))),
                  view, None, private=True)
