"""The read scripts: each fetches everything a read needs in one round trip, and is given
every key it touches in ``KEYS`` (built in workers/readmodels/keys.py; never in Lua).

Every script's ``KEYS`` start with the pointers of the ``n`` projections it reads
(``{prefix}:active:{projection}``), then their checkpoints, then its own keys; ``ARGV``
starts with ``n`` and the namespaces the caller built those keys for. Answers:

* ``{0}``: a projection has no live namespace (being rebuilt: the reader answers 503);
* ``{2, namespaces}``: a pointer moved since the caller looked (a rebuild swapped it in):
  the caller builds the keys again and retries;
* ``{3, names}``: keys that depend on the data (the counters of a page's authors, the
  summaries of a listing's threads) are not the ones the caller guessed from its last
  read of the same page: these are the right names; the caller retries with them;
* ``{1, checkpoints, ...}``: the data.

Checking the pointers inside the script keeps a read from mixing an old namespace with a
new one, or reading one that was just dropped.
"""

from __future__ import annotations

from typing import Final

_POINTERS: Final = """
local n = tonumber(ARGV[1])
for i = 1, n do
  local active = redis.call('GET', KEYS[i])
  if not active then return {0} end
  if active ~= ARGV[1 + i] then
    local now = {}
    for j = 1, n do now[j] = redis.call('GET', KEYS[j]) or '' end
    return {2, now}
  end
end
local cps = {}
for i = 1, n do cps[i] = redis.call('GET', KEYS[n + i]) or '0' end
local function counters(key)
  local c = redis.call('HMGET', key, 'threads', 'posts', 'reputation')
  return {c[1] or '0', c[2] or '0', c[3] or '0'}
end
"""

# KEYS: pointers and checkpoints of thread_page and member_stats; the thread's summary,
# its posts (JSON or HTML), authors and likes; then the guessed counters of the authors.
# ARGV: 2, the namespaces, first and last index, the counters' key prefix.
THREAD_PAGE: Final = _POINTERS + """
local summary = redis.call('HGETALL', KEYS[5])
if #summary == 0 then return {1, cps, {}} end
local start = tonumber(ARGV[4])
local count = redis.call('LLEN', KEYS[6])
local posts = redis.call('LRANGE', KEYS[6], start, tonumber(ARGV[5]))
local authors = redis.call('LRANGE', KEYS[7], start, tonumber(ARGV[5]))
if #KEYS - 8 ~= #authors then return {3, authors} end
for i = 1, #authors do
  if KEYS[8 + i] ~= ARGV[6] .. authors[i] then return {3, authors} end
end
local numbers = {}
for i = 1, #posts do numbers[i] = tostring(start + i) end
local likes = {}
if #numbers > 0 then likes = redis.call('HMGET', KEYS[8], unpack(numbers)) end
local authored = {}
for i = 1, #posts do
  authored[i] = counters(KEYS[8 + i])
  if not likes[i] then likes[i] = '0' end
end
return {1, cps, summary, count, posts, likes, authored}
"""

# KEYS: pointers and checkpoints of thread_page and member_stats; the thread's posts,
# authors and likes; then the guessed counters of the post's author (none or one).
# ARGV: 2, the namespaces, the post's number, the counters' key prefix.
POST: Final = _POINTERS + """
local number = tonumber(ARGV[4])
local post = redis.call('LINDEX', KEYS[5], number - 1)
if not post then return {1, cps, ''} end
local author = redis.call('LINDEX', KEYS[6], number - 1)
if KEYS[8] ~= ARGV[5] .. author then return {3, {author}} end
local likes = redis.call('HGET', KEYS[7], ARGV[4]) or '0'
return {1, cps, post, likes, counters(KEYS[8])}
"""

# KEYS: pointers and checkpoints of a listing's projection and thread_page; the sorted
# set of the listing; a hash to return whole (a section's summary, an archive's years;
# with ARGV[7] '1', else not read); then the guessed summaries of the listed threads.
# ARGV: 2, the namespaces, first and last rank, the summaries' key prefix, '1' or '0'.
LISTING: Final = _POINTERS + """
local total = redis.call('ZCARD', KEYS[5])
local ids = redis.call('ZREVRANGE', KEYS[5], tonumber(ARGV[4]), tonumber(ARGV[5]))
if #KEYS - 6 ~= #ids then return {3, ids} end
for i = 1, #ids do
  if KEYS[6 + i] ~= ARGV[6] .. ids[i] then return {3, ids} end
end
local summaries = {}
for i = 1, #ids do summaries[i] = redis.call('HGETALL', KEYS[6 + i]) end
local extra = {}
if ARGV[7] == '1' then extra = redis.call('HGETALL', KEYS[6]) end
return {1, cps, total, summaries, extra}
"""

