"""Every Redis key of the read models, built here and nowhere else (the Lua read scripts
get theirs in ``KEYS``, built by these same methods).

Every projection writes under its own namespace, ``{prefix}:{projection}:{ns}``;
``{prefix}:active:{projection}`` names the namespace readers use. A rebuild fills a fresh
namespace and then moves that pointer, so readers switch atomically and never see a
half-built view.

Partitions (docs/design.md, "Partitions"): the keys of a namespace are split into
``PARTITIONS`` partitions by the stream they belong to (a thread's keys by the thread, a
section's by the section, an author's by the author; the few keys of the whole board in
partition 0), and each partition has its own checkpoint. A partition's keys carry its
hash tag, ``{prefix}:{projection}:{ns}:{TAG}:...``, so on a Redis Cluster they share one
hash slot with their checkpoint and one transaction commits them; the tags are chosen so
the partitions' slots are spread evenly over the slot space.
"""

from __future__ import annotations

import zlib
from typing import Final, TypeVar

from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot

# A thread page's keys (posts, likes) expire after this long: under
# ``maxmemory-policy volatile-lfu`` Redis evicts only keys with an expire, so these, and
# nothing else, may be evicted (a read rebuilds them; docs/design.md "Thread pages as a
# cache"). Refreshed on every write and rebuild of the page.
PAGE_TTL: Final = 30 * 86400
# The field every whole page's likes hash holds (a hash made by a like alone, after Redis
# evicted the page, lacks it).
PAGE_MARK: Final = "@"

PROJECTION_NAMES: Final = ("thread_page", "thread_list", "unanswered", "archives",
                           "member_stats", "held")

# How many partitions each read model is split into. Part of the key layout: changing it
# needs a replay (each projection's ``version`` bumped).
PARTITIONS: Final = 16
# The partition of the keys of the whole board (the sections' list, unanswered, newest,
# the guests' names, the held queue).
BOARD: Final = 0


def version_of(ns: str) -> int:
    """The projection version a namespace's name (``v{version}.{generation}.{born}``,
    workers/rebuild.py) was made for; -1 if it names none."""
    try:
        return int(ns.split(".", 1)[0].removeprefix("v"))
    except ValueError:
        return -1


def _spread_tags(count: int) -> tuple[str, ...]:
    """A hash tag per partition whose slot lies in the partition's share of the slot
    space: each of a cluster's masters (which own even ranges of slots) gets its share
    of partitions, where tags named at random would bunch."""
    tags = []
    for partition in range(count):
        low = partition * REDIS_CLUSTER_HASH_SLOTS // count
        high = (partition + 1) * REDIS_CLUSTER_HASH_SLOTS // count
        tries = 0
        while not low <= key_slot(f"p{partition}-{tries}".encode()) < high:
            tries += 1
        tags.append(f"p{partition}-{tries}")
    return tuple(tags)


TAGS: Final = _spread_tags(PARTITIONS)
_PARTITION_OF_TAG: Final = {tag: partition for partition, tag in enumerate(TAGS)}


def thread_partition(thread_id: int) -> int:
    return thread_id % PARTITIONS


def named_partition(name: str) -> int:
    """The partition of a section (by slug) or an author (by counter key)."""
    return zlib.crc32(name.encode()) % PARTITIONS


def partition_of_key(key: str) -> int:
    """The partition a namespace's key belongs to, from its hash tag."""
    start = key.index("{") + 1
    return _PARTITION_OF_TAG[key[start:key.index("}", start)]]


