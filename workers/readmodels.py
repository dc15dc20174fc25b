"""The read contract shared by the workers (who write it) and the service (who reads it).

Redis keys are built here and nowhere else. Every projection writes under its own
namespace, ``{prefix}:{projection}:{ns}``; ``{prefix}:active:{projection}`` names the
namespace readers use. A rebuild fills a fresh namespace and then moves that pointer, so
readers switch atomically and never see a half-built view. Reads run as Lua scripts that
resolve the pointers and fetch the data in one round trip: a page read can never mix an old
namespace with a new one, nor read one that was just dropped.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from fractions import Fraction
from typing import Final, TypeVar

import msgspec

PROJECTION_NAMES: Final = ("thread_page", "thread_list", "unanswered", "archives",
                           "member_stats", "held")


class Keys:
    """Keys outside any namespace: pointers, locks, build state."""

    def __init__(self, prefix: str = "forum") -> None:
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

    def namespace(self, projection: str, ns: str) -> Namespace:
        return Namespace(f"{self.prefix}:{projection}:{ns}")

    def all_pattern(self) -> str:
        return f"{self.prefix}:*"


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

    __slots__ = ("_folded", "_guest_counters", "_guest_members", "_member_counters",
                 "_member_members", "_sections", "_threads", "base", "checkpoint",
                 "guest_firsts", "guest_names", "sections", "unanswered")

    def __init__(self, base: str) -> None:
        self.base = base
        self.checkpoint = f"{base}:checkpoint"
        # thread_list: sorted set of the sections' slugs
        self.sections = f"{base}:sections"
        # unanswered: sorted set of thread ids
        self.unanswered = f"{base}:unanswered"
        # member_stats: hash of a guest's folded name -> the name as last written
        self.guest_names = f"{base}:guests:names"
        # member_stats: sorted set of guests' folded names, scored by their first post
        self.guest_firsts = f"{base}:guests:first"
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
        """The thread's summary, posts and authors keys."""
        keys = self._threads.get(thread_id)
        if keys is None:
            summary = f"{self.base}:t:{thread_id}"
            keys = _keep(self._threads, thread_id,
                         (summary, f"{summary}:posts", f"{summary}:authors"))
        return keys

    def thread(self, thread_id: int) -> str:
        return self.thread_keys(thread_id)[0]

    def posts(self, thread_id: int) -> str:
        return self.thread_keys(thread_id)[1]

    def authors(self, thread_id: int) -> str:
        return self.thread_keys(thread_id)[2]

    def likes(self, thread_id: int) -> str:
        return f"{self.base}:t:{thread_id}:likes"

    # thread_list
    def section_keys(self, slug: str) -> tuple[str, str]:
        """The section's summary and its threads by last bump."""
        keys = self._sections.get(slug)
        if keys is None:
            summary = f"{self.base}:s:{slug}"
            keys = _keep(self._sections, slug, (summary, f"{summary}:threads"))
        return keys

    def section(self, slug: str) -> str:
        return self.section_keys(slug)[0]

    def section_threads(self, slug: str) -> str:
        return self.section_keys(slug)[1]

    # archives
    def archive(self, slug: str, year: int) -> str:
        return f"{self.base}:a:{slug}:{year}"

    def archive_years(self, slug: str) -> str:
        return f"{self.base}:a:{slug}:years"

    # member_stats
    def member(self, counter_key: str) -> str:
        return f"{self.base}:u:{counter_key}"

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


_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND: Final = timedelta(microseconds=1)
_encode_json: Final = msgspec.json.Encoder().encode


def score(moment: datetime) -> float:
    """Sorted-set score of a time: milliseconds since the epoch, to the microsecond (the
    float nearest the exact value: read from its decimal, as Redis reads ``score_text``;
    compiled, ``micros / 1000`` would round twice past 2**53 microseconds)."""
    return float(score_text(moment))


_EPOCH_ORDINAL: Final = _EPOCH.toordinal()


def score_text(moment: datetime) -> str:
    """A time's score as Redis is sent it: the exact decimal ``milliseconds.micro``, which
    Redis (strtod) reads as the float nearest to it. Several times cheaper than timedelta
    arithmetic and ``repr`` of a float, which cost more than the rest of a ZADD."""
    if moment.tzinfo is not UTC:
        moment = (moment.replace(tzinfo=UTC) if moment.tzinfo is None
                  else moment.astimezone(UTC))
    seconds = ((moment.toordinal() - _EPOCH_ORDINAL) * 86400 + moment.hour * 3600
               + moment.minute * 60 + moment.second)
    micros = seconds * 1_000_000 + moment.microsecond
    sign = ""
    if micros < 0:
        sign, micros = "-", -micros
    fraction = str(micros % 1000)
    return f"{sign}{micros // 1000}.{'000'[len(fraction):]}{fraction}"


def moment_of(score_text: bytes | str) -> datetime:
    """The time a ``score`` came from, as Redis gives the score back. Exact: a score is
    the float nearest a whole number of microseconds over 1000, and Redis prints it
    round-trip; multiplied back exactly (a float product would round, by up to half a
    microsecond after 2100), the nearest whole number is those microseconds (until 2200,
    past which a float no longer tells microseconds apart at this scale)."""
    return _EPOCH + round(Fraction(float(score_text)) * 1000) * _MICROSECOND


def rfc3339(moment: datetime) -> str:
    """UTC to the millisecond, ``2011-03-04T05:06:07.123Z``."""
    if moment.tzinfo is not UTC:  # stored times are UTC; naive ones never the machine's
        moment = (moment.replace(tzinfo=UTC) if moment.tzinfo is None
                  else moment.astimezone(UTC))
    # msgspec writes "2011-03-04T05:06:07.123456Z", or "...07Z" on a whole second, many
    # times faster than isoformat().
    raw = _encode_json(moment).decode()
    return raw[1:24] + "Z" if len(raw) == 29 else raw[1:20] + ".000Z"