# KEYS: pointer and checkpoint of thread_list; its sorted set of sections; then the
# guessed sections' summaries. ARGV: 1, the namespace, the summaries' key prefix.
FORUMS: Final = _POINTERS + """
local slugs = redis.call('ZRANGE', KEYS[3], 0, -1)
if #KEYS - 3 ~= #slugs then return {3, slugs} end
local out = {}
for i = 1, #slugs do
  if KEYS[3 + i] ~= ARGV[3] .. slugs[i] then return {3, slugs} end
  out[i] = redis.call('HGETALL', KEYS[3 + i])
end
return {1, cps, out}
"""

# KEYS: pointers and checkpoints of archives and thread_list; the section's summary and
# its archive's years. ARGV: 2, the namespaces.
ARCHIVE_YEARS: Final = _POINTERS + """
return {1, cps, redis.call('HGETALL', KEYS[5]), redis.call('HGETALL', KEYS[6])}
"""

# KEYS: pointer and checkpoint of member_stats; the member's counters, the guest's
# counters, the guests' names and first posts. ARGV: 1, the namespace, the folded name.
USER: Final = _POINTERS + """
local m = redis.call('HGETALL', KEYS[3])
if #m > 0 then return {1, cps, m} end
local g = redis.call('HGETALL', KEYS[4])
if #g == 0 then return {1, cps, g} end
return {1, cps, g, redis.call('HGET', KEYS[5], ARGV[3]) or '',
        redis.call('ZSCORE', KEYS[6], ARGV[3]) or ''}
"""

# KEYS: pointers and checkpoints of member_stats and thread_page; the author's member
# counters, recent threads, posts and deleted posts, the guest's the same; then the guessed
# summaries of the threads named. ARGV: 2, the namespaces, how many of each, the
# summaries' prefix. The member's lists when the name is a member's, else the guest's.
ACTIVITY: Final = _POINTERS + """
local base = 6
if redis.call('EXISTS', KEYS[5]) == 0 then base = 10 end
local count = tonumber(ARGV[4])
local threads = redis.call('ZREVRANGE', KEYS[base], 0, count - 1)
local all = redis.call('ZREVRANGE', KEYS[base + 1], 0, -1, 'WITHSCORES')
local deleted = {}
for _, post in ipairs(redis.call('ZRANGE', KEYS[base + 2], 0, -1)) do
  deleted[post] = true
end
local posts = {}
for i = 1, #all, 2 do
  if #posts < 2 * count and not deleted[all[i]] then
    posts[#posts + 1] = all[i]; posts[#posts + 1] = all[i + 1]
  end
end
local ids, named = {}, {}
local function name(id)
  if not named[id] then named[id] = true; ids[#ids + 1] = id end
end
for i = 1, #threads do name(threads[i]) end
for i = 1, #posts, 2 do name(string.match(posts[i], ':(%d+):')) end
if #KEYS - 12 ~= #ids then return {3, ids} end
local summaries = {}
for i = 1, #ids do
  if KEYS[12 + i] ~= ARGV[5] .. ids[i] then return {3, ids} end
  summaries[i] = redis.call('HGETALL', KEYS[12 + i])
end
return {1, cps, threads, posts, summaries}
"""

# KEYS: pointer and checkpoint of held; a sorted set of held ids (all pending, or one
# author's); the items. ARGV: 1, the namespace, first and last rank (oldest first).
HELD: Final = _POINTERS + """
local total = redis.call('ZCARD', KEYS[3])
local ids = redis.call('ZRANGE', KEYS[3], tonumber(ARGV[3]), tonumber(ARGV[4]))
local items = {}
if #ids > 0 then items = redis.call('HMGET', KEYS[4], unpack(ids)) end
return {1, cps, total, items}
"""

# KEYS: pointer and checkpoint of thread_page; the thread's posts and the post's
# revisions. ARGV: 1, the namespace, the post's number, how many of the newest revisions.
REVISIONS: Final = _POINTERS + """
local post = redis.call('LINDEX', KEYS[3], tonumber(ARGV[3]) - 1)
if not post then return {1, cps, ''} end
local count = redis.call('LLEN', KEYS[4])
return {1, cps, post, count, redis.call('LRANGE', KEYS[4], -tonumber(ARGV[4]), -1)}
"""

# KEYS: pointer and checkpoint of thread_page; the thread's likers.
# ARGV: 1, the namespace, then the members asked about (``{number}:{folded name}``).
LIKED: Final = _POINTERS + """
local scores = {}
if #ARGV > 2 then scores = redis.call('ZMSCORE', KEYS[3], unpack(ARGV, 3)) end
local liked = {}
for i = 1, #ARGV - 2 do liked[i] = scores[i] and 1 or 0 end
return {1, cps, liked}
"""
