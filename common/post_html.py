"""A post's HTML on the thread page, the one owner of its markup: cooked once when the
post is projected (``cook``, workers/projections/thread_page.py) and served by splicing
in what changes after (``serve``, service/web/pages.py): the author's counters, the likes,
the page it is shown on, and the quote link (gone when the thread is locked). As
Discourse keeps "cooked" posts, a page view renders nothing of a post again.
"""

from __future__ import annotations

from typing import Final

import msgspec
from markupsafe import escape  # as Jinja escapes: the page is what the template made

from common.times import MONTHS


class CookedPost(msgspec.Struct, array_like=True, frozen=True):
    """``parts`` are the markup between the slots: ``parts[0]`` threads ``parts[1]``
    posts ``parts[2]`` page ``parts[3]`` likes ``parts[4]`` quote link ``parts[5]``."""

    id: int
    deleted: bool
    parts: list[str]


_MONTHS: Final = {f"{number:02d}": name for number, name in enumerate(MONTHS, 1)}
_encode: Final = msgspec.msgpack.Encoder().encode
_decode: Final = msgspec.msgpack.Decoder(CookedPost).decode


def _time(iso: str) -> str:
    """``<time>`` of an RFC 3339 UTC time as the read models hold it (``2011-06-08T12:00:
    00.000Z``), read off the text: formatting a datetime (strftime) cost more than the
    rest of cooking a post."""
    day = f"{iso[8:10].lstrip('0')} {_MONTHS[iso[5:7]]} {iso[:4].lstrip('0')}"
    return f'<time datetime="{iso}" title="{day} {iso[11:16]} UTC">{day}</time>'


def cook(post_id: int, thread_id: int, number: int, created: str, edited: str | None,
         deleted: bool, html: str, author: str, guest: bool, op: bool) -> bytes:
    """The post's HTML as stored (msgpack ``CookedPost``); ``created`` and ``edited`` are
    the times as RFC 3339 UTC text (workers/readmodels/formats.py), ``html`` the rendered
    body."""
    if deleted:
        content = '      <p class="deleted">This post was deleted.</p>\n'
    else:
        content = f'      <div class="body">{html}</div>\n'
        if edited is not None:
            content += f'      <p class="edited">edited {_time(edited)}</p>\n'
    mark = '<span class="op" title="started this thread">OP</span> ' if op else ""
    return _encode(CookedPost(post_id, deleted, [
        f'  <article class="post{" by-op" if op else ""}" id="p{post_id}">\n'
        '    <aside class="author">\n'
        f'      <div class="name">{mark}{escape(author)}</div>\n'
        f'      <div class="role">{"guest" if guest else "member"}</div>\n'
        '      <div class="counters" title="threads started | posts written">',
        " | ",
        "</div>\n"
        "    </aside>\n"
        '    <div class="content">\n'
        '      <div class="post-head">\n'
        f"        {_time(created)}\n"
        f'        <a class="number" href="/threads/{thread_id}?page=',
        f'#p{post_id}">#{number}</a>\n'
        "      </div>\n"
        f"{content}"
        '      <div class="post-foot">\n',
        "",
        "      </div>\n"
        "    </div>\n"
        "  </article>\n",
    ]))


def serve(stored: bytes, thread_id: int, threads: bytes, posts: bytes, likes: bytes,
          page: int, locked: bool) -> str:
    """The HTML of a cooked post as shown now, on ``page``."""
    post = _decode(stored)
    p = post.parts
    liked = int(likes)
    shown = (f'<span class="likes">{liked} like{"s" if liked != 1 else ""}</span>'
             if liked else "")
    quote = ("" if post.deleted or locked else
             f'        <a class="quote-link" href="/threads/{thread_id}?page={page}'
             f'&amp;quote={post.id}#reply">Quote</a>\n')
    return "".join((p[0], threads.decode(), p[1], posts.decode(), p[2], str(page), p[3],
                    shown, p[4], quote, p[5]))
