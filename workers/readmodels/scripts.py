"""The read scripts: each fetches everything a read needs in one round trip, and is given
every key it touches in ``KEYS`` (built in workers/readmodels/keys.py; never in Lua).

Every script's ``KEYS`` start with the pointers of the ``n`` projections it reads
(``{prefix}:active:{projection}``), then their checkpoints (each projection's partitions'
in order), then its own keys; ``ARGV`` starts with ``n`` and the namespaces the caller
built those keys for. Answers:

* ``{0}``: a projection has no live namespace (being rebuilt: the reader answers 503);
* ``{2, namespaces}``: a pointer moved since the caller looked (a rebuild swapped it in):
  the caller builds the keys again and retries;
* ``{3, names}``: keys that depend on the data (the counters of a page's authors, the
  summaries of a listing's threads) are not the ones the caller guessed from its last
  read of the same page: these are the right names; the caller retries with them;
* ``{4}``: a thread page is missing or partial (Redis evicted its keys, or some of them:
  docs/design.md, "Thread pages as a cache"): the caller rebuilds it and retries;
* ``{1, checkpoints, ...}``: the data; ``checkpoints`` holds two numbers per projection:
  its lowest partition's checkpoint (how far the read reflects the log) and the sum of
  its partitions' (it moves whenever any partition does: what a cached answer's tag is
  made of).

Checking the pointers inside the script keeps a read from mixing an old namespace with a
new one, or reading one that was just dropped.
"""

from __future__ import annotations

from typing import Final

from workers.readmodels import keys as _keys

_POINTERS: Final = """
local n = tonumber(ARGV[1])
local parts = """ + str(_keys.PARTITIONS) + """
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
for i = 1, n do
  local at = redis.call('MGET', unpack(KEYS, n + (i - 1) * parts + 1, n + i * parts))
  local low, sum = nil, 0
  for j = 1, parts do
    local c = tonumber(at[j] or '0')
    sum = sum + c
    if not low or c < low then low = c end
  end
  cps[2 * i - 1] = string.format('%d', low)
  cps[2 * i] = string.format('%d', sum)
end
local k0 = n + n * parts
local function ends(key, tail)
  return key ~= nil and string.sub(key, -#tail) == tail
end
local function counters(key)
  local c = redis.call('HMGET', key, 'threads', 'posts', 'reputation')
  return {c[1] or '0', c[2] or '0', c[3] or '0'}
end
"""

# Whether a thread's page is whole: as many posts as its summary counts, and the likes'
# mark. ``whole(summary, posts, likes)``: the number of posts, or nil. ``author(post)``: the
# counter key a stored post starts with (workers/readmodels/stored_posts.py: its length,
# ':', the key, then the post's JSON).
WHOLE: Final = """
local function whole(summary, posts, likes)
  local total = tonumber(redis.call('HGET', summary, 'posts') or '0')
  if redis.call('LLEN', posts) ~= total
      or redis.call('HEXISTS', likes, '""" + _keys.PAGE_MARK + """') == 0 then
    return nil
  end
  return total
end
local function author(post)
  local colon = string.find(post, ':', 1, true)
  return string.sub(post, colon + 1, colon + tonumber(string.sub(post, 1, colon - 1)))
end
"""

# KEYS: pointers and checkpoints of thread_page and member_stats; the thread's summary,
# its posts and likes; then the guessed counters of the posts' authors.
# ARGV: 2, the namespaces, first and last index, the counters' key prefix.
THREAD_PAGE: Final = _POINTERS + WHOLE + """
local summary = redis.call('HGETALL', KEYS[k0 + 1])
if #summary == 0 then return {1, cps, {}} end
local start = tonumber(ARGV[4])
local count = whole(KEYS[k0 + 1], KEYS[k0 + 2], KEYS[k0 + 3])
if not count then return {4} end
local posts = redis.call('LRANGE', KEYS[k0 + 2], start, tonumber(ARGV[5]))
local authors = {}
for i = 1, #posts do authors[i] = author(posts[i]) end
if #KEYS - k0 - 3 ~= #authors then return {3, authors} end
for i = 1, #authors do
  if not ends(KEYS[k0 + 3 + i], ARGV[6] .. authors[i]) then return {3, authors} end
end
local numbers = {}
for i = 1, #posts do numbers[i] = tostring(start + i) end
local likes = {}
if #numbers > 0 then likes = redis.call('HMGET', KEYS[k0 + 3], unpack(numbers)) end
local authored = {}
for i = 1, #posts do
  authored[i] = counters(KEYS[k0 + 3 + i])
  if not likes[i] then likes[i] = '0' end
end
return {1, cps, summary, count, posts, likes, authored}
"""

