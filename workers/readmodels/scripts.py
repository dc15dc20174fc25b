"""What a read sends to Redis: scripts, each on the keys of one hash slot, so a read
runs on a Redis Cluster as on one Redis (docs/design.md, "Redis Cluster"). Keys are
built here, from workers/readmodels/keys.py, never in Lua.

A read model's partition is one slot (its keys and its checkpoint share a hash tag), so
a script reads the checkpoints of the (projection, partition) pairs whose keys it reads,
all in its slot, then those keys. ``KEYS``: those checkpoints, then the script's own
keys; ``ARGV``: how many checkpoints, then the script's arguments. Answers:

* ``{2}``: a checkpoint is missing: its namespace was swapped out, recovered or dropped
  (the write side deletes a namespace's checkpoints before anything else: a fence). The
  caller reads the projections' pointers again and retries;
* ``{4}``: a thread page is missing or partial (Redis evicted its keys, or some of them:
  docs/design.md, "Thread pages as a cache"): the caller rebuilds it and retries;
* ``{1, checkpoints, ...}``: the data, with the checkpoints as read (a partition's keys
  change only when its checkpoint moves: what a cached answer's tag is made of).

A read's main script reads one slot (the thread's, the listing's); what the read finds
in other slots (a page's authors' counters, a listing's threads' summaries) it reads
with ``Fetch``es, a plain read of one key each, gathered by partition into one ``FETCH``
call per partition (workers/readmodels/reads.py sends them all in one pipeline).
"""

from __future__ import annotations

from typing import Any, Final, NamedTuple

from workers.readmodels import keys as _keys
from workers.readmodels.keys import BOARD, Namespace, named_partition, thread_partition

# Checks the checkpoints, ``KEYS[1..n]``, and leaves them in ``cps``; the script's own
# keys start after ``k0``, its arguments at ``ARGV[2]``.
_FENCE: Final = """
local k0 = tonumber(ARGV[1])
local cps = redis.call('MGET', unpack(KEYS, 1, k0))
for i = 1, k0 do
  if not cps[i] then return {2} end
end
"""

# Whether a thread's page is whole: as many posts as its summary counts, and the likes'
# mark. ``whole(summary, posts, likes)``: the number of posts, or nil.
WHOLE: Final = """
local function whole(summary, posts, likes)
  local total = tonumber(redis.call('HGET', summary, 'posts') or '0')
  if redis.call('LLEN', posts) ~= total
      or redis.call('HEXISTS', likes, '""" + _keys.PAGE_MARK + """') == 0 then
    return nil
  end
  return total
end
"""

# KEYS (one slot: the thread's partition): thread_page's checkpoint; the thread's
# summary, its posts and likes. ARGV: 1, first and last index.
# The posts' authors' counters are in their own partitions: the caller fetches them.
THREAD_PAGE: Final = _FENCE + WHOLE + """
local summary = redis.call('HGETALL', KEYS[k0 + 1])
if #summary == 0 then return {1, cps, {}} end
local start = tonumber(ARGV[2])
local count = whole(KEYS[k0 + 1], KEYS[k0 + 2], KEYS[k0 + 3])
if not count then return {4} end
local posts = redis.call('LRANGE', KEYS[k0 + 2], start, tonumber(ARGV[3]))
local numbers = {}
for i = 1, #posts do numbers[i] = tostring(start + i) end
local likes = {}
if #numbers > 0 then likes = redis.call('HMGET', KEYS[k0 + 3], unpack(numbers)) end
for i = 1, #posts do
  if not likes[i] then likes[i] = '0' end
end
return {1, cps, summary, count, posts, likes}
"""

# KEYS (one slot: the thread's partition): thread_page's checkpoint; the thread's
# summary, posts and likes. ARGV: 1, the post's number.
POST: Final = _FENCE + WHOLE + """
if redis.call('EXISTS', KEYS[k0 + 1]) == 0 then return {1, cps, ''} end
if not whole(KEYS[k0 + 1], KEYS[k0 + 2], KEYS[k0 + 3]) then return {4} end
local post = redis.call('LINDEX', KEYS[k0 + 2], tonumber(ARGV[2]) - 1)
if not post then return {1, cps, ''} end
return {1, cps, post, redis.call('HGET', KEYS[k0 + 3], ARGV[2]) or '0'}
"""