class Keys:
    """Keys outside any namespace: pointers, locks, build state."""

    def __init__(self, prefix: str = "forum") -> None:
        if "{" in prefix or "}" in prefix:
            raise ValueError("a key prefix must not hold braces: they would be its hash tag")
        self.prefix = prefix

    def active(self, projection: str) -> str:
        return f"{self.prefix}:active:{projection}"

    def building(self, projection: str) -> str:
        return f"{self.prefix}:building:{projection}"

    def stats(self) -> str:
        """Operational counters (outside any namespace: not part of the read models)."""
        return f"{self.prefix}:stats"

    def generation(self) -> str:
        return f"{self.prefix}:generation"

    def lock(self, name: str) -> str:
        return f"{self.prefix}:lock:{name}"

    def dirty(self, name: str) -> str:
        return f"{self.prefix}:dirty:{name}"

    def partition_lease(self, partition: int) -> str:
        """The live projector's lease on one partition (every projection's keys in it);
        its value names the holder (workers/partitions.py)."""
        return f"{self.prefix}:lock:live:{{{TAGS[partition]}}}"

    def wake(self) -> str:
        """The pub/sub channel an API process publishes on when the log has grown, and
        each worker process listens on (workers/wake.py)."""
        return f"{self.prefix}:wake"

    def workers(self) -> str:
        """Sorted set of the live projectors' names, by when they last said they were
        alive: how many share the partitions."""
        return f"{self.prefix}:workers"

    def namespace(self, projection: str, ns: str, *, pages: bool = True) -> Namespace:
        """``pages`` False: a build's namespace, whose thread pages are made on read."""
        return Namespace(f"{self.prefix}:{projection}:{ns}", pages=pages)


# How many threads', sections' and authors' keys a Namespace remembers (then it starts
# afresh): a rebuild meets every author of the log, and below the number active in a
# stretch of it (5,000 in the replay benchmark's log) the memory was cleared before use.
_REMEMBERED: Final = 65536
K = TypeVar("K")
V = TypeVar("V")


