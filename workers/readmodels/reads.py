"""Every read of the read models: a script on the keys of one hash slot per read (the
thread's, the listing's: workers/readmodels/scripts.py), and for what the read finds in
other slots (a page's authors' counters, a listing's threads' summaries) one ``FETCH``
script per partition, all sent in one pipeline. So reads run on a Redis Cluster as on
one Redis, by the same code. They answer typed values (workers/readmodels/values.py)
that know nothing of HTTP. The JSON routes splice them into bytes, the pages into HTML.

Each read here says what it asks (its script calls, what it needs from other slots and
how to fetch it) and makes its answer; how that reaches Redis is workers/readmodels/
reader.py: keys built from the namespaces the pointers named last, a read made again
when one was fenced (its checkpoint missing), what other slots hold guessed from the last
read of the same page and sent at the same time as the script (one round trip unless
something changed), and with ``min_position`` a wait (at most ``min_position_wait``
seconds) until every partition read has reached that position. Answers are kept
``cache_ms`` (workers/readmodels/answer_cache.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable
from typing import Any, Final

from redis.asyncio import Redis

from common.bbcode import render
from events import EventStore
from events.threads import PostAdded
from workers.readmodels import scripts, stored_posts
from workers.readmodels.answer_cache import AnswerCache
from workers.readmodels.errors import (
    ReadNotFoundError,
)
from workers.readmodels.formats import moment_of, rfc3339
from workers.readmodels.keys import Keys, Namespace, counter_key
from workers.readmodels.reader import Reader
from workers.readmodels.scripts import Call, Fetch
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
# The newest versions of an edited post its history lists (a post edited more often
# shows only these).
REVISIONS_SHOWN: Final = 100
def known_slug(slug: str) -> str:
    """``slug`` when it could name a section; not found otherwise."""
    if not SLUG.fullmatch(slug):
        raise ReadNotFoundError(f"no section {slug[:80]!r}")
    return slug


def _hash(flat: list[bytes]) -> dict[bytes, bytes]:
    """A hash as a script answers HGETALL (field, value, ...)."""
    it = iter(flat)
    return dict(zip(it, it, strict=True))


def _text(h: dict[bytes, bytes]) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in h.items()}


def summary(h: dict[bytes, bytes]) -> ThreadSummary:
    return ThreadSummary(
        id=int(h[b"id"]), title=h[b"title"].decode(), forum=h[b"forum"].decode(),
        author=h[b"author"].decode(), guest=h[b"guest"] == b"1", posts=int(h[b"posts"]),
        replies=int(h[b"replies"]), created_at=h[b"created_at"].decode(),
        bumped_at=h[b"bumped_at"].decode(), locked=h[b"locked"] == b"1",
    )


def section(h: dict[bytes, bytes]) -> Section:
    return Section(slug=h[b"slug"].decode(), title=h[b"title"].decode(),
                   threads=int(h[b"threads"]), posts=int(h[b"posts"]))


def author_of(stored: bytes) -> str:
    """The counter key a stored post starts with (workers/readmodels/stored_posts.py: its
    length, ':', the key, then the post's JSON)."""
    colon = stored.index(b":")
    return stored[colon + 1:colon + 1 + int(stored[:colon])].decode()


def _counters(replied: list[bytes | None]) -> tuple[bytes, bytes, bytes]:
    """An author's threads, posts and reputation as HMGET answers them (none yet: 0)."""
    threads, posts, reputation = (value or b"0" for value in replied)
    return threads, posts, reputation


def _distinct(names: list[str]) -> list[str]:
    return list(dict.fromkeys(names))


def _pages(total: int, per_page: int) -> int:
    return max(1, -(-total // per_page))


def _page_of(page: int, pages: int) -> None:
    if page > pages:
        raise ReadNotFoundError(f"page {page} is past the last page ({pages})")


class Reads(Reader):
    def __init__(self, redis: Redis, keys: Keys, store: EventStore, *, per_page: int,
                 min_position_wait: float, cache_ms: int) -> None:
        super().__init__(redis, keys, store, min_position_wait=min_position_wait)
        self.per_page = per_page
        self.cache = AnswerCache(cache_ms)

    # -- threads -----------------------------------------------------------------------

    async def thread_page(self, thread_id: int, page: int, *, per_page: int | None = None,
                          min_position: int | None = None) -> ThreadPage:
        per_page = per_page or self.per_page
        asked = ("thread_page", thread_id, page, per_page)
        kept = self.cache.get(asked, ThreadPage, min_position)
        if kept is not None:
            return kept
        start = (page - 1) * per_page

        def calls(spaces: list[Namespace]) -> list[Call]:
            return [scripts.thread_page(spaces[0], thread_id, start, start + per_page - 1)]

        def needs(answers: list[list[Any]]) -> list[str]:
            found = answers[0]
            return _distinct([author_of(stored) for stored in found[2]]) if found[0] else []

        def fetch(spaces: list[Namespace], author: str) -> Fetch:
            return scripts.counters(spaces[1], author)

        got = await self._read(("thread_page", "member_stats"), calls, min_position,
                               needs=needs, fetch=fetch,
                               guess=("thread_page", thread_id, start, per_page),
                               thread_id=thread_id)
        found = got.answers[0]
        if not found[0]:
            raise ReadNotFoundError("no such thread")
        flat, count, posts, likes = found
        pages = _pages(count, per_page)
        _page_of(page, pages)
        entries = [PostEntry(stored_posts.decode(stored, thread_id, number),
                             *_counters(got.fetched[author_of(stored)]), liked)
                   for number, stored, liked in zip(
                       range(start + 1, start + 1 + len(posts)), posts, likes, strict=True)]
        return self.cache.put(asked, ThreadPage(summary(_hash(flat)), entries, page, pages,
                                                per_page, got.position, got.seen, got.spaces))

    async def post(self, post_id: int, *, min_position: int | None = None) -> OnePost:
        asked = ("post", post_id)
        kept = self.cache.get(asked, OnePost, min_position)
        if kept is not None:
            return kept
        where = await self.store.locate_post(post_id)
        if where is None:
            raise ReadNotFoundError("no such post")
        tid = where.thread_id

        def calls(spaces: list[Namespace]) -> list[Call]:
            return [scripts.post(spaces[0], tid, where.number)]

        def needs(answers: list[list[Any]]) -> list[str]:
            stored = answers[0][0]
            return [author_of(stored)] if stored else []

        def fetch(spaces: list[Namespace], author: str) -> Fetch:
            return scripts.counters(spaces[1], author)

        got = await self._read(("thread_page", "member_stats"), calls, min_position,
                               needs=needs, fetch=fetch, guess=asked, thread_id=tid)
        found = got.answers[0]
        if not found[0]:
            raise ReadNotFoundError("no such post")
        stored, likes = found
        entry = PostEntry(stored_posts.decode(stored, tid, where.number),
                          *_counters(got.fetched[author_of(stored)]), likes)
        return self.cache.put(asked, OnePost(entry, (where.number - 1) // self.per_page + 1,
                                             got.position, got.seen, got.spaces))

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

        def calls(spaces: list[Namespace]) -> list[Call]:
            return [scripts.revisions(spaces[0], tid, number, REVISIONS_SHOWN)]

        got = await self._read(("thread_page",), calls, min_position)
        count, listed = got.answers[0]
        edits = [stored_posts.decode(stored, tid, number) for stored in listed]
        older = int(count) - len(edits)
        earlier = [Revision(e.edited_at or e.created_at, e.html) for e in edits[:-1]]
        if edits and older == 0:  # the first version is the log's
            first = await self.store.added_post(post_id)
            if isinstance(first, PostAdded):
                earlier.insert(0, Revision(rfc3339(first.occurred_at), render(first.body)))
        hidden = older + 1 if older else 0  # the unlisted edits and the first version
        return self.cache.put(asked, Revisions(post, earlier, hidden, got.position, got.seen,
                                               got.spaces))

    async def liked(self, thread_id: int, numbers: list[int], name: str, *,
                    min_position: int | None = None) -> frozenset[int]:
        """Which of the thread's posts ``numbers`` the member ``name`` likes (what a page
        shows them: Like or Unlike). Not kept: it is one viewer's."""
        if not numbers:
            return frozenset()
        folded = name.casefold()

        def calls(spaces: list[Namespace]) -> list[Call]:
            return [scripts.liked(spaces[0], thread_id, [f"{n}:{folded}" for n in numbers])]

        got = await self._read(("thread_page",), calls, min_position)
        return frozenset(n for n, flag in zip(numbers, got.answers[0][0], strict=True) if flag)

    # -- listings ----------------------------------------------------------------------

    async def _listing(self, projection: str, page: int, min_position: int | None,
                       listed: Callable[[Namespace, int, int], Call],
                       guess: Hashable, per_page: int | None = None
                       ) -> tuple[Listing, dict[str, str]]:
        per_page = per_page or self.per_page
        start = (page - 1) * per_page

        def calls(spaces: list[Namespace]) -> list[Call]:
            return [listed(spaces[0], start, start + per_page - 1)]

        def needs(answers: list[list[Any]]) -> list[str]:
            return [tid.decode() for tid in answers[0][1]]

        def fetch(spaces: list[Namespace], tid: str) -> Fetch:
            return scripts.thread_summary(spaces[1], int(tid))

        got = await self._read((projection, "thread_page"), calls, min_position, needs=needs,
                               fetch=fetch, guess=guess)
        total, ids, extra = got.answers[0]
        pages = _pages(int(total), per_page)
        _page_of(page, pages)
        # A summary not there yet (its partition behind the listing's) is left out.
        threads = [summary(_hash(flat)) for flat in (got.fetched[tid.decode()] for tid in ids)
                   if flat]
        return (Listing(threads, page, pages, got.position, got.seen, got.spaces),
                _text(_hash(extra)))

    async def section_threads(self, slug: str, page: int, *,
                              min_position: int | None = None) -> SectionPage:
        known_slug(slug)
        asked = ("section", slug, page)
        kept = self.cache.get(asked, SectionPage, min_position)
        if kept is not None:
            return kept
        listing, meta = await self._listing(
            "thread_list", page, min_position,
            lambda lp, first, last: scripts.section_listing(lp, slug, first, last), asked)
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
        listing, _ = await self._listing(
            "unanswered", page, min_position,
            lambda up, first, last: scripts.board_listing(up, up.unanswered, first, last),
            asked)
        return self.cache.put(asked, listing)

    async def newest(self, count: int, *, min_position: int | None = None) -> Listing:
        """The ``count`` threads started last, across sections, newest first (the latest
        threads' feed)."""
        asked = ("newest", count)
        kept = self.cache.get(asked, Listing, min_position)
        if kept is not None:
            return kept
        listing, _ = await self._listing(
            "archives", 1, min_position,
            lambda ap, first, last: scripts.board_listing(ap, ap.newest, first, last),
            asked, count)
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
            lambda ap, first, last: scripts.archive_listing(ap, slug, year, first, last),
            asked)
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

        def calls(spaces: list[Namespace]) -> list[Call]:
            ap, lp = spaces
            return [scripts.archive_years(ap, lp, slug)]

        got = await self._read(("archives", "thread_list"), calls, min_position)
        section_flat, years_flat = got.answers[0]
        if not section_flat:
            raise ReadNotFoundError(f"no section {slug!r}")
        years = sorted(((int(y), int(n)) for y, n in _text(_hash(years_flat)).items()
                        if int(n) > 0), reverse=True)
        return self.cache.put(asked, ArchiveYears(
            section(_hash(section_flat)), [YearCount(year=y, threads=n) for y, n in years],
            got.position, got.seen, got.spaces))

    async def forums(self, *, min_position: int | None = None) -> Forums:
        asked = ("forums",)
        kept = self.cache.get(asked, Forums, min_position)
        if kept is not None:
            return kept

        def calls(spaces: list[Namespace]) -> list[Call]:
            return [scripts.forums(spaces[0])]

        def needs(answers: list[list[Any]]) -> list[str]:
            return [slug.decode() for slug in answers[0][0]]

        def fetch(spaces: list[Namespace], slug: str) -> Fetch:
            return scripts.section_summary(spaces[0], slug)

        got = await self._read(("thread_list",), calls, min_position, needs=needs,
                               fetch=fetch, guess=asked)
        # A summary not there yet (its partition behind the board's) is left out.
        forums = [section(_hash(flat)) for flat in (
            got.fetched[slug.decode()] for slug in got.answers[0][0]) if flat]
        return self.cache.put(asked, Forums(forums, got.position, got.seen, got.spaces))

    # -- people ------------------------------------------------------------------------

    async def user(self, name: str, *, min_position: int | None = None) -> UserStats:
        asked = ("user", name)
        kept = self.cache.get(asked, UserStats, min_position)
        if kept is not None:
            return kept
        name = name.strip()
        folded = name.casefold()
        member, guest = counter_key(name, False), counter_key(name, True)

        def needs(_: list[list[Any]]) -> list[str]:
            return ["member", "guest", "name", "first"]

        def fetch(spaces: list[Namespace], what: str) -> Fetch:
            (ms,) = spaces
            if what == "name":
                return scripts.guest_name(ms, folded)
            if what == "first":
                return scripts.guest_first(ms, folded)
            return scripts.profile(ms, member if what == "member" else guest)

        # Three slots (the member's, the guest's, the board's guests' names): no script.
        got = await self._read(("member_stats",), lambda _: [], min_position, needs=needs,
                               fetch=fetch)
        found = got.fetched
        joined: str | None
        if found["member"]:
            h = _text(_hash(found["member"]))
            name, guest_, joined = h.get("name", name), h.get("guest") == "1", h.get("joined")
        elif found["guest"]:  # a guest: names and first posts are kept for all guests
            h = _text(_hash(found["guest"]))
            name, guest_ = (found["name"] or b"").decode(), True
            first = found["first"]
            joined = rfc3339(moment_of(first)) if first else None
        else:
            raise ReadNotFoundError(f"no user {name!r}")
        return self.cache.put(asked, UserStats(
            name, guest_, joined, int(h.get("threads", 0)), int(h.get("posts", 0)),
            int(h.get("reputation", 0)), got.position, got.seen, got.spaces))

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
        member, guest = counter_key(name, False), counter_key(name, True)

        def calls(spaces: list[Namespace]) -> list[Call]:
            ms = spaces[0]
            return [scripts.activity(ms, member, count), scripts.activity(ms, guest, count)]

        def chosen(answers: list[list[Any]]) -> list[Any]:
            return answers[0] if answers[0][0] else answers[1]

        def needs(answers: list[list[Any]]) -> list[str]:
            _, thread_ids, posts = chosen(answers)
            return _distinct([tid.decode() for tid in thread_ids]
                             + [post.split(b":")[1].decode() for post in posts[::2]])

        def fetch(spaces: list[Namespace], tid: str) -> Fetch:
            return scripts.thread_summary(spaces[1], int(tid))

        got = await self._read(("member_stats", "thread_page"), calls, min_position,
                               needs=needs, fetch=fetch, guess=asked)
        _, thread_ids, posts = chosen(got.answers)
        titled = {s.id: s for s in (summary(_hash(flat)) for flat in got.fetched.values() if flat)}
        threads = [titled[int(i)] for i in thread_ids if int(i) in titled]
        recent: list[RecentPost] = []
        for member_, score in zip(posts[::2], posts[1::2], strict=True):
            post_id, thread_id, number = (int(x) for x in member_.split(b":"))
            if thread_id in titled:
                recent.append(RecentPost(post_id, number, titled[thread_id],
                                         rfc3339(moment_of(score))))
        return self.cache.put(asked, Activity(threads, recent, got.position, got.seen,
                                              got.spaces))

    async def held(self, author_key: str | None, page: int, *, per_page: int | None = None,
                   min_position: int | None = None) -> HeldQueue:
        """Posts held for review, oldest first: all of them (``author_key`` None: for
        moderators) or one author's. Never kept: it is private."""
        per_page = per_page or self.per_page
        start = (page - 1) * per_page

        def calls(spaces: list[Namespace]) -> list[Call]:
            return [scripts.held(spaces[0], author_key, start, start + per_page - 1)]

        def needs(answers: list[list[Any]]) -> list[str]:
            # All pending: the items came with them (one slot). One author's: fetched.
            return [] if author_key is None else [i.decode() for i in answers[0][1]]

        def fetch(spaces: list[Namespace], held_id: str) -> Fetch:
            return scripts.held_item(spaces[0], held_id)

        got = await self._read(
            ("held",), calls, min_position, needs=needs, fetch=fetch,
            guess=None if author_key is None else ("held", author_key, start, per_page))
        total, ids, items = got.answers[0]
        if author_key is not None:
            items = [got.fetched[i.decode()] for i in ids]
        pages = _pages(int(total), per_page)
        _page_of(page, pages)
        return HeldQueue([item for item in items if item], page, pages, got.position,
                         got.seen, got.spaces)
