"""The Atom feeds: ``/feeds/latest.atom`` (the threads started last, across sections),
``/forums/{slug}.atom`` (a section's threads, most recently active first, as its page lists
them) and ``/threads/{id}.atom`` (a thread's newest posts).

Built from the read models alone, like the pages (no PostgreSQL): a thread's entry holds
its first post, a post's entry the post. Each feed's ETag names every read it was made
from (their checkpoints and namespaces) and the address it was made for, so a reader
asking again with ``If-None-Match`` gets 304 after the reads, before any XML is written;
the document itself is kept per ETag (service/web/kept.py). Feeds are the same for
everyone: ``Cache-Control: public`` like an anonymous page, and no cookie.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Hashable, Sequence
from typing import Any, Final
from urllib.parse import quote as urlquote

from litestar import Request, Response

from service.conditional import not_modified
from service.lifespan import Services
from service.web.atom import ATOM, Entry, Feed, document
from workers.readmodels.errors import ReadNotFoundError
from workers.readmodels.values import Listing, PostHead, ThreadPage, ThreadSummary

SUFFIX: Final = ".atom"
MAX_ENTRIES: Final = 100
# A host name or bracketed IPv6 address, and a port.
_HOST: Final = re.compile(r"(?:[A-Za-z0-9.\-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\])(?::[0-9]{1,5})?")
_PUBLIC_URL: Final = re.compile(rf"https?://{_HOST.pattern}")
_DELETED: Final = "<p><em>This post was deleted.</em></p>"

AnyRequest = Request[Any, Any, Any]


def public_base(setting: str) -> str:
    """``FORUM_PUBLIC_URL`` without its trailing slash; a value that is not a scheme and a
    host is a configuration error, refused at start-up."""
    base = setting.strip().rstrip("/")
    if base and not _PUBLIC_URL.fullmatch(base):
        raise ValueError(f"FORUM_PUBLIC_URL: {setting!r} is not http(s)://host[:port]")
    return base


def base_of(request: AnyRequest, services: Services) -> str:
    """Where the board is: the setting, else this request's scheme and ``Host`` (one
    that is not a host name is not used)."""
    base = public_base(services.settings.public_url)
    if base:
        return base
    host = request.headers.get("host", "")
    scheme = "https" if request.url.scheme == "https" else "http"
    return f"{scheme}://{host if _HOST.fullmatch(host) else 'localhost'}"


def feed_name(segment: str) -> str | None:
    """``x`` for a path segment ``x.atom``; None for any other."""
    return segment[: -len(SUFFIX)] if segment.endswith(SUFFIX) else None


def _size(services: Services) -> int:
    return max(1, min(MAX_ENTRIES, services.settings.feed_entries))


def _state(*views: Listing | ThreadPage) -> tuple[Hashable, ...]:
    return tuple((view.seen, view.spaces) for view in views)


def _answer(request: AnyRequest, services: Services, position: int, state: Hashable,
            make: Callable[[], Feed]) -> Response[bytes]:
    """The feed ``make()`` writes, tagged by ``state`` (every read it is made from), or 304."""
    headers = {"ETag": services.tags.tag(position, "atom", state),
               "X-Projection-Position": str(position)}
    max_age = services.settings.public_max_age
    headers["Cache-Control"] = f"public, max-age={max_age}" if max_age > 0 else "no-cache"
    unchanged = not_modified(request.headers.get("if-none-match"), headers)
    if unchanged is not None:
        return unchanged
    body = services.pages.page(("atom", headers["ETag"]), lambda _: document(make())).formless
    return Response(content=body, media_type=ATOM, headers=headers)


async def _first_posts(services: Services, threads: Sequence[ThreadSummary]
                       ) -> list[ThreadPage | None]:
    """Each thread's first post (None: the thread went away meanwhile), read at once."""
    async def first(thread: ThreadSummary) -> ThreadPage | None:
        try:
            return await services.reads.thread_page(thread.id, 1, per_page=1)
        except ReadNotFoundError:
            return None

    return list(await asyncio.gather(*(first(thread) for thread in threads)))