# KEYS: pointers and checkpoints of thread_page and member_stats; the thread's summary,
# posts and likes; then the guessed counters of the post's author (none or one).
# ARGV: 2, the namespaces, the post's number, the counters' key prefix.
POST: Final = _POINTERS + WHOLE + """
if redis.call('EXISTS', KEYS[k0 + 1]) == 0 then return {1, cps, ''} end
if not whole(KEYS[k0 + 1], KEYS[k0 + 2], KEYS[k0 + 3]) then return {4} end
local number = tonumber(ARGV[4])
local post = redis.call('LINDEX', KEYS[k0 + 2], number - 1)
if not post then return {1, cps, ''} end
local by = author(post)
if not ends(KEYS[k0 + 4], ARGV[5] .. by) then return {3, {by}} end
local likes = redis.call('HGET', KEYS[k0 + 3], ARGV[4]) or '0'
return {1, cps, post, likes, counters(KEYS[k0 + 4])}
"""

# Writes a thread's page rebuilt from its events (workers/page_rebuild.py), if it is still
# missing or partial and the projection's checkpoint is where the fold holds: at or past
# the position the fold read up to, and below the thread's next event (or the first
# position the rebuild could not have seen). So the projector, which goes on from its
# checkpoint, neither applies an event twice nor skips one (docs/design.md, "Thread
# pages as a cache").
# KEYS: thread_page's pointer and checkpoint, the thread's summary, posts and likes.
# ARGV: the namespace, the lowest and (excluded) highest checkpoint the page holds for,
# the pages' TTL, then commands: each as its argument count and its arguments.
# Answers {1}: written; {0}: not needed (whole already, or no such thread); {2, pointer,
# checkpoint}: the pointer moved or the checkpoint is out of range: fold again.
REBUILD_PAGE: Final = WHOLE + """
local active = redis.call('GET', KEYS[1]) or ''
local checkpoint = redis.call('GET', KEYS[2]) or '0'
local at = tonumber(checkpoint)
if active ~= ARGV[1] or at < tonumber(ARGV[2]) or at >= tonumber(ARGV[3]) then
  return {2, active, checkpoint}
end
if redis.call('EXISTS', KEYS[3]) == 0 then return {0} end
if whole(KEYS[3], KEYS[4], KEYS[5]) then return {0} end
redis.call('DEL', KEYS[4], KEYS[5])
local i = 5
while i <= #ARGV do
  local argc = tonumber(ARGV[i])
  local target = ARGV[i + 2]
  if target ~= KEYS[4] and target ~= KEYS[5] then
    return redis.error_reply('a rebuilt page writes its own keys only')
  end
  redis.call(unpack(ARGV, i + 1, i + argc))
  i = i + argc + 1
end
for k = 4, 5 do redis.call('EXPIRE', KEYS[k], ARGV[4]) end
return {1}
"""

# KEYS: pointers and checkpoints of a listing's projection and thread_page; the sorted
# set of the listing; a hash to return whole (a section's summary, an archive's years;
# with ARGV[7] '1', else not read); then the guessed summaries of the listed threads.
# ARGV: 2, the namespaces, first and last rank, the summaries' key prefix, '1' or '0'.
LISTING: Final = _POINTERS + """
local total = redis.call('ZCARD', KEYS[k0 + 1])
local ids = redis.call('ZREVRANGE', KEYS[k0 + 1], tonumber(ARGV[4]), tonumber(ARGV[5]))
if #KEYS - k0 - 2 ~= #ids then return {3, ids} end
for i = 1, #ids do
  if not ends(KEYS[k0 + 2 + i], ARGV[6] .. ids[i]) then return {3, ids} end
end
local summaries = {}
for i = 1, #ids do summaries[i] = redis.call('HGETALL', KEYS[k0 + 2 + i]) end
local extra = {}
if ARGV[7] == '1' then extra = redis.call('HGETALL', KEYS[k0 + 2]) end
return {1, cps, total, summaries, extra}
"""

