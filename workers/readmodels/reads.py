"""Every read of the read models: one script call per read (workers/readmodels/scripts.py)
given every key it touches, answering typed values (workers/readmodels/values.py) that
know nothing of HTTP. The JSON routes splice them into bytes, the pages into HTML.

Keys are built from the namespaces this process last saw the pointers name; a script
checks them and says when they moved, and the read is built again. Keys that depend on
the data (a page's authors' counters, a listing's threads) are guessed from the last read
of the same page and checked the same way: a read is one round trip unless something
changed. With ``min_position`` a read waits (at most ``min_position_wait`` seconds) until
the read models it uses have reached that position.

Answers are kept ``cache_ms`` and served again meanwhile (hot pages are asked for many
times a second): keyed by what was asked, each keeps the position it reflects, so a read
waiting for a later position never takes it, and read-your-writes holds.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, Final, Protocol, TypeVar

from redis.asyncio import Redis

from common.bbcode import render
from events import EventStore
from events.threads import PostAdded
from workers.page_rebuild import rebuild_page
from workers.projections import PROJECTIONS
from workers.readmodels import scripts, stored_posts
from workers.readmodels.errors import (
    BeyondHeadError,
    ReadModelUnavailableError,
    ReadNotFoundError,
)
from workers.readmodels.formats import moment_of, rfc3339
from workers.readmodels.keys import Keys, Namespace, counter_key, version_of
from workers.readmodels.values import (
    Activity,
    ArchiveYears,
    Forums,
    HeldQueue,
    Listing,
    OnePost,
    PostEntry,
    RecentPost,
    Revision,
    Revisions,
    Section,
    SectionPage,
    ThreadPage,
    ThreadSummary,
    UserStats,
    YearCount,
)

# What service/domain/text.py accepts as a slug. Anything else names no section, and must
# never reach a Redis key: "a:threads" would address another section's sorted set.
SLUG: Final = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")
# Answers kept, and pages whose data-dependent keys are remembered, per process.
KEPT: Final = 4096
# The newest versions of an edited post its history lists (a post edited more often
# shows only these).
REVISIONS_SHOWN: Final = 100
# A read rebuilt this many times (pointers moving, pages changing under it) gives up.
_ATTEMPTS: Final = 5

# Builds a script's own keys and arguments from the namespaces and the guessed names.
Shape = Callable[[list[Namespace], list[str]], tuple[list[str], list[Any]]]


def known_slug(slug: str) -> str:
    """``slug`` when it could name a section; not found otherwise."""
    if not SLUG.fullmatch(slug):
        raise ReadNotFoundError(f"no section {slug[:80]!r}")
    return slug


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


def _pages(total: int, per_page: int) -> int:
    return max(1, -(-total // per_page))


def _page_of(page: int, pages: int) -> None:
    if page > pages:
        raise ReadNotFoundError(f"page {page} is past the last page ({pages})")


class _Positioned(Protocol):
    @property
    def position(self) -> int: ...


A = TypeVar("A", bound=_Positioned)


class AnswerCache:
    """The last answers, each for ``ttl`` seconds, the least recently used dropped first."""

    def __init__(self, ttl_ms: int, size: int = KEPT) -> None:
        self.ttl = ttl_ms / 1000
        self.size = size
        self._kept: OrderedDict[Hashable, tuple[float, Any]] = OrderedDict()

    def get(self, key: Hashable, kind: type[A], min_position: int | None) -> A | None:
        if self.ttl <= 0:
            return None
        kept = self._kept.get(key)
        if kept is None or time.monotonic() - kept[0] >= self.ttl:
            return None
        answer = kept[1]
        if not isinstance(answer, kind) or (
                min_position is not None and answer.position < min_position):
            return None
        return answer

    def put(self, key: Hashable, answer: A) -> A:
        if self.ttl > 0:
            self._kept[key] = (time.monotonic(), answer)
            self._kept.move_to_end(key)
            if len(self._kept) > self.size:
                self._kept.popitem(last=False)
        return answer


class Reads:
    def __init__(self, redis: Redis, keys: Keys, store: EventStore, *, per_page: int,
                 min_position_wait: float, cache_ms: int) -> None:
        self.redis = redis
        self.keys = keys
        self.store = store
        self.per_page = per_page
        self.min_position_wait = min_position_wait
        self.cache = AnswerCache(cache_ms)
        self._spaces: dict[str, tuple[str, Namespace]] = {}
        self._guesses: OrderedDict[Hashable, list[str]] = OrderedDict()
        self._scripts = {source: redis.register_script(source) for source in (
            scripts.THREAD_PAGE, scripts.POST, scripts.LISTING, scripts.FORUMS,
            scripts.ARCHIVE_YEARS, scripts.USER, scripts.HELD, scripts.ACTIVITY,
            scripts.REVISIONS, scripts.LIKED)}

    # -- the plumbing ------------------------------------------------------------------

    async def _namespaces(self, names: tuple[str, ...]) -> list[tuple[str, Namespace]] | None:
        """The live namespaces of ``names`` as last seen; None if one has none (or one
        this code cannot read)."""
        if any(name not in self._spaces for name in names):
            pointers = await self.redis.mget([self.keys.active(name) for name in names])
            for name, pointer in zip(names, pointers, strict=True):
                if pointer is None or not self._learn(name, pointer):
                    return None
        return [self._spaces[name] for name in names]

    def _learn(self, name: str, pointer: bytes | str) -> bool:
        """Read ``name`` from the namespace ``pointer`` names from now on; False if it is
        of another version of the projection, whose keys may lie otherwise (after an
        upgrade, until the workers have rebuilt it: reads answer 503 meanwhile)."""
        ns = pointer.decode() if isinstance(pointer, bytes) else pointer
        if version_of(ns) != PROJECTIONS[name].version:
            self._spaces.pop(name, None)
            return False
        if self._spaces.get(name, ("",))[0] != ns:
            self._spaces[name] = (ns, self.keys.namespace(name, ns))
        return True

    def _guess(self, guess: Hashable | None, names: list[str] | None = None) -> list[str]:
        if guess is None:
            return []
        if names is not None:
            self._guesses[guess] = names
            self._guesses.move_to_end(guess)
            if len(self._guesses) > KEPT:
                self._guesses.popitem(last=False)
        return self._guesses.get(guess, [])

    async def _call(self, script: str, names: tuple[str, ...], shape: Shape,
                    guess: Hashable | None, thread_id: int | None = None
                    ) -> tuple[list[Any], tuple[str, ...]] | None:
        """One answer ``{1, checkpoints, ...}`` of ``script``, and the namespaces it was
        read from (the script checked they were the live ones); None while a read model
        it needs has no live namespace. ``thread_id``: the thread whose page the script
        reads, rebuilt if it finds it missing or partial."""
        for _ in range(_ATTEMPTS):
            spaces = await self._namespaces(names)
            if spaces is None:
                return None
            own, argv = shape([ns for _, ns in spaces], self._guess(guess))
            answer: list[Any] = await self._scripts[script](
                keys=[*(self.keys.active(name) for name in names),
                      *(key for _, ns in spaces for key in ns.checkpoints), *own],
                args=[len(names), *(name for name, _ in spaces), *argv],
            )
            if answer[0] == 1:
                return answer, tuple(ns for ns, _ in spaces)
            if answer[0] == 0:
                for name in names:
                    self._spaces.pop(name, None)
                return None
            if answer[0] == 4 and thread_id is not None:  # the page was evicted
                await rebuild_page(self.redis, self.keys, self.store, thread_id)
            elif answer[0] == 2:  # a rebuild swapped a namespace in: build the keys again
                for name, pointer in zip(names, answer[1], strict=True):
                    if not pointer or not self._learn(name, pointer):
                        self._spaces.pop(name, None)
            else:  # 3: the page changed since it was last read
                self._guess(guess, [name.decode() for name in answer[1]])
        raise ReadModelUnavailableError("the read models changed during the read; try again")

    async def _read(self, script: str, names: tuple[str, ...], shape: Shape,
                    min_position: int | None, guess: Hashable | None = None,
                    thread_id: int | None = None
                    ) -> tuple[list[Any], tuple[int, ...], tuple[str, ...]]:
        """The answer of ``script``, and the checkpoints and namespaces of the read models
        it read; waits until the lowest checkpoint is ``min_position`` when asked."""
        deadline = time.monotonic() + self.min_position_wait
        checked = False
        while True:
            called = await self._call(script, names, shape, guess, thread_id)
            if called is None:
                if min_position is None or time.monotonic() >= deadline:
                    raise ReadModelUnavailableError(
                        "the read models are being rebuilt; try again shortly", 2)
            else:
                answer, spaces = called
                seen = tuple(int(c) for c in answer[1])
                if min_position is None or min(seen) >= min_position:
                    return answer, seen, spaces
                if time.monotonic() >= deadline:
                    raise ReadModelUnavailableError(
                        f"the read models have not reached position {min_position} yet", 1)
            if not checked:  # only a read that would wait pays for this query
                checked = True
                if min_position is not None and not await self.store.has_position(min_position):
                    raise BeyondHeadError(f"position {min_position} is beyond the log's "
                                          "head: no write answered it")
            await asyncio.sleep(0.005)

    # -- threads -----------------------------------------------------------------------

    async def thread_page(self, thread_id: int, page: int, *, per_page: int | None = None,
                          min_position: int | None = None) -> ThreadPage:
        per_page = per_page or self.per_page
        asked = ("thread_page", thread_id, page, per_page)
        kept = self.cache.get(asked, ThreadPage, min_position)
        if kept is not None:
            return kept
        start = (page - 1) * per_page

        def shape(spaces: list[Namespace], authors: list[str]) -> tuple[list[str], list[Any]]:
            tp, ms = spaces
            return ([tp.thread(thread_id), tp.posts(thread_id), tp.likes(thread_id),
                     *(ms.member(author) for author in authors)],
                    [start, start + per_page - 1, ms.members_marker()])

        answer, seen, spaces = await self._read(
            scripts.THREAD_PAGE, ("thread_page", "member_stats"), shape, min_position,
            ("thread_page", thread_id, start, per_page), thread_id)
        if not answer[2]:
            raise ReadNotFoundError("no such thread")
        _, _, flat, count, posts, likes, authored = answer
        pages = _pages(count, per_page)
        _page_of(page, pages)
        entries = [PostEntry(stored_posts.decode(stored, thread_id, number), c[0], c[1], c[2],
                             liked)
                   for number, stored, liked, c in zip(
                       range(start + 1, start + 1 + len(posts)), posts, likes, authored,
                       strict=True)]
        return self.cache.put(asked, ThreadPage(summary(flat), entries, page, pages, per_page,
                                                min(seen), seen, spaces))

    async def post(self, post_id: int, *, min_position: int | None = None) -> OnePost:
        asked = ("post", post_id)
        kept = self.cache.get(asked, OnePost, min_position)
        if kept is not None:
            return kept
        where = await self.store.locate_post(post_id)
        if where is None:
            raise ReadNotFoundError("no such post")

        def shape(spaces: list[Namespace], author: list[str]) -> tuple[list[str], list[Any]]:
            tp, ms = spaces
            tid = where.thread_id
            return ([tp.thread(tid), tp.posts(tid), tp.likes(tid),
                     *(ms.member(a) for a in author[:1])],
                    [where.number, ms.members_marker()])

        answer, seen, spaces = await self._read(
            scripts.POST, ("thread_page", "member_stats"), shape, min_position, asked,
            where.thread_id)
        if not answer[2]:
            raise ReadNotFoundError("no such post")
        _, _, stored, likes, counters = answer
        entry = PostEntry(stored_posts.decode(stored, where.thread_id, where.number),
                          counters[0], counters[1], counters[2], likes)
        return self.cache.put(asked, OnePost(entry, (where.number - 1) // self.per_page + 1,
                                             min(seen), seen, spaces))

    async def revisions(self, post_id: int, *, min_position: int | None = None
                        ) -> Revisions:
        """An edited post's earlier versions (none for a post never edited). A deleted
        post has no history to show: not found, as it would be to a reader."""
        asked = ("revisions", post_id)
        kept = self.cache.get(asked, Revisions, min_position)
        if kept is not None:
            return kept
        # The post as it is now, through the page (rebuilt there if the cache evicted it).
        one = await self.post(post_id, min_position=min_position)
        post = one.post.post
        if post.deleted:
            raise ReadNotFoundError("the post was deleted")
        tid, number = post.thread_id, post.number

        def shape(spaces: list[Namespace], _: list[str]) -> tuple[list[str], list[Any]]:
            (tp,) = spaces
            return [tp.revisions(tid, number)], [REVISIONS_SHOWN]

        answer, seen, spaces = await self._read(scripts.REVISIONS, ("thread_page",), shape,
                                                min_position)
        edits = [stored_posts.decode(stored, tid, number) for stored in answer[3]]
        older = int(answer[2]) - len(edits)
        earlier = [Revision(e.edited_at or e.created_at, e.html) for e in edits[:-1]]
        if edits and older == 0:  # the first version is the log's
            first = await self.store.added_post(post_id)
            if isinstance(first, PostAdded):
                earlier.insert(0, Revision(rfc3339(first.occurred_at), render(first.body)))
        hidden = older + 1 if older else 0  # the unlisted edits and the first version
        return self.cache.put(asked, Revisions(post, earlier, hidden, min(seen), seen,
                                               spaces))

    async def liked(self, thread_id: int, numbers: list[int], name: str, *,
                    min_position: int | None = None) -> frozenset[int]:
        """Which of the thread's posts ``numbers`` the member ``name`` likes (what a page
        shows them: Like or Unlike). Not kept: it is one viewer's."""
        if not numbers:
            return frozenset()
        folded = name.casefold()

        def shape(spaces: list[Namespace], _: list[str]) -> tuple[list[str], list[Any]]:
            (tp,) = spaces
            return [tp.likers(thread_id)], [f"{n}:{folded}" for n in numbers]

        answer, _, _ = await self._read(scripts.LIKED, ("thread_page",), shape, min_position)
        return frozenset(n for n, flag in zip(numbers, answer[2], strict=True) if flag)

    # -- listings ----------------------------------------------------------------------

    async def _listing(self, projection: str, page: int, min_position: int | None,
                       listed: Callable[[Namespace], tuple[str, str | None]],
                       guess: Hashable, per_page: int | None = None
                       ) -> tuple[Listing, dict[str, str]]:
        per_page = per_page or self.per_page
        start = (page - 1) * per_page

        def shape(spaces: list[Namespace], ids: list[str]) -> tuple[list[str], list[Any]]:
            lp, tp = spaces
            ranked, extra = listed(lp)
            return ([ranked, extra or ranked, *(tp.thread(int(i)) for i in ids)],
                    [start, start + per_page - 1, tp.threads_marker(),
                     "0" if extra is None else "1"])

        answer, seen, spaces = await self._read(
            scripts.LISTING, (projection, "thread_page"), shape, min_position, guess)
        _, _, total, flats, extra = answer
        pages = _pages(int(total), per_page)
        _page_of(page, pages)
        return (Listing([summary(f) for f in flats if f], page, pages, min(seen), seen,
                        spaces), _pairs(extra))

    async def section_threads(self, slug: str, page: int, *,
                              min_position: int | None = None) -> SectionPage:
        known_slug(slug)
        asked = ("section", slug, page)
        kept = self.cache.get(asked, SectionPage, min_position)
        if kept is not None:
            return kept
        listing, meta = await self._listing(
            "thread_list", page, min_position,
            lambda lp: (lp.section_threads(slug), lp.section(slug)), asked)
        if not meta:
            raise ReadNotFoundError(f"no section {slug!r}")
        forum = Section(slug=meta["slug"], title=meta["title"], threads=int(meta["threads"]),
                        posts=int(meta["posts"]))
        return self.cache.put(asked, SectionPage(forum, listing))

    async def unanswered(self, page: int, *, min_position: int | None = None) -> Listing:
        asked = ("unanswered", page)
        kept = self.cache.get(asked, Listing, min_position)
        if kept is not None:
            return kept
        listing, _ = await self._listing("unanswered", page, min_position,
                                         lambda up: (up.unanswered, None), asked)
        return self.cache.put(asked, listing)

    async def newest(self, count: int, *, min_position: int | None = None) -> Listing:
        """The ``count`` threads started last, across sections, newest first (the latest
        threads' feed)."""
        asked = ("newest", count)
        kept = self.cache.get(asked, Listing, min_position)
        if kept is not None:
            return kept
        listing, _ = await self._listing("archives", 1, min_position,
                                         lambda ap: (ap.newest, None), asked, count)
        return self.cache.put(asked, listing)

    async def archive_year(self, slug: str, year: int, page: int, *,
                           min_position: int | None = None) -> Listing:
        if not 1 <= year <= 9999:
            raise ReadNotFoundError("no such year")
        known_slug(slug)
        asked = ("archive", slug, year, page)
        kept = self.cache.get(asked, Listing, min_position)
        if kept is not None:
            return kept
        listing, years = await self._listing(
            "archives", page, min_position,
            lambda ap: (ap.archive(slug, year), ap.archive_years(slug)), asked)
        if not years:
            raise ReadNotFoundError(f"no archive for section {slug!r}")
        if not listing.threads and page == 1 and int(years.get(str(year), "0")) <= 0:
            raise ReadNotFoundError(f"no threads of {year} in {slug!r}")
        return self.cache.put(asked, listing)

    async def archive_years(self, slug: str, *, min_position: int | None = None
                            ) -> ArchiveYears:
        known_slug(slug)
        asked = ("years", slug)
        kept = self.cache.get(asked, ArchiveYears, min_position)
        if kept is not None:
            return kept

        def shape(spaces: list[Namespace], _: list[str]) -> tuple[list[str], list[Any]]:
            ap, lp = spaces
            return [lp.section(slug), ap.archive_years(slug)], []

        answer, seen, spaces = await self._read(
            scripts.ARCHIVE_YEARS, ("archives", "thread_list"), shape, min_position)
        _, _, section_flat, years_flat = answer
        if not section_flat:
            raise ReadNotFoundError(f"no section {slug!r}")
        years = sorted(((int(y), int(n)) for y, n in _pairs(years_flat).items() if int(n) > 0),
                       reverse=True)
        return self.cache.put(asked, ArchiveYears(
            section(section_flat), [YearCount(year=y, threads=n) for y, n in years], min(seen),
            seen, spaces))

    async def forums(self, *, min_position: int | None = None) -> Forums:
        asked = ("forums",)
        kept = self.cache.get(asked, Forums, min_position)
        if kept is not None:
            return kept

        def shape(spaces: list[Namespace], slugs: list[str]) -> tuple[list[str], list[Any]]:
            (lp,) = spaces
            return ([lp.sections, *(lp.section(slug) for slug in slugs)],
                    [lp.sections_marker()])

        answer, seen, spaces = await self._read(scripts.FORUMS, ("thread_list",), shape,
                                                min_position, asked)
        return self.cache.put(asked, Forums([section(flat) for flat in answer[2]], min(seen),
                                            seen, spaces))

    # -- people ------------------------------------------------------------------------

    async def user(self, name: str, *, min_position: int | None = None) -> UserStats:
        asked = ("user", name)
        kept = self.cache.get(asked, UserStats, min_position)
        if kept is not None:
            return kept
        name = name.strip()
        folded = name.casefold()

        def shape(spaces: list[Namespace], _: list[str]) -> tuple[list[str], list[Any]]:
            (ms,) = spaces
            return ([ms.member(counter_key(name, False)), ms.member(counter_key(name, True)),
                     ms.guest_names, ms.guest_firsts], [folded])

        answer, seen, spaces = await self._read(scripts.USER, ("member_stats",), shape,
                                                min_position)
        if not answer[2]:
            raise ReadNotFoundError(f"no user {name!r}")
        h = _pairs(answer[2])
        joined: str | None
        if len(answer) > 3:  # a guest: names and first posts are kept for all guests
            name, guest = answer[3].decode(), True
            joined = rfc3339(moment_of(answer[4])) if answer[4] else None
        else:  # the operator has counters but no profile: the name as it was asked for
            name, guest, joined = h.get("name", name), h.get("guest") == "1", h.get("joined")
        return self.cache.put(asked, UserStats(
            name, guest, joined, int(h.get("threads", 0)), int(h.get("posts", 0)),
            int(h.get("reputation", 0)), min(seen), seen, spaces))

    async def activity(self, name: str, count: int = 10, *,
                       min_position: int | None = None) -> Activity:
        """The author's last ``count`` threads and posts (at most
        ``member_stats.RECENT``), newest first: a member's when ``name`` is a member's,
        else the guest's of that name."""
        name = name.strip()
        asked = ("activity", name, count)
        kept = self.cache.get(asked, Activity, min_position)
        if kept is not None:
            return kept

        def shape(spaces: list[Namespace], ids: list[str]) -> tuple[list[str], list[Any]]:
            ms, tp = spaces
            member, guest = counter_key(name, False), counter_key(name, True)
            return ([ms.member(member), ms.recent_threads(member), ms.recent_posts(member),
                     ms.recent_deleted(member), ms.member(guest), ms.recent_threads(guest),
                     ms.recent_posts(guest), ms.recent_deleted(guest),
                     *(tp.thread(int(i)) for i in ids)],
                    [count, tp.threads_marker()])

        answer, seen, spaces = await self._read(
            scripts.ACTIVITY, ("member_stats", "thread_page"), shape, min_position, asked)
        _, _, thread_ids, posts, flats = answer
        titled = {s.id: s for s in (summary(f) for f in flats if f)}
        threads = [titled[int(i)] for i in thread_ids if int(i) in titled]
        recent: list[RecentPost] = []
        for member, score in zip(posts[::2], posts[1::2], strict=True):
            post_id, thread_id, number = (int(x) for x in member.split(b":"))
            if thread_id in titled:
                recent.append(RecentPost(post_id, number, titled[thread_id],
                                         rfc3339(moment_of(score))))
        return self.cache.put(asked, Activity(threads, recent, min(seen), seen, spaces))

    async def held(self, author_key: str | None, page: int, *, per_page: int | None = None,
                   min_position: int | None = None) -> HeldQueue:
        """Posts held for review, oldest first: all of them (``author_key`` None: for
        moderators) or one author's. Never kept: it is private."""
        per_page = per_page or self.per_page
        start = (page - 1) * per_page

        def shape(spaces: list[Namespace], _: list[str]) -> tuple[list[str], list[Any]]:
            (hp,) = spaces
            held = hp.held_pending() if author_key is None else hp.held_by(author_key)
            return [held, hp.held_items()], [start, start + per_page - 1]

        answer, seen, spaces = await self._read(scripts.HELD, ("held",), shape, min_position)
        _, _, total, items = answer
        pages = _pages(int(total), per_page)
        _page_of(page, pages)
        return HeldQueue([item for item in items if item], page, pages, min(seen), seen,
                         spaces)