# Writes a thread's page rebuilt from its events (workers/page_rebuild.py), if it is still
# missing or partial and the partition's checkpoint is where the fold holds: at or past
# the position the fold read up to, and below the thread's next event (or the first
# position the rebuild could not have seen). So the projector, which goes on from its
# checkpoint, neither applies an event twice nor skips one (docs/design.md, "Thread
# pages as a cache"). No pointer is checked: a namespace swapped out or dropped has lost
# its checkpoints first (the fence).
# KEYS (one slot: the thread's partition): thread_page's checkpoint, the thread's
# summary, posts and likes.
# ARGV: the lowest and (excluded) highest checkpoint the page holds for, the pages' TTL,
# then commands: each as its argument count and its arguments.
# Answers {1}: written; {0}: not needed (whole already, or no such thread); {2,
# checkpoint}: the checkpoint is out of range (fold again), or '' when it is missing
# (the namespace was fenced: read the pointer again).
REBUILD_PAGE: Final = WHOLE + """
local checkpoint = redis.call('GET', KEYS[1])
if not checkpoint then return {2, ''} end
local at = tonumber(checkpoint)
if at < tonumber(ARGV[1]) or at >= tonumber(ARGV[2]) then return {2, checkpoint} end
if redis.call('EXISTS', KEYS[2]) == 0 then return {0} end
if whole(KEYS[2], KEYS[3], KEYS[4]) then return {0} end
redis.call('DEL', KEYS[3], KEYS[4])
local i = 4
while i <= #ARGV do
  local argc = tonumber(ARGV[i])
  local target = ARGV[i + 2]
  if target ~= KEYS[3] and target ~= KEYS[4] then
    return redis.error_reply('a rebuilt page writes its own keys only')
  end
  redis.call(unpack(ARGV, i + 1, i + argc))
  i = i + argc + 1
end
for k = 3, 4 do redis.call('EXPIRE', KEYS[k], ARGV[3]) end
return {1}
"""

# KEYS (one slot: the listing's partition): the listing projection's checkpoint; the
# sorted set of the listing; a hash of the same partition to return whole (a section's
# summary beside its threads, an archive's years beside a year; with ARGV[4] '1', else
# not read). ARGV: 1, first and last rank, '1' or '0'.
# The listed threads' summaries are in their own partitions: the caller fetches them.
LISTING: Final = _FENCE + """
local total = redis.call('ZCARD', KEYS[k0 + 1])
local ids = redis.call('ZREVRANGE', KEYS[k0 + 1], tonumber(ARGV[2]), tonumber(ARGV[3]))
local extra = {}
if ARGV[4] == '1' then extra = redis.call('HGETALL', KEYS[k0 + 2]) end
return {1, cps, total, ids, extra}
"""

# KEYS (one slot: the board's partition): thread_list's checkpoint; the sorted set of the
# sections. ARGV: 1. The sections' summaries are in their own partitions.
FORUMS: Final = _FENCE + """
return {1, cps, redis.call('ZRANGE', KEYS[k0 + 1], 0, -1)}
"""

# KEYS (one slot: the section's partition): the checkpoints of archives and thread_list;
# the section's summary and its archive's years. ARGV: 2.
ARCHIVE_YEARS: Final = _FENCE + """
return {1, cps, redis.call('HGETALL', KEYS[k0 + 1]), redis.call('HGETALL', KEYS[k0 + 2])}
"""

# KEYS (one slot: the author's partition): member_stats' checkpoint; the author's
# counters, recent threads, posts and deleted posts. ARGV: 1, how many of each.
# Answers whether the author has counters, their last threads and posts (each post then
# its score), deleted ones left out. A name is read as a member's and as a guest's (two
# slots, two calls): the member's lists when they have counters, else the guest's.
ACTIVITY: Final = _FENCE + """
local exists = redis.call('EXISTS', KEYS[k0 + 1])
local count = tonumber(ARGV[2])
local threads = redis.call('ZREVRANGE', KEYS[k0 + 2], 0, count - 1)
local all = redis.call('ZREVRANGE', KEYS[k0 + 3], 0, -1, 'WITHSCORES')
local deleted = {}
for _, post in ipairs(redis.call('ZRANGE', KEYS[k0 + 4], 0, -1)) do
  deleted[post] = true
end
local posts = {}
for i = 1, #all, 2 do
  if #posts < 2 * count and not deleted[all[i]] then
    posts[#posts + 1] = all[i]; posts[#posts + 1] = all[i + 1]
  end
end
return {1, cps, exists, threads, posts}
"""