class StoredQuote(msgspec.Struct):
    post_id: int
    number: int
    author: str


# Read scripts. Each answers {0} when a read model it needs has no active namespace
# (being rebuilt: readers answer 503), else {1, checkpoints…, data…}.
_RESOLVE = """
local prefix = ARGV[1]
local function ns(projection)
  local active = redis.call('GET', prefix .. ':active:' .. projection)
  if not active then return nil end
  return prefix .. ':' .. projection .. ':' .. active
end
local function cp(base)
  return redis.call('GET', base .. ':checkpoint') or '0'
end
"""

THREAD_PAGE = _RESOLVE + """
local tp = ns('thread_page')
local ms = ns('member_stats')
if not tp or not ms then return {0} end
local tid, start, stop = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local t = tp .. ':t:' .. tid
local summary = redis.call('HGETALL', t)
if #summary == 0 then return {1, cp(tp), cp(ms), {}} end
local count = redis.call('LLEN', t .. ':posts')
local posts = redis.call('LRANGE', t .. ':posts', start, stop)
local authors = redis.call('LRANGE', t .. ':authors', start, stop)
local numbers = {}
for i = 1, #posts do numbers[i] = tostring(start + i) end
local likes = {}
if #numbers > 0 then likes = redis.call('HMGET', t .. ':likes', unpack(numbers)) end
local counters = {}
for i = 1, #authors do
  local c = redis.call('HMGET', ms .. ':u:' .. authors[i], 'threads', 'posts', 'reputation')
  counters[i] = (c[1] or '0') .. ',' .. (c[2] or '0') .. ',' .. (c[3] or '0')
  if likes[i] == false then likes[i] = '0' end
end
return {1, cp(tp), cp(ms), summary, count, posts, authors, likes, counters}
"""

# ARGV: prefix, thread id, post number (where the post is comes from the log's own index)
POST = _RESOLVE + """
local tp = ns('thread_page')
local ms = ns('member_stats')
if not tp or not ms then return {0} end
local t = tp .. ':t:' .. ARGV[2]
local number = tonumber(ARGV[3])
local post = redis.call('LINDEX', t .. ':posts', number - 1)
if not post then return {1, cp(tp), cp(ms), ''} end
local author = redis.call('LINDEX', t .. ':authors', number - 1)
local likes = redis.call('HGET', t .. ':likes', ARGV[3]) or '0'
local c = redis.call('HMGET', ms .. ':u:' .. author, 'threads', 'posts', 'reputation')
local counters = (c[1] or '0') .. ',' .. (c[2] or '0') .. ',' .. (c[3] or '0')
return {1, cp(tp), cp(ms), post, number, likes, counters}
"""

# ARGV: prefix, listing projection, listing key suffix, start, stop
LISTING = _RESOLVE + """
local lp = ns(ARGV[2])
local tp = ns('thread_page')
if not lp or not tp then return {0} end
local key = lp .. ARGV[3]
local total = redis.call('ZCARD', key)
local ids = redis.call('ZREVRANGE', key, tonumber(ARGV[4]), tonumber(ARGV[5]))
local summaries = {}
for i = 1, #ids do summaries[i] = redis.call('HGETALL', tp .. ':t:' .. ids[i]) end
local extra = {}
if ARGV[6] then extra = redis.call('HGETALL', lp .. ARGV[6]) end
return {1, cp(lp), cp(tp), total, summaries, extra}
"""

FORUMS = _RESOLVE + """
local lp = ns('thread_list')
if not lp then return {0} end
local slugs = redis.call('ZRANGE', lp .. ':sections', 0, -1)
local out = {}
for i = 1, #slugs do out[i] = redis.call('HGETALL', lp .. ':s:' .. slugs[i]) end
return {1, cp(lp), out}
"""

ARCHIVE_YEARS = _RESOLVE + """
local ap = ns('archives')
local lp = ns('thread_list')
if not ap or not lp then return {0} end
local section = redis.call('HGETALL', lp .. ':s:' .. ARGV[2])
local years = redis.call('HGETALL', ap .. ':a:' .. ARGV[2] .. ':years')
return {1, cp(ap), cp(lp), section, years}
"""

USER = _RESOLVE + """
local ms = ns('member_stats')
if not ms then return {0} end
local m = redis.call('HGETALL', ms .. ':u:m:' .. ARGV[2])
if #m > 0 then return {1, cp(ms), m} end
local g = redis.call('HGETALL', ms .. ':u:g:' .. ARGV[2])
if #g == 0 then return {1, cp(ms), g} end
return {1, cp(ms), g, redis.call('HGET', ms .. ':guests:names', ARGV[2]) or '',
        redis.call('ZSCORE', ms .. ':guests:first', ARGV[2]) or ''}
"""

# ARGV: prefix, held sorted-set suffix (":held:pending" or ":held:by:<author key>"),
# start, stop (workers/projections/held.py)
HELD = _RESOLVE + """
local hp = ns('held')
if not hp then return {0} end
local key = hp .. ARGV[2]
local total = redis.call('ZCARD', key)
local ids = redis.call('ZRANGE', key, tonumber(ARGV[3]), tonumber(ARGV[4]))
local items = {}
if #ids > 0 then items = redis.call('HMGET', hp .. ':held:items', unpack(ids)) end
return {1, cp(hp), total, items}
"""

CHECKPOINTS = _RESOLVE + """
local out = {}
for i = 2, #ARGV do
  local base = ns(ARGV[i])
  if base then out[i - 1] = cp(base) else out[i - 1] = false end
end
return out
"""