class Namespace:
    """The keys of one projection's generation.

    The fixed keys are built once, and a thread's, a section's and an author's keys are
    remembered: a batch of the log names the same few threads, sections and authors over
    and over, and building the strings was a tenth of the cost of projecting a post."""

    __slots__ = ("_board", "_folded", "_guest_counters", "_guest_members",
                 "_member_counters", "_member_members", "_sections", "_tagged", "_threads",
                 "base", "checkpoints", "guest_firsts", "guest_names", "newest", "pages",
                 "sections", "unanswered")

    def __init__(self, base: str, *, pages: bool = True) -> None:
        self.base = base
        # thread_page: whether the projection writes the threads' pages (posts, likes),
        # the cache readers rebuild when missing (docs/design.md, "Thread pages as
        # a cache"): a build does not, so a replay does not hold two boards' posts.
        self.pages = pages
        # Each partition's keys start with its tagged base.
        self._tagged = tuple(f"{base}:{{{tag}}}" for tag in TAGS)
        # Where each partition is in the log, by partition.
        self.checkpoints = tuple(f"{tagged}:checkpoint" for tagged in self._tagged)
        board = self._board = self._tagged[BOARD]
        # thread_list: sorted set of the sections' slugs
        self.sections = f"{board}:sections"
        # unanswered: sorted set of thread ids
        self.unanswered = f"{board}:unanswered"
        # archives: sorted set of every thread id, by when it started (the latest feed)
        self.newest = f"{board}:newest"
        # member_stats: hash of a guest's folded name -> the name as last written
        self.guest_names = f"{board}:guests:names"
        # member_stats: sorted set of guests' folded names, scored by their first post
        self.guest_firsts = f"{board}:guests:first"
        self._threads: dict[int, tuple[str, str, str]] = {}
        self._sections: dict[str, tuple[str, str]] = {}
        # Apart, not a tuple indexed by ``guest``: compiled, a tuple attribute is boxed
        # anew on every read.
        self._member_members: dict[str, str] = {}
        self._guest_members: dict[str, str] = {}
        self._member_counters: dict[str, str] = {}
        self._guest_counters: dict[str, str] = {}
        self._folded: dict[str, str] = {}

    def pattern(self) -> str:
        return f"{self.base}:*"

    # thread_page
    def thread_keys(self, thread_id: int) -> tuple[str, str, str]:
        """The thread's summary, posts and likes keys (each post stored with its author's
        counter key: workers/readmodels/stored_posts.py)."""
        keys = self._threads.get(thread_id)
        if keys is None:
            summary = f"{self._tagged[thread_id % PARTITIONS]}:t:{thread_id}"
            keys = _keep(self._threads, thread_id,
                         (summary, f"{summary}:posts", f"{summary}:likes"))
        return keys

    def thread(self, thread_id: int) -> str:
        return self.thread_keys(thread_id)[0]

    def posts(self, thread_id: int) -> str:
        return self.thread_keys(thread_id)[1]

    def likes(self, thread_id: int) -> str:
        return self.thread_keys(thread_id)[2]

    def page_keys(self, thread_id: int) -> tuple[str, str]:
        """The thread's page, the keys Redis may evict: posts and likes."""
        _, posts, likes = self.thread_keys(thread_id)
        return posts, likes

    def revisions(self, thread_id: int, number: int) -> str:
        """List of the post's versions written by its edits, oldest first (each a
        ``PostHead`` prefix, as the page's list holds them); the first version is the
        log's ``PostAdded`` (workers/readmodels/reads.py ``revisions``)."""
        return f"{self.thread(thread_id)}:r:{number}"

    def likers(self, thread_id: int) -> str:
        """Sorted set of ``{number}:{folded name}``: who likes which post of the thread
        (the pages show each member Like or Unlike)."""
        return f"{self.thread(thread_id)}:likers"

    # thread_list
    def section_keys(self, slug: str) -> tuple[str, str]:
        """The section's summary and its threads by last bump."""
        keys = self._sections.get(slug)
        if keys is None:
            summary = f"{self._tagged[named_partition(slug)]}:s:{slug}"
            keys = _keep(self._sections, slug, (summary, f"{summary}:threads"))
        return keys

    def section(self, slug: str) -> str:
        return self.section_keys(slug)[0]

    def section_threads(self, slug: str) -> str:
        return self.section_keys(slug)[1]

    # archives
    def archive(self, slug: str, year: int) -> str:
        return f"{self._tagged[named_partition(slug)]}:a:{slug}:{year}"

    def archive_years(self, slug: str) -> str:
        return f"{self._tagged[named_partition(slug)]}:a:{slug}:years"

    # member_stats
    def member(self, counter_key: str) -> str:
        return f"{self._tagged[named_partition(counter_key)]}:u:{counter_key}"

    def recent_threads(self, counter_key: str) -> str:
        """Sorted set of the author's last threads' ids, by when they started."""
        return f"{self.member(counter_key)}:threads"

    def recent_posts(self, counter_key: str) -> str:
        """Sorted set of the author's last posts (``post_id:thread_id:number``), by when
        they were written."""
        return f"{self.member(counter_key)}:posts"

    def recent_deleted(self, counter_key: str) -> str:
        """The same for the author's last deleted posts (each by when it was written)."""
        return f"{self.member(counter_key)}:deleted"

    def member_of(self, name: str, guest: bool) -> str:
        """``member(counter_key(name, guest))``."""
        remembered = self._guest_members if guest else self._member_members
        key = remembered.get(name)
        if key is None:
            key = _keep(remembered, name, self.member(self.counter_key(name, guest)))
        return key

    def counter_key(self, name: str, guest: bool) -> str:
        """``counter_key(name, guest)``, remembered."""
        remembered = self._guest_counters if guest else self._member_counters
        key = remembered.get(name)
        if key is None:
            key = _keep(remembered, name, counter_key(name, guest))
        return key

    # held
    def held_pending(self) -> str:
        """Sorted set of held ids, by when they were held."""
        return f"{self._board}:held:pending"

    def held_by(self, author_key: str) -> str:
        """The same, for one author (``Actor.key``)."""
        return f"{self._tagged[named_partition(author_key)]}:held:by:{author_key}"

    def held_items(self) -> str:
        """Hash: held id -> the item as ready JSON."""
        return f"{self._board}:held:items"

    def folded(self, name: str) -> str:
        """``name.casefold()``, remembered."""
        folded = self._folded.get(name)
        if folded is None:
            folded = _keep(self._folded, name, name.casefold())
        return folded


def _keep(memory: dict[K, V], key: K, value: V) -> V:
    """Remember ``value`` for ``key`` (a memory that is full starts afresh)."""
    if len(memory) >= _REMEMBERED:
        memory.clear()
    memory[key] = value
    return value


def counter_key(name: str, guest: bool) -> str:
    """Members and guests are counted apart: a guest never takes a member's name, but a
    name used by guests may later be registered."""
    return ("g:" if guest else "m:") + name.casefold()
