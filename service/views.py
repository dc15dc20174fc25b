"""Read queries over the Redis read models (workers/readmodels.py is the contract).

Each read is one Lua script call: it resolves the live namespaces and fetches everything in
one round trip. Posts come back as ready JSON bytes; only small summaries are encoded here.
With ``X-Min-Position`` a read waits (at most ``min_position_wait``) until the read models
it uses have reached that position, else answers 503 with Retry-After.
"""

from __future__ import annotations

import asyncio
import functools
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from litestar import MediaType, Response
from litestar.exceptions import ClientException
from redis.asyncio import Redis

from events import EventStore
from service.api.schemas import Section, ThreadSummary
from service.domain.errors import NotFoundError
from service.errors import ReadModelUnavailableError
from service.settings import Settings
from workers import readmodels as rm
from workers.checkpoints import positions
from workers.readmodels import Keys

_encoder = msgspec.json.Encoder()


def _pairs(flat: list[bytes]) -> dict[str, str]:
    it = iter(flat)
    return {k.decode(): v.decode() for k, v in zip(it, it, strict=True)}


def summary(flat: list[bytes]) -> ThreadSummary:
    h = _pairs(flat)
    return ThreadSummary(
        id=int(h["id"]), title=h["title"], forum=h["forum"], author=h["author"],
        guest=h["guest"] == "1", posts=int(h["posts"]), replies=int(h["replies"]),
        created_at=h["created_at"], bumped_at=h["bumped_at"], locked=h["locked"] == "1",
    )


def section(flat: list[bytes]) -> Section:
    h = _pairs(flat)
    return Section(slug=h["slug"], title=h["title"], threads=int(h["threads"]),
                   posts=int(h["posts"]))


def _json(body: bytes, position: int) -> Response[bytes]:
    return Response(content=body, media_type=MediaType.JSON,
                    headers={"X-Projection-Position": str(position)})


def _not_found(detail: str) -> Exception:
    return NotFoundError(detail)


# What service/domain/text.py accepts as a slug. Anything else names no section, and must
# never reach a Redis key: "a:threads" would address another section's sorted set.
SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")


def known_slug(slug: str) -> str:
    """``slug`` when it could name a section; 404 otherwise."""
    if not SLUG.fullmatch(slug):
        raise NotFoundError(f"no section {slug[:80]!r}")
    return slug