# KEYS (one slot): held's checkpoint; a sorted set of held ids (all pending, on the
# board's partition; or one author's, on theirs); with all pending, the items (on the
# board's partition too). ARGV: 1, first and last rank (oldest first).
# Answers the count, the ids of the page and, given the items' key, the items; an
# author's page's items are in another partition: the caller fetches them.
HELD: Final = _FENCE + """
local total = redis.call('ZCARD', KEYS[k0 + 1])
local ids = redis.call('ZRANGE', KEYS[k0 + 1], tonumber(ARGV[2]), tonumber(ARGV[3]))
local items = {}
if #KEYS > k0 + 1 and #ids > 0 then items = redis.call('HMGET', KEYS[k0 + 2], unpack(ids)) end
return {1, cps, total, ids, items}
"""

# KEYS (one slot: the thread's partition): thread_page's checkpoint; the post's revisions
# (its versions after each edit). ARGV: 1, how many of the newest revisions.
REVISIONS: Final = _FENCE + """
local count = redis.call('LLEN', KEYS[k0 + 1])
return {1, cps, count, redis.call('LRANGE', KEYS[k0 + 1], -tonumber(ARGV[2]), -1)}
"""

# KEYS (one slot: the thread's partition): thread_page's checkpoint; the thread's likers.
# ARGV: 1, then the members asked about (``{number}:{folded name}``).
LIKED: Final = _FENCE + """
local scores = {}
if #ARGV > 1 then scores = redis.call('ZMSCORE', KEYS[k0 + 1], unpack(ARGV, 2)) end
local liked = {}
for i = 1, #ARGV - 1 do liked[i] = scores[i] and 1 or 0 end
return {1, cps, liked}
"""

# KEYS (one slot: a partition): the checkpoints of the projections whose keys are read;
# then the keys. ARGV: how many checkpoints, then for each key how to read it: 'c' its
# counters (HMGET of an author's threads, posts and reputation), 'a' all of a hash
# (HGETALL), 'f' and a field (HGET), 'z' and a member (ZSCORE). One letter, not the
# command and its arguments: a page fetches dozens, and every argument costs the
# client to send. Answers {1, checkpoints, then each key's reply}.
FETCH: Final = _FENCE + """
local out = {1, cps}
for i = k0 + 1, #KEYS do
  local how = ARGV[i - k0 + 1]
  local kind, arg = string.sub(how, 1, 1), string.sub(how, 2)
  if kind == 'c' then
    out[#out + 1] = redis.call('HMGET', KEYS[i], 'threads', 'posts', 'reputation')
  elseif kind == 'a' then
    out[#out + 1] = redis.call('HGETALL', KEYS[i])
  elseif kind == 'f' then
    out[#out + 1] = redis.call('HGET', KEYS[i], arg)
  elseif kind == 'z' then
    out[#out + 1] = redis.call('ZSCORE', KEYS[i], arg)
  else
    return redis.error_reply('no such fetch: ' .. how)
  end
end
return out
"""

# The scripts a reader calls (REBUILD_PAGE is page_rebuild's).
READS: Final = (THREAD_PAGE, POST, LISTING, FORUMS, ARCHIVE_YEARS, ACTIVITY, HELD,
                REVISIONS, LIKED, FETCH)


class Call(NamedTuple):
    """One script call: the checkpoints it checks and its own keys, all of one slot."""

    script: str
    checkpoints: tuple[str, ...]
    keys: tuple[str, ...]
    args: tuple[Any, ...] = ()

    def all_keys(self) -> list[str]:
        return [*self.checkpoints, *self.keys]

    def argv(self) -> list[Any]:
        return [len(self.checkpoints), *self.args]


class Fetch(NamedTuple):
    """A read of one key: the checkpoint of the key's projection and partition, the key,
    and how ``FETCH`` reads it."""

    checkpoint: str
    key: str
    how: str


def fetch(fetches: list[Fetch]) -> Call:
    """One ``FETCH`` call for fetches of one partition."""
    return Call(FETCH, tuple(dict.fromkeys(f.checkpoint for f in fetches)),
                tuple(f.key for f in fetches), tuple(f.how for f in fetches))


# The calls, by read: ``ns`` the namespace of the projection named.