# KEYS: pointer and checkpoint of thread_list; its sorted set of sections; then the
# guessed sections' summaries. ARGV: 1, the namespace, the summaries' key prefix.
FORUMS: Final = _POINTERS + """
local slugs = redis.call('ZRANGE', KEYS[k0 + 1], 0, -1)
if #KEYS - k0 - 1 ~= #slugs then return {3, slugs} end
local out = {}
for i = 1, #slugs do
  if not ends(KEYS[k0 + 1 + i], ARGV[3] .. slugs[i]) then return {3, slugs} end
  out[i] = redis.call('HGETALL', KEYS[k0 + 1 + i])
end
return {1, cps, out}
"""

# KEYS: pointers and checkpoints of archives and thread_list; the section's summary and
# its archive's years. ARGV: 2, the namespaces.
ARCHIVE_YEARS: Final = _POINTERS + """
return {1, cps, redis.call('HGETALL', KEYS[k0 + 1]), redis.call('HGETALL', KEYS[k0 + 2])}
"""

# KEYS: pointer and checkpoint of member_stats; the member's counters, the guest's
# counters, the guests' names and first posts. ARGV: 1, the namespace, the folded name.
USER: Final = _POINTERS + """
local m = redis.call('HGETALL', KEYS[k0 + 1])
if #m > 0 then return {1, cps, m} end
local g = redis.call('HGETALL', KEYS[k0 + 2])
if #g == 0 then return {1, cps, g} end
return {1, cps, g, redis.call('HGET', KEYS[k0 + 3], ARGV[3]) or '',
        redis.call('ZSCORE', KEYS[k0 + 4], ARGV[3]) or ''}
"""

# KEYS: pointers and checkpoints of member_stats and thread_page; the author's member
# counters, recent threads, posts and deleted posts, the guest's the same; then the guessed
# summaries of the threads named. ARGV: 2, the namespaces, how many of each, the
# summaries' prefix. The member's lists when the name is a member's, else the guest's.
ACTIVITY: Final = _POINTERS + """
local base = k0 + 2
if redis.call('EXISTS', KEYS[k0 + 1]) == 0 then base = k0 + 6 end
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
if #KEYS - k0 - 8 ~= #ids then return {3, ids} end
local summaries = {}
for i = 1, #ids do
  if not ends(KEYS[k0 + 8 + i], ARGV[5] .. ids[i]) then return {3, ids} end
  summaries[i] = redis.call('HGETALL', KEYS[k0 + 8 + i])
end
return {1, cps, threads, posts, summaries}
"""

# KEYS: pointer and checkpoint of held; a sorted set of held ids (all pending, or one
# author's); the items. ARGV: 1, the namespace, first and last rank (oldest first).
HELD: Final = _POINTERS + """
local total = redis.call('ZCARD', KEYS[k0 + 1])
local ids = redis.call('ZRANGE', KEYS[k0 + 1], tonumber(ARGV[3]), tonumber(ARGV[4]))
local items = {}
if #ids > 0 then items = redis.call('HMGET', KEYS[k0 + 2], unpack(ids)) end
return {1, cps, total, items}
"""

# KEYS: pointer and checkpoint of thread_page; the post's revisions (its versions after
# each edit). ARGV: 1, the namespace, how many of the newest revisions.
REVISIONS: Final = _POINTERS + """
local count = redis.call('LLEN', KEYS[k0 + 1])
return {1, cps, count, redis.call('LRANGE', KEYS[k0 + 1], -tonumber(ARGV[3]), -1)}
"""

# KEYS: pointer and checkpoint of thread_page; the thread's likers.
# ARGV: 1, the namespace, then the members asked about (``{number}:{folded name}``).
LIKED: Final = _POINTERS + """
local scores = {}
if #ARGV > 2 then scores = redis.call('ZMSCORE', KEYS[k0 + 1], unpack(ARGV, 3)) end
local liked = {}
for i = 1, #ARGV - 2 do liked[i] = scores[i] and 1 or 0 end
return {1, cps, liked}
"""