def _pages(total: int, per_page: int) -> int:
    return max(1, -(-total // per_page))


def splice_post(prefix: bytes, counters: bytes, likes: bytes, tail: bytes = b"") -> bytes:
    threads, posts, reputation = counters.split(b",")
    return b"".join((
        prefix, b',"threads":', threads, b',"posts":', posts, b',"reputation":', reputation,
        b'},"likes":', likes, tail, b"}",
    ))


ViewMethod = Callable[..., Awaitable[Response[bytes]]]


def fresh_for_a_moment(method: ViewMethod) -> ViewMethod:
    """Keep a view's answer for ``page_cache_ms`` and serve it again meanwhile.

    Hot pages are asked for many times a second; answering from the process's memory
    skips the Redis round trip and the page assembly. The answer keeps the position of the
    read models it came from, so a read with ``X-Min-Position`` above it is never served
    from here: read-your-writes holds, and other readers see a new post at most
    ``page_cache_ms`` later than they would otherwise. Only successful answers are kept.
    The last positional argument of every view is ``min_position``."""

    @functools.wraps(method)
    async def serve(self: Views, *args: Any) -> Response[bytes]:
        ttl = self.settings.page_cache_ms / 1000
        if ttl <= 0:
            return await method(self, *args)
        key = (method.__name__, *args[:-1])
        min_position = args[-1]
        now = time.monotonic()
        kept = self._kept.get(key)
        if kept is not None and now - kept[0] < ttl and (
            min_position is None or kept[1] >= min_position
        ):
            return _json(kept[2], kept[1])
        response = await method(self, *args)
        self._kept[key] = (now, int(response.headers["X-Projection-Position"]),
                           response.content)
        self._kept.move_to_end(key)
        if len(self._kept) > PAGE_CACHE_SIZE:
            self._kept.popitem(last=False)
        return response

    return serve


PAGE_CACHE_SIZE = 4096


class Views:
    def __init__(self, redis: Redis, keys: Keys, settings: Settings, store: EventStore
                 ) -> None:
        self.redis = redis
        self.store = store
        self.keys = keys
        self.settings = settings
        self._kept: OrderedDict[tuple[Any, ...], tuple[float, int, bytes]] = OrderedDict()
        self._scripts = {
            name: redis.register_script(getattr(rm, name))
            for name in ("THREAD_PAGE", "POST", "LISTING", "FORUMS", "ARCHIVE_YEARS", "USER",
                         "HELD")
        }

    async def _read(self, script: str, args: list[Any], min_position: int | None,
                    checkpoints: int) -> tuple[list[Any], int]:
        """Run a read script; wait for ``min_position`` when asked. Returns the answer and
        the lowest checkpoint of the read models it used."""
        deadline = time.monotonic() + self.settings.min_position_wait
        checked = False
        while True:
            answer = await self._scripts[script](args=[self.keys.prefix, *args])
            if answer[0] == 0:
                if min_position is None or time.monotonic() >= deadline:
                    raise ReadModelUnavailableError(
                        "the read models are being rebuilt; try again shortly", 2
                    )
            else:
                position = min(int(answer[1 + i]) for i in range(checkpoints))
                if min_position is None or position >= min_position:
                    return answer, position
                if time.monotonic() >= deadline:
                    raise ReadModelUnavailableError(
                        f"the read models have not reached position {min_position} yet", 1
                    )
            if not checked:  # only a read that would wait pays for this query
                checked = True
                if min_position is not None and not await self.store.has_position(min_position):
                    raise ClientException(  # (the API's X-Min-Position, a page's ?after=)
                        f"position {min_position} is beyond the log's head: no write "
                        "answered it"
                    )
            await asyncio.sleep(0.005)

    @fresh_for_a_moment
    async def thread_page(self, thread_id: int, page: int, per_page: int | None,
                          min_position: int | None) -> Response[bytes]:
        per_page = per_page or self.settings.per_page
        start = (page - 1) * per_page
        answer, position = await self._read(
            "THREAD_PAGE", [thread_id, start, start + per_page - 1], min_position, 2
        )
        if not answer[3]:
            raise _not_found("no such thread")
        _, _, _, flat, count, posts, _authors, likes, counters = answer
        pages = _pages(count, per_page)
        if page > pages:
            raise _not_found(f"page {page} is past the last page ({pages})")
        body = b"".join((
            b'{"thread":', _encoder.encode(summary(flat)), b',"posts":[',
            b",".join(splice_post(p, c, lk) for p, c, lk in zip(posts, counters, likes,
                                                                  strict=True)),
            b'],"page":%d,"pages":%d,"per_page":%d}' % (page, pages, per_page),
        ))
        return _json(body, position)

    @fresh_for_a_moment
    async def post(self, post_id: int, min_position: int | None) -> Response[bytes]:
        where = await self.store.locate_post(post_id)
        if where is None:
            raise _not_found("no such post")
        answer, position = await self._read("POST", [where.thread_id, where.number],
                                            min_position, 2)
        if not answer[3]:
            raise _not_found("no such post")
        _, _, _, prefix, number, likes, counters = answer
        page = (int(number) - 1) // self.settings.per_page + 1
        return _json(splice_post(prefix, counters, likes, b',"page":%d' % page), position)

    async def _listing(self, projection: str, suffix: str, page: int,
                       min_position: int | None, extra: str | None = None
                       ) -> tuple[list[ThreadSummary], int, int, dict[str, str]]:
        per_page = self.settings.per_page
        start = (page - 1) * per_page
        args: list[Any] = [projection, suffix, start, start + per_page - 1]
        if extra is not None:
            args.append(extra)
        answer, position = await self._read("LISTING", args, min_position, 2)
        _, _, _, total, flats, extra_flat = answer
        pages = _pages(int(total), per_page)
        if page > pages:
            raise _not_found(f"page {page} is past the last page ({pages})")
        return [summary(f) for f in flats if f], pages, position, _pairs(extra_flat)

    @fresh_for_a_moment
    async def section_threads(self, slug: str, page: int, min_position: int | None
                              ) -> Response[bytes]:
        known_slug(slug)
        threads, pages, position, meta = await self._listing(
            "thread_list", f":s:{slug}:threads", page, min_position, f":s:{slug}"
        )
        if not meta:
            raise _not_found(f"no section {slug!r}")
        forum = Section(slug=meta["slug"], title=meta["title"], threads=int(meta["threads"]),
                        posts=int(meta["posts"]))
        return _json(_encoder.encode(
            {"forum": forum, "threads": threads, "page": page, "pages": pages}), position)

    @fresh_for_a_moment
    async def unanswered(self, page: int, min_position: int | None) -> Response[bytes]:
        threads, pages, position, _ = await self._listing(
            "unanswered", ":unanswered", page, min_position
        )
        return _json(_encoder.encode({"threads": threads, "page": page, "pages": pages}),
                     position)

    @fresh_for_a_moment
    async def archive_year(self, slug: str, year: int, page: int, min_position: int | None
                           ) -> Response[bytes]:
        if not 1 <= year <= 9999:
            raise _not_found("no such year")
        known_slug(slug)
        threads, pages, position, meta = await self._listing(
            "archives", f":a:{slug}:{year}", page, min_position, f":a:{slug}:years"
        )
        if not meta:
            raise _not_found(f"no archive for section {slug!r}")
        if not threads and page == 1 and int(meta.get(str(year), "0")) <= 0:
            raise _not_found(f"no threads of {year} in {slug!r}")
        return _json(_encoder.encode({"forum": slug, "year": year, "threads": threads,
                                      "page": page, "pages": pages}), position)

    @fresh_for_a_moment
    async def archive_years(self, slug: str, min_position: int | None) -> Response[bytes]:
        known_slug(slug)
        answer, position = await self._read("ARCHIVE_YEARS", [slug], min_position, 2)
        _, _, _, section_flat, years_flat = answer
        if not section_flat:
            raise _not_found(f"no section {slug!r}")
        years = sorted(((int(y), int(n)) for y, n in _pairs(years_flat).items() if int(n) > 0),
                       reverse=True)
        return _json(_encoder.encode({
            "forum": section(section_flat),
            "years": [{"year": y, "threads": n} for y, n in years],
        }), position)

    @fresh_for_a_moment
    async def forums(self, min_position: int | None) -> Response[bytes]:
        answer, position = await self._read("FORUMS", [], min_position, 1)
        forums = [section(flat) for flat in answer[2]]
        return _json(_encoder.encode({"forums": forums, "page": 1, "pages": 1}), position)

    @fresh_for_a_moment
    async def user(self, name: str, min_position: int | None) -> Response[bytes]:
        answer, position = await self._read("USER", [name.strip().casefold()], min_position, 1)
        if not answer[2]:
            raise _not_found(f"no user {name!r}")
        h = _pairs(answer[2])
        if len(answer) > 3:  # a guest: names and first posts are kept for all guests
            name, guest = answer[3].decode(), True
            joined = rm.rfc3339(rm.moment_of(answer[4])) if answer[4] else None
        else:  # the operator has counters but no profile: the name as it was asked for
            name, guest, joined = h.get("name", name.strip()), h.get("guest") == "1", h.get(
                "joined")
        return _json(_encoder.encode({
            "name": name, "guest": guest, "joined": joined,
            "threads": int(h.get("threads", 0)), "posts": int(h.get("posts", 0)),
            "reputation": int(h.get("reputation", 0)),
        }), position)

    async def held(self, author_key: str | None, page: int, min_position: int | None,
                   per_page: int | None = None) -> Response[bytes]:
        """Posts held for review, oldest first: all of them (``author_key`` None: for
        moderators) or one author's. Never kept in the page cache: it is private."""
        per_page = per_page or self.settings.per_page
        start = (page - 1) * per_page
        suffix = ":held:pending" if author_key is None else f":held:by:{author_key}"
        answer, position = await self._read("HELD", [suffix, start, start + per_page - 1],
                                            min_position, 1)
        _, _, total, items = answer
        pages = _pages(int(total), per_page)
        if page > pages:
            raise _not_found(f"page {page} is past the last page ({pages})")
        body = b"".join((b'{"held":[', b",".join(i for i in items if i),
                         b'],"page":%d,"pages":%d}' % (page, pages)))
        return Response(content=body, media_type=MediaType.JSON,
                        headers={"X-Projection-Position": str(position),
                                 "Cache-Control": "private, no-store"})

    async def positions(self) -> dict[str, int | None]:
        return await positions(self.redis, self.keys, list(rm.PROJECTION_NAMES))