def thread_page(tp: Namespace, thread_id: int, first: int, last: int) -> Call:
    summary, posts, likes = tp.thread_keys(thread_id)
    return Call(THREAD_PAGE, (tp.checkpoints[thread_partition(thread_id)],),
                (summary, posts, likes), (first, last))


def post(tp: Namespace, thread_id: int, number: int) -> Call:
    return Call(POST, (tp.checkpoints[thread_partition(thread_id)],),
                tp.thread_keys(thread_id), (number,))


def revisions(tp: Namespace, thread_id: int, number: int, shown: int) -> Call:
    return Call(REVISIONS, (tp.checkpoints[thread_partition(thread_id)],),
                (tp.revisions(thread_id, number),), (shown,))


def liked(tp: Namespace, thread_id: int, members: list[str]) -> Call:
    return Call(LIKED, (tp.checkpoints[thread_partition(thread_id)],),
                (tp.likers(thread_id),), tuple(members))


def section_listing(lp: Namespace, slug: str, first: int, last: int) -> Call:
    """thread_list: a section's threads, and its summary."""
    summary, threads = lp.section_keys(slug)
    return Call(LISTING, (lp.checkpoints[named_partition(slug)],), (threads, summary),
                (first, last, "1"))


def archive_listing(ap: Namespace, slug: str, year: int, first: int, last: int) -> Call:
    """archives: a section's threads of a year, and its archive's years."""
    return Call(LISTING, (ap.checkpoints[named_partition(slug)],),
                (ap.archive(slug, year), ap.archive_years(slug)), (first, last, "1"))


def board_listing(ns: Namespace, ranked: str, first: int, last: int) -> Call:
    """A sorted set of the board's partition (unanswered, newest)."""
    return Call(LISTING, (ns.checkpoints[BOARD],), (ranked,), (first, last, "0"))


def forums(lp: Namespace) -> Call:
    return Call(FORUMS, (lp.checkpoints[BOARD],), (lp.sections,))


def archive_years(ap: Namespace, lp: Namespace, slug: str) -> Call:
    partition = named_partition(slug)
    return Call(ARCHIVE_YEARS, (ap.checkpoints[partition], lp.checkpoints[partition]),
                (lp.section(slug), ap.archive_years(slug)))


def activity(ms: Namespace, author: str, count: int) -> Call:
    """``author``: a counter key."""
    return Call(ACTIVITY, (ms.checkpoints[named_partition(author)],),
                (ms.member(author), ms.recent_threads(author), ms.recent_posts(author),
                 ms.recent_deleted(author)), (count,))


def held(hp: Namespace, author_key: str | None, first: int, last: int) -> Call:
    """All held posts (``author_key`` None), or one author's (their items fetched)."""
    if author_key is None:
        return Call(HELD, (hp.checkpoints[BOARD],), (hp.held_pending(), hp.held_items()),
                    (first, last))
    return Call(HELD, (hp.checkpoints[named_partition(author_key)],),
                (hp.held_by(author_key),), (first, last))


# The fetches, by what they read.

def counters(ms: Namespace, author: str) -> Fetch:
    """An author's counters (``author``: a counter key), as a page shows them."""
    return Fetch(ms.checkpoints[named_partition(author)], ms.member(author), "c")


def profile(ms: Namespace, author: str) -> Fetch:
    """An author's whole counters hash (``author``: a counter key)."""
    return Fetch(ms.checkpoints[named_partition(author)], ms.member(author), "a")


def thread_summary(tp: Namespace, thread_id: int) -> Fetch:
    return Fetch(tp.checkpoints[thread_partition(thread_id)], tp.thread(thread_id), "a")


def section_summary(lp: Namespace, slug: str) -> Fetch:
    return Fetch(lp.checkpoints[named_partition(slug)], lp.section(slug), "a")


def guest_name(ms: Namespace, folded: str) -> Fetch:
    """The name a guest last wrote under (``folded``: it case-folded)."""
    return Fetch(ms.checkpoints[BOARD], ms.guest_names, "f" + folded)


def guest_first(ms: Namespace, folded: str) -> Fetch:
    """When a guest first posted (a score)."""
    return Fetch(ms.checkpoints[BOARD], ms.guest_firsts, "z" + folded)


def held_item(hp: Namespace, held_id: str) -> Fetch:
    return Fetch(hp.checkpoints[BOARD], hp.held_items(), "f" + held_id)