def _post_html(post: PostHead) -> str:
    return _DELETED if post.deleted else post.html


def _thread_entries(base: str, threads: Sequence[ThreadSummary],
                    firsts: Sequence[ThreadPage | None], updated_by_activity: bool
                    ) -> list[Entry]:
    entries = []
    for thread, first in zip(threads, firsts, strict=True):
        if first is None or not first.posts:
            continue
        post = first.posts[0].head()
        link = f"{base}/threads/{thread.id}"
        entries.append(Entry(
            id=link, title=thread.title, link=link, author=thread.author,
            published=thread.created_at,
            updated=thread.bumped_at if updated_by_activity
            else post.edited_at or post.created_at,
            html=_post_html(post),
        ))
    return entries


async def latest(request: AnyRequest, services: Services) -> Response[bytes]:
    """The threads started last, across sections."""
    listing = await services.reads.newest(_size(services))
    firsts = await _first_posts(services, listing.threads)
    base = base_of(request, services)

    def make() -> Feed:
        return Feed(id=f"{base}/feeds/latest.atom", title="Forum: new threads",
                    self_link=f"{base}/feeds/latest.atom", page_link=f"{base}/",
                    entries=_thread_entries(base, listing.threads, firsts, False))

    return _answer(request, services, listing.position,
                   ("latest", base, _state(listing, *(f for f in firsts if f))), make)


async def section(request: AnyRequest, services: Services, slug: str) -> Response[bytes]:
    """A section's threads as its first page lists them: most recently active first."""
    view = await services.reads.section_threads(slug, 1)
    threads = view.listing.threads[: _size(services)]
    firsts = await _first_posts(services, threads)
    base = base_of(request, services)
    page = f"{base}/forums/{urlquote(slug, safe='')}"

    def make() -> Feed:
        return Feed(id=f"{page}{SUFFIX}", title=f"Forum: {view.forum.title}",
                    self_link=f"{page}{SUFFIX}", page_link=page,
                    entries=_thread_entries(base, threads, firsts, True))

    return _answer(request, services, view.position,
                   ("section", slug, base, _state(view.listing, *(f for f in firsts if f))),
                   make)


async def thread(request: AnyRequest, services: Services, thread_id: int) -> Response[bytes]:
    """A thread's newest posts, newest first (deleted ones left out)."""
    size = _size(services)
    views = [await services.reads.thread_page(thread_id, 1, per_page=size)]
    if views[0].pages > 1:  # the newest ``size`` posts span the last two pages of that size
        views = list(await asyncio.gather(*(
            services.reads.thread_page(thread_id, page, per_page=size)
            for page in (views[0].pages - 1, views[0].pages))))
    base = base_of(request, services)
    summary = views[-1].thread
    link = f"{base}/threads/{thread_id}"
    per_page = services.settings.per_page

    def make() -> Feed:
        posts = {post.id: post for view in views
                 for post in (entry.head() for entry in view.posts)}
        newest = sorted(posts.values(), key=lambda p: p.number, reverse=True)[:size]
        return Feed(
            id=f"{link}{SUFFIX}", title=f"Forum: {summary.title}", self_link=f"{link}{SUFFIX}",
            page_link=link, updated=summary.bumped_at,
            entries=[Entry(
                id=f"{link}#p{post.id}", title=f"{summary.title} #{post.number}",
                link=f"{link}?page={(post.number - 1) // per_page + 1}#p{post.id}",
                author=post.author.name, published=post.created_at,
                updated=post.edited_at or post.created_at, html=post.html,
            ) for post in newest if not post.deleted])

    return _answer(request, services, min(view.position for view in views),
                   ("thread", thread_id, base, _state(*views)), make)
