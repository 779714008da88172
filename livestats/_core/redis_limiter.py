"""A limiter shared by every process and host that uses one Redis: the same slots, in Redis.

:class:`~livestats.LocalLimiter` keeps a quota's N slots in one process. When a
collection job runs as several workers, or several services use one account,
each process would spend the whole quota on its own. :class:`RedisLimiter` keeps
the slots in Redis instead, with the same rules:

- a request holds a slot from before it is sent until its outcome is known; the
  slot is free again one period after that, by the **Redis server's clock**
  (``TIME``), so hosts whose clocks disagree still share one window;
- a slot whose holder vanished (a crashed process) frees itself ``lease`` seconds
  plus one period after it was taken;
- waiters are served in one line across processes: each takes a ticket, ordered
  by the server time it first asked, an interactive one's counted
  :data:`~livestats._core.sharing.HEAD_START` periods earlier (the tickets of each
  priority are a sorted set of their own, so finding the first of each is cheap).
  A ticket not renewed for ``ticket_ttl`` (its process died) is dropped.

The rules of :mod:`livestats._core.sharing`, as the scripts keep them (their Lua
copies of its functions are ``_RULES``, tested against the Python):

- *reserve*: an interactive ask writes the server time to ``ilast``; while it is
  less than ``interactive_window`` old, a bulk ticket is granted only while fewer
  than ``limit - reserve(limit)`` slots are in flight or cooling, and it reserves a
  cooling slot only within that limit too (so the slots that free first stay for
  interactive callers). A bulk ticket that may not have a slot does not hold up an
  interactive one behind it; if it stands ahead of them in line, it takes one grant
  in :data:`~livestats._core.sharing.AGED_SHARE` (the count is ``meta``'s
  ``passed``), so bulk work moves even while interactive calls fill the window;
- *deadlines*: a caller with ``max_wait`` asks for an estimate, and the script
  tells it when its slot is likely (the cooling slot it would get once every ticket
  ahead was served; past the cooling ones, a period from now for each ``limit``
  tickets further back, since a slot serves one ticket a period at most). A caller
  whose estimate, reserved slot, pause or blackout lies past its deadline is told
  at once and hands its ticket or grant back; ``max_wait=0`` leaves the line in the
  very script that found no free slot. A reserved grant handed back unused cools
  until the moment it was reserved for, as the slot it came from would have;
- *learned limits*: ``refused`` lowers the limit in ``learn`` (low, since, recover)
  in one script, at most once a period, and every step grants by the effective
  limit of :func:`~livestats._core.sharing.effective_limit`, computed from the
  server's clock; a limit grown back to the quota is forgotten;
- *quotas set at run time*: ``set_quota`` writes ``quota`` (limit, period and burst,
  or ``off``), which every step uses instead of the caller's, forgets ``learn``,
  and nudges every process with a ticket in line, so its waiters are served by the
  new quota after one more trip. Every reply carries the quota in force, so
  :meth:`RedisLimiter.effective_quota` answers without a trip; a key that is off
  costs no trip at all (the limiter asks again at most once a second while it is
  used, to see a quota set elsewhere).

How it stays cheap at fleet scale. Every exchange with Redis is one Lua script
(``_STEP``) that does everything a process has to say about one quota key at once:
the slots it released, the tickets it waits with, the tickets it gave up, and, in
the same atomic step, hands every slot that can be handed out to the waiters at
the head of the line, in order. A slot that is still cooling (released, free at a
known server time) is *reserved*: the waiter is told "yours, from T on" and sleeps
until then without asking again. Waiters of other processes learn of their grants
through a list per process (``RPUSH`` by the script, ``BLPOP`` by the process), so
a release wakes exactly the next waiter and nobody re-polls. In each process one
task per quota key (the *pump*) talks to Redis for all of that key's callers, and
a release is told to Redis together with the next acquire (a worker that releases
and acquires again costs one trip); a slot's free time is fixed when it is
released, so telling Redis a few milliseconds later changes nothing. (One thing a
reservation does not do: a pause that begins after a slot was reserved does not take
it back; it is at most one period plus an unanswered request's hold ahead.)

What it survives. Callers never await redis-py themselves: they wait on futures
the pump resolves, and every Redis call runs in a task of its own that is
abandoned, never awaited, past ``redis_timeout``; so a cancelled caller returns at
once whatever redis-py does with the cancellation, and a Redis that accepts
connections but never answers costs one timeout. Then, per fault:

- *a script that timed out but runs later* (a frozen Redis resumes) carries a
  deadline in server time (the client's estimate, never later than the moment it
  gave up): run late, it grants nothing to its caller. Grant ids are the tickets
  themselves, so asking again with a ticket returns the grant it already has, and
  a ticket its waiter gave up is handed back (a *leave*) only after any script that
  could still grant it has passed its deadline: no slot is ever stranded;
- *a release that failed* stays pending and is sent again, with the free time it
  had (a slot is never held longer than its release asked, nor freed earlier);
- *Redis lost its state* (restarted without its data, restarted from an older
  snapshot, failed over to a replica, flushed): each quota key has a marker
  (``meta``: the server's ``run_id``). A marker of another server run, or a caller
  that saw this key under an earlier run (or under this run, and finds the marker
  gone), means grants made before the loss may still be in flight or cooling:
  nothing is granted for one period plus ``attempt_timeout``. A marker missing on a
  server younger than that is ambiguous (a fresh server, or a restarted one whose
  survivors have not called yet): nothing is granted for a short grace while
  processes that held slots (they keep listening while they do, and notice the
  restart) report in. Releases of slots granted before the loss are counted again;
- *Redis unreachable or failing* (down, frozen, out of memory): callers wait for it
  up to ``outage_timeout`` and then get :class:`~livestats.LimiterUnavailableError`
  (which ``dooms_batch``: a bulk call stops taking items). ``fallback="local"``
  instead paces at once from this process's own record of its slots (every slot it
  holds or is cooling, whoever granted it), so the process alone never exceeds the
  quota, before, during or after the outage, and slots spent locally are written
  into Redis when it is back, so the group sees them too.

Memory stays bounded: a quota key holds at most N slots, one ticket per waiter, a
grant record per slot handed out, and one list per waiting process; every key
expires once unused. The settings outlive the traffic: ``ilast`` lives the
interactive window (two periods, a minute at least); a learned limit until it has
grown back (one that never grows back, and a quota set at run time: a day after the
key was last used; they are also lost with Redis's data, and the callers' quotas
apply again).

Keys, for a quota key ``Q`` (``tencent:1400000000:get_room_stats``, say) and the
default prefix::

    livestats:{Q}:slots    sorted set: released slot -> when it is free (server µs)
    livestats:{Q}:busy     sorted set: slot in flight -> when it counts as abandoned
    livestats:{Q}:queue:i  sorted set: interactive ticket -> when it asked, less a head start
    livestats:{Q}:queue:b  sorted set: bulk ticket -> when it first asked
    livestats:{Q}:alive    sorted set: waiting ticket -> when it lapses
    livestats:{Q}:grant    hash: ticket -> server µs from which its slot may be used
    livestats:{Q}:meta     hash: the server run that holds this state, blocked-until, passed
    livestats:{Q}:pause    string: server µs until which nothing is handed out
    livestats:{Q}:ilast    string: server µs of the last interactive ask
    livestats:{Q}:learn    hash: the learned limit: low, since (server µs), recover
    livestats:{Q}:quota    string: the quota set at run time, "limit period burst" or "off"
    livestats:{Q}:inbox:P  list: grants for the waiters of process P
    livestats:{Q}:seen:P   string: process P was heard from lately

A ticket is ``P.i…`` or ``P.b…``: the process that waits with it, and its priority.

The braces are a Redis Cluster hash tag: one quota's keys live on one node.
Needs Redis 6.2 or later (or Valkey).
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import itertools
import logging
import math
import random
import secrets
from collections import deque
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal

import attrs
from yarl import URL

from livestats._core.clock import Clock
from livestats._core.limiter import Paused, Permit
from livestats._core.loops import close_at_loop_shutdown
from livestats._core.quota import Quota
from livestats._core.sharing import (
    AGED_SHARE,
    HEAD_START,
    Priority,
    WaitExceeded,
    decreased,
    interactive_window,
    reserve,
)
from livestats._core.validate import check_seconds, check_text, shown
from livestats.errors import ConfigurationError, LimiterUnavailableError

if TYPE_CHECKING:
    from redis.commands.core import AsyncScript

__all__ = ["RedisLimiter"]

logger = logging.getLogger("livestats")

_US = 1_000_000
_OK, _PAUSED, _LOST, _OFF = 0, 2, 3, 4
#: The Redis keys the step script works on, in its KEYS order.
_STEP_KEYS = (
    "slots",
    "busy",
    "queue:i",
    "queue:b",
    "alive",
    "meta",
    "grant",
    "pause",
    "quota",
    "learn",
    "ilast",
)
#: How long a quota set at run time, and a learned limit that never grows back, are
#: kept in Redis after the key was last used.
_SETTING_TTL = 24 * 3600.0
#: A process that knows its key is not paced asks Redis again at most this often (while
#: the key is used), so a quota set by another process reaches it within that time.
_RECHECK = 1.0
#: The line of a key ``set_quota`` met before any acquire (the next acquire says its quota).
_UNSET = Quota(1, 1.0)
#: How long an ambiguous loss (a marker missing on a young server) blocks grants,
#: while processes that held slots report in (they retry every _MAX_BACKOFF at most).
_GRACE = 0.5
_MIN_BACKOFF, _MAX_BACKOFF = 0.02, 0.2
#: A release is told to Redis this long after it happened at the latest (sooner when
#: the next acquire of the key goes out): its free time is fixed, so the wait costs nothing.
_FLUSH_DELAY = 0.005
#: Server-clock readings kept to bound the server's time, and the margin added to the
#: bound (more than two clocks' drift over that window).
_SAMPLE_WINDOW, _CLOCK_MARGIN = 5.0, 0.0005
#: Entries of each kind one script takes at most (the rest go in the next one).
_BATCH = 1000
#: How long a cancelled caller waits, at most, for Redis to confirm it left the line.
_LEAVE_WAIT = 1.0

# The rules of livestats._core.sharing, in Lua, for the scripts below (times in server
# microseconds). tests/test_redis_sharing.py checks them against the Python ones.
_RULES = """
local HEAD_START = 3
local function reserve(limit) return math.floor(limit / 10) end
local function window(period) return math.max(2 * period, 60000000) end
local function step(limit) return math.max(1, math.ceil(limit * 0.04)) end
local function decreased(current) return math.max(1, math.floor(current * 0.7)) end
local function effective(configured, period, low, since, recover, now)
  if not low then return configured end
  if not recover then return math.min(configured, low) end
  local quiet = math.max(0, math.floor((now - since) / period))
  return math.min(configured, low + quiet * step(configured))
end
-- The quota in force: the one set at run time (KEYS quota: 'off' or 'limit period burst'),
-- else the caller's. Returns off, limit, period, burst.
local function configured(key, limit, period, burst)
  local set = redis.call('GET', key)
  if not set then return false, limit, period, burst end
  if set == 'off' then return true, limit, period, burst end
  local l, p, b = string.match(set, '^(%d+) (%d+) (%d+)$')
  return false, tonumber(l), tonumber(p), tonumber(b)
end
-- Tell every process with a ticket in these lines to ask again.
local function nudge(lines, inbox, ttl)
  local told = {}
  for _, line in ipairs(lines) do
    for _, ticket in ipairs(redis.call('ZRANGE', line, 0, 999)) do
      local proc = string.match(ticket, '^(.-)%.')
      if proc and not told[proc] then
        told[proc] = true
        redis.call('RPUSH', inbox .. proc, 'w')
        redis.call('PEXPIRE', inbox .. proc, math.ceil(ttl / 1000) + 1000)
      end
    end
  end
end
"""

# KEYS: slots, busy, queue:i, queue:b, alive, meta, grant, pause, quota, learn, ilast.
# ARGV: limit, period, burst (0: none), lease, ttl, attempt timeout, grace, deadline (0:
#   none), me, inbox prefix, known run ('' if none), seen prefix, seen ttl (ms), setting
#   ttl (ms), the longest period this caller's slots may cool, AGED_SHARE; then n
#   releases (token, hold, sent); n adopts (token, hold or -1 for in flight); n leaves
#   (ticket); n asks (ticket, want: 0, 1 for an estimate, 2 for "only if one is free
#   now"). Times in server microseconds.
# Returns {now, status, wait, run, limit (0: off), period, burst, n, ticket, delay, ...
# (n grants for the caller's tickets, each usable `delay` µs after `now`), ticket,
# expected, ... (for asks that wanted an estimate: µs from now until its slot is likely)}.
# Grants for other processes go to their inboxes as ' ticket start ticket start ...'
# (start 0: usable at once).
_STEP = (
    _RULES
    + """
local slots, busy, iqueue, bqueue, alive, meta, grant, pause, setq, learn, ilast =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9], KEYS[10],
  KEYS[11]
local lease, ttl, attempt = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local grace, deadline = tonumber(ARGV[7]), tonumber(ARGV[8])
local me, inbox, known, seen, seen_ttl = ARGV[9], ARGV[10], ARGV[11], ARGV[12], ARGV[13]
local setting_ttl, held, share = tonumber(ARGV[14]), tonumber(ARGV[15]), tonumber(ARGV[16])
-- Every number written as whole digits: Lua's own formatting keeps 14 only.
local function d(x) return string.format('%.0f', x) end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
-- A write first, one that only frees: Redis then lets the rest of the script write even
-- past maxmemory (noeviction refuses only a script's first write), so the quota keeps
-- working while another user has filled Redis; what it holds is bounded.
redis.call('ZREMRANGEBYSCORE', alive, '-inf', now)
-- Run after the caller gave up (a frozen server resumed): grant it nothing.
local late = deadline > 0 and now > deadline

-- 0. The quota in force, and the limit learned from refusals (grown back since).
local off, base, period, burst = configured(setq, tonumber(ARGV[1]), tonumber(ARGV[2]),
  tonumber(ARGV[3]))
redis.call('PEXPIRE', setq, setting_ttl)  -- kept while the key is used
local limit, regrow = base, nil
if not off then
  local l = redis.call('HMGET', learn, 'low', 'since', 'recover')
  if l[1] then
    local low, since, recover = tonumber(l[1]), tonumber(l[2]), l[3] == '1'
    limit = effective(base, period, low, since, recover, now)
    if not recover then
      redis.call('PEXPIRE', learn, setting_ttl)  -- kept while the key is used
    elseif limit >= base then
      redis.call('DEL', learn)  -- grown back: forgotten
    else
      regrow = since + (math.floor((now - since) / period) + 1) * period
    end
  end
end
local blackout = math.max(period, held) + attempt
-- Keys outlive what they hold: a reserved grant may start a blackout ahead and be held
-- a lease and a period; released slots cool at most a lease and a period (lease
-- outlasts any attempt); tickets live ttl.
local keep = math.ceil((lease + 2 * period + blackout + ttl) / 1000) + 1000
local short = math.ceil((lease + period + ttl) / 1000) + 1000

-- 1. Has this key's state been lost since grants were last made from it?
local info = redis.call('INFO', 'server')
local run = string.match(info, 'run_id:(%w+)')
local started = now - tonumber(string.match(info, 'uptime_in_seconds:(%d+)')) * 1000000
local young = now - started < blackout
local m = redis.call('HMGET', meta, 'run', 'lost', 'passed')
local lost = tonumber(m[2] or '0')
local was = lost
if m[1] ~= run then
  if m[1] then
    -- Written by another run of the server: restarted from older data, or failed over.
    lost = math.max(lost, young and started + blackout or now + blackout)
  elseif known == run then
    lost = math.max(lost, now + blackout)  -- gone under this very run: flushed or evicted
  elseif young then
    lost = math.max(lost, now + grace)  -- a fresh server, or a restarted one: hear survivors
  end
end
if known ~= '' and known ~= run then
  -- The caller held slots under an earlier run: they may still be in the window.
  lost = math.max(lost, young and started + blackout or now + blackout)
end
if m[1] ~= run or lost ~= was then redis.call('HSET', meta, 'run', run, 'lost', d(lost)) end
local blocked = math.max(lost, tonumber(redis.call('GET', pause) or '0'))

-- 2. Lapsed tickets lose their place; freed slots and abandoned ones are gone.
local lapsed = redis.call('ZRANGEBYSCORE', alive, '-inf', now)
for i = 1, #lapsed, 500 do
  local part = {unpack(lapsed, i, math.min(i + 499, #lapsed))}
  redis.call('ZREM', iqueue, unpack(part))
  redis.call('ZREM', bqueue, unpack(part))
end
redis.call('ZREMRANGEBYSCORE', alive, '-inf', now)
redis.call('ZREMRANGEBYSCORE', slots, '-inf', now)
local gone = redis.call('ZRANGEBYSCORE', busy, '-inf', now)
for i = 1, #gone, 500 do
  redis.call('HDEL', grant, unpack(gone, i, math.min(i + 499, #gone)))
end
redis.call('ZREMRANGEBYSCORE', busy, '-inf', now)

-- A grant handed back unused (a leave, an unsent release): its slot is free at once,
-- unless it was reserved from a cooling slot that is still cooling: then from then on.
local function give_back(token)
  local start = redis.call('HGET', grant, token)
  if not start then return false end
  redis.call('HDEL', grant, token)
  redis.call('ZREM', busy, token)
  if tonumber(start) > now then redis.call('ZADD', slots, start, token) end
  return true
end

-- 3. What the caller says. Slots it took while Redis was away first, then releases
-- (of those too), then tickets it gave up, then the tickets it waits with.
redis.call('SET', seen .. me, 1, 'PX', seen_ttl)  -- this process is alive
local i = 17
local n = tonumber(ARGV[i]); i = i + 1
local releases = {}
for _ = 1, n do
  releases[#releases + 1] = {ARGV[i], tonumber(ARGV[i + 1]), ARGV[i + 2]}
  i = i + 3
end
n = tonumber(ARGV[i]); i = i + 1
for _ = 1, n do
  local token, hold = ARGV[i], tonumber(ARGV[i + 1])
  if hold < 0 then
    redis.call('ZADD', busy, 'NX', d(now + lease + period), token)
  elseif hold > 0 then
    redis.call('ZADD', slots, 'GT', d(now + hold), token)
  end
  i = i + 2
end
for _, r in ipairs(releases) do
  if r[3] == '1' and r[2] > 0 then
    redis.call('ZREM', busy, r[1])
    redis.call('HDEL', grant, r[1])
    -- Counted again even if it was lost (a grant from before a restart): the safe side.
    redis.call('ZADD', slots, 'GT', d(now + r[2]), r[1])
  elseif not give_back(r[1]) then
    redis.call('ZREM', busy, r[1])
    redis.call('ZREM', slots, r[1])
  end
end
n = tonumber(ARGV[i]); i = i + 1
for _ = 1, n do
  local ticket = ARGV[i]
  redis.call('ZREM', iqueue, ticket)
  redis.call('ZREM', bqueue, ticket)
  redis.call('ZREM', alive, ticket)
  give_back(ticket)
  i = i + 1
end
local mine = {now, 0, 0, run, off and 0 or limit, period, burst, 0}
local granted = {}
local wants = {}
local fresh = false
n = tonumber(ARGV[i]); i = i + 1
for _ = 1, n do
  local ticket, want = ARGV[i], tonumber(ARGV[i + 1])
  local start = redis.call('HGET', grant, ticket)
  if late then
    -- nothing: the caller is not listening, and will ask again
  elseif start then
    mine[#mine + 1] = ticket  -- granted before: the same grant again
    mine[#mine + 1] = math.max(0, tonumber(start) - now)
    granted[ticket] = true
  elseif off then
    redis.call('ZREM', iqueue, ticket)  -- not paced: nothing to wait for
    redis.call('ZREM', bqueue, ticket)
    redis.call('ZREM', alive, ticket)
  else
    -- An interactive ticket stands HEAD_START periods earlier in line than it asked.
    local line, score = bqueue, now
    if string.sub(ticket, #me + 2, #me + 2) == 'i' then
      line, score = iqueue, now - HEAD_START * period
    end
    if redis.call('ZADD', line, 'NX', d(score), ticket) == 1 and line == iqueue then
      fresh = true
    end
    redis.call('ZADD', alive, d(now + ttl), ticket)
    if want > 0 then wants[#wants + 1] = {ticket, want, line} end
  end
  i = i + 2
end
-- Interactive callers use the key: bulk ones leave them a reserve for a while.
if fresh then redis.call('SET', ilast, d(now), 'PX', math.ceil(window(period) / 1000)) end
local spare = 0
local asked = fresh and now or tonumber(redis.call('GET', ilast) or '')
if asked and now - asked < window(period) then spare = reserve(limit) end

-- 4. Hand out every slot that can be, in line order among the tickets allowed one: a
-- bulk ticket goes first only while it stands earlier in line than the first
-- interactive one and fewer than limit - spare slots are used; one that may not does not
-- hold up the interactive ones. A free slot is usable now; a cooling one from when it
-- frees. The k-th to free is the first that keeps a ticket within its limit (with more
-- slots counted than that: grants from before a loss, or a reserve): bulk tickets thus
-- leave the slots that free first to interactive ones.
local out = {}
local used = redis.call('ZCARD', busy) + redis.call('ZCARD', slots)
local heard = {}
local function head(line)
  while true do
    local h = redis.call('ZRANGE', line, 0, 0, 'WITHSCORES')
    if not h[1] then return nil end
    local proc = string.match(h[1], '^(.-)%.') or ''
    if proc ~= me and heard[proc] == nil then
      heard[proc] = redis.call('EXISTS', seen .. proc) == 1
    end
    if proc == me or heard[proc] then return {h[1], tonumber(h[2]), proc} end
    -- Its process has not been heard from: no slot for it (it would strand there).
    -- If it is alive after all, the nudge makes it ask again.
    redis.call('ZREM', line, h[1])
    redis.call('ZREM', alive, h[1])
    out[proc] = out[proc] or ' w'
  end
end
local function slot(within)
  if used < within then
    used = used + 1
    return now
  end
  local k = used - within
  local c = redis.call('ZRANGE', slots, k, k, 'WITHSCORES')
  if not c[1] then return nil end
  redis.call('ZREM', slots, c[1])
  return math.max(now, tonumber(c[2]))
end
if off then
  mine[2] = 4
elseif blocked > now then
  mine[2] = (blocked == lost) and 3 or 2
  mine[3] = blocked - now
else
  -- Grants that went to interactive tickets past a bulk one ahead of them in line.
  local passed = tonumber(m[3] or '0')
  local was_passed = passed
  local first, bulk = head(iqueue), head(bqueue)
  while first or bulk do
    local chosen, start
    if bulk and (not first or bulk[2] < first[2]) then
      start = slot(limit - spare)
      if start then chosen = bulk end
    end
    if not chosen then
      if not first then break end
      start = slot(limit)
      if not start then break end
      chosen = first
      if bulk and bulk[2] < first[2] then
        -- A bulk ticket ahead in line that the reserve holds back (interactive ones
        -- fill the window): it takes one grant in `share`, so it is never starved.
        passed = passed + 1
        if passed >= share then chosen = bulk end
      end
    end
    if chosen == bulk then passed = 0 end
    local ticket, proc = chosen[1], chosen[3]
    redis.call('ZREM', chosen == first and iqueue or bqueue, ticket)
    redis.call('ZREM', alive, ticket)
    redis.call('ZADD', busy, d(start + lease + period), ticket)
    redis.call('HSET', grant, ticket, d(start))
    if proc == me and not late then
      mine[#mine + 1] = ticket
      mine[#mine + 1] = start - now
      granted[ticket] = true
    else
      -- '0': usable at once (the slot was free when this ran, so before it is read).
      out[proc] = (out[proc] or '') .. ' ' .. ticket .. ' ' .. (start > now and d(start) or '0')
    end
    if chosen == first then first = head(iqueue) else bulk = head(bqueue) end
  end
  if passed ~= was_passed then redis.call('HSET', meta, 'passed', passed) end
  if first or bulk then
    -- Still waiting: a slot whose holder vanished frees itself then, with no release,
    -- and a learned limit grows a step then.
    local b = redis.call('ZRANGE', busy, 0, 0, 'WITHSCORES')
    if b[2] then mine[3] = math.max(1, tonumber(b[2]) - now) end
    if regrow then
      mine[3] = mine[3] > 0 and math.min(mine[3], regrow - now) or math.max(1, regrow - now)
    end
  end
end
mine[8] = (#mine - 8) / 2

-- 5. Tickets that wanted to know: when their slot is likely. With every ticket ahead
-- served first, it gets the k-th slot to free: a cooling one, whose time is known, or
-- one still in flight or reserved, which frees a period from now at the earliest, and
-- a slot serves one ticket a period at most (so the waves after come a period apart).
-- Bulk tickets ahead of an interactive one take only the slots below the reserve.
-- A ticket that wanted a slot only if one was free now leaves the line.
if not off then
  local slot_count = redis.call('ZCARD', slots)
  for _, w in ipairs(wants) do
    local ticket, want, line = w[1], w[2], w[3]
    local score = not granted[ticket] and redis.call('ZSCORE', line, ticket)
    if score then
      local interactive = redis.call('ZCOUNT', iqueue, '-inf', '(' .. score)
      local bulk = redis.call('ZCOUNT', bqueue, '-inf', '(' .. score)
      local within = limit - spare
      if line == iqueue then
        bulk = math.min(bulk, math.max(0, limit - spare - used))
        within = limit
      end
      local k = used + interactive + bulk - within
      local when
      if k < 0 then
        when = now
      elseif k < slot_count then
        when = tonumber(redis.call('ZRANGE', slots, k, k, 'WITHSCORES')[2])
      else
        when = now + period * (1 + math.floor((k - slot_count) / within))
      end
      mine[#mine + 1] = ticket
      mine[#mine + 1] = math.max(when, blocked) - now
      if want == 2 then
        redis.call('ZREM', line, ticket)
        redis.call('ZREM', alive, ticket)
      end
    end
  end
end
for proc, message in pairs(out) do
  redis.call('RPUSH', inbox .. proc, message)
  redis.call('PEXPIRE', inbox .. proc, math.ceil(ttl / 1000) + 1000)
end
for _, key in ipairs({busy, meta, grant}) do redis.call('PEXPIRE', key, keep) end
for _, key in ipairs({slots, iqueue, bqueue, alive}) do redis.call('PEXPIRE', key, short) end
return mine
"""
)

# KEYS: pause, queue:i, queue:b. ARGV: microseconds, inbox prefix, ttl. Wakes every
# waiting process, so callers that asked to fail while paused learn of the pause at once.
_PAUSE = (
    _RULES
    + """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local ends = now + tonumber(ARGV[1])
if ends > tonumber(redis.call('GET', KEYS[1]) or '0') then
  local px = math.ceil(tonumber(ARGV[1]) / 1000) + 1
  redis.call('SET', KEYS[1], string.format('%.0f', ends), 'PX', px)
end
nudge({KEYS[2], KEYS[3]}, ARGV[2], tonumber(ARGV[3]))
return now
"""
)

# KEYS: quota, learn, queue:i, queue:b. ARGV: 'off' or 'limit period burst', how long it
# is kept unused (ms), inbox prefix, ttl. Sets the quota, forgets what was learned, and
# wakes every waiting process: its next step grants by the new quota.
_SET_QUOTA = (
    _RULES
    + """
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('DEL', KEYS[2])
nudge({KEYS[3], KEYS[4]}, ARGV[3], tonumber(ARGV[4]))
return 1
"""
)

# KEYS: quota, learn. ARGV: limit, period, burst, recover ('1' or '0'), how long a
# learned limit that never grows back is kept unused (ms).
# Returns {changed, limit (0: off), period, burst}: the effective quota after a refusal.
_REFUSED = (
    _RULES
    + """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local off, base, period, burst = configured(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]),
  tonumber(ARGV[3]))
if off then return {0, 0, period, burst} end
local l = redis.call('HMGET', KEYS[2], 'low', 'since', 'recover')
local current = base
if l[1] then
  local since = tonumber(l[2])
  current = effective(base, period, tonumber(l[1]), since, l[3] == '1', now)
  if now - since < period then return {0, current, period, burst} end  -- one signal a window
end
local lowered = decreased(current)
redis.call('HSET', KEYS[2], 'low', string.format('%.0f', lowered),
  'since', string.format('%.0f', now), 'recover', ARGV[4])
if ARGV[4] == '1' then
  -- Kept until it has grown back to the quota (and a period more).
  local periods = math.ceil((base - lowered) / step(base)) + 1
  redis.call('PEXPIRE', KEYS[2], math.ceil(periods * period / 1000))
else
  redis.call('PEXPIRE', KEYS[2], ARGV[5])
end
return {lowered ~= current and 1 or 0, lowered, period, burst}
"""
)

_SOURCES = {"step": _STEP, "pause": _PAUSE, "set_quota": _SET_QUOTA, "refused": _REFUSED}

#: A grant as a waiter receives it: ("redis", "local" or "off", token, local time it may
#: start). "off": the key is not paced, and the permit holds nothing.
_Grant = tuple[str, str, float]


class _Waiter:
    __slots__ = (
        "deadline",
        "expected",
        "fail_fast",
        "future",
        "interactive",
        "max_wait",
        "order",
        "registered",
        "ticket",
    )

    def __init__(
        self,
        ticket: str,
        future: asyncio.Future[_Grant],
        *,
        fail_fast: bool,
        interactive: bool,
        order: float,
        max_wait: float | None,
        deadline: float | None,
    ) -> None:
        self.ticket = ticket
        self.future = future
        self.fail_fast = fail_fast
        self.interactive = interactive
        #: Its place in line (local time it asked, an interactive one's a head start
        #: earlier): the order the local fallback serves in.
        self.order = order
        self.max_wait = max_wait
        #: Local time by which it wants a slot (``None``: no bound).
        self.deadline = deadline
        #: Local time Redis last expected its slot, when it asked for an estimate.
        self.expected: float | None = None
        #: Sent to Redis at least once (so it may be queued there, or granted).
        self.registered = False

    @property
    def want(self) -> int:
        """What its ask tells the script: 0, 1 (estimate the wait), 2 (only a free slot)."""
        if self.max_wait is None:
            return 0
        return 2 if self.max_wait == 0 else 1

    def fail(self, error: BaseException) -> None:
        if not self.future.done():
            self.future.set_exception(error)


class _Batch:
    """What one script call carries, kept so a failed call can be sent again."""

    __slots__ = ("adopts", "asks", "confirm", "leaves", "releases", "renewal")

    def __init__(self) -> None:
        self.releases: list[tuple[str, tuple[float, bool]]] = []
        self.adopts: list[tuple[str, tuple[float | None]]] = []
        self.leaves: list[str] = []
        self.asks: list[_Waiter] = []
        self.renewal = False
        self.confirm: list[asyncio.Future[None]] = []


class _Line:
    """One quota key's traffic from this process, on one event loop.

    The waiters, what is still to be told to Redis, what Redis last said of the
    key's quota, and the *ledger*: every slot this process holds or is cooling, by
    its own clock, whoever granted it. The ledger gates every grant (so one process
    never exceeds the quota, whatever Redis forgot) and is what the local fallback
    paces from.
    """

    __slots__ = (
        "active_at",
        "adopts",
        "beat_at",
        "blocked_kind",
        "blocked_until",
        "bound",
        "clock_samples",
        "cooling",
        "in_flight",
        "interactive_at",
        "key",
        "known_run",
        "last_failure",
        "leaves",
        "listener",
        "live",
        "local_timer",
        "loop",
        "mode",
        "need_check",
        "offset",
        "outage_since",
        "owner",
        "pending_confirm",
        "pump",
        "quota",
        "refused_at",
        "release_due",
        "releases",
        "renew_at",
        "room_waiters",
        "script_keys",
        "told",
        "told_at",
        "waiters",
        "wake",
    )

    def __init__(self, owner: RedisLimiter, key: str, quota: Quota, bound: _Bound) -> None:
        self.owner = owner
        self.key = key
        #: The quota the latest caller passed (a quota set at run time, in Redis, wins).
        self.quota = quota
        self.bound = bound
        self.loop = bound.loop
        names = owner.keys(key)
        self.script_keys = [names[part] for part in _STEP_KEYS]
        self.waiters: deque[_Waiter] = deque()
        #: Tickets whose permits are out (a repeated grant message for one is ignored).
        self.live: set[str] = set()
        #: token -> (local time its slot is free, sent): releases Redis has not confirmed.
        self.releases: dict[str, tuple[float, bool]] = {}
        #: Tickets to take out of Redis's line (their waiters left or their grant is unwanted).
        self.leaves: set[str] = set()
        #: Slots granted locally while Redis was away: token -> (local free time or None
        #: while in flight,), to be written into Redis when it is back.
        self.adopts: dict[str, tuple[float | None]] = {}
        #: token -> when it counts as abandoned (a lease and a period after it was taken).
        self.in_flight: dict[str, float] = {}
        self.cooling: list[float] = []
        self.room_waiters: list[asyncio.Future[None]] = []
        self.pending_confirm: list[asyncio.Future[None]] = []
        self.mode: Literal["redis", "local"] = "redis"
        #: The effective quota as Redis last told it: (limit, period in µs, burst or 0),
        #: limit 0 for a key that is not paced; ``None`` before Redis has said.
        self.told: tuple[int, int, int] | None = None
        self.told_at = -1e18
        #: Server seconds minus local seconds, a lower bound (set by every answer).
        self.offset: float | None = None
        self.clock_samples: deque[tuple[float, float]] = deque()
        self.known_run = ""
        self.active_at = -1e18
        self.interactive_at = -1e18
        self.refused_at = -1e18
        self.beat_at = -1e18
        self.blocked_until = 0.0
        self.blocked_kind = _OK
        self.renew_at = 0.0
        self.release_due = 0.0
        self.outage_since: float | None = None
        self.last_failure = -1e18
        self.need_check = False
        self.wake = asyncio.Event()
        self.pump: asyncio.Task[None] | None = None
        self.listener: asyncio.Task[None] | None = None
        self.local_timer: asyncio.TimerHandle | None = None

    def __repr__(self) -> str:
        now = self.owner._now()
        cooling = sum(1 for t in self.cooling if t > now)
        paced = "not paced" if self.off else f"{self.limit}/{self.period:g}s"
        return (
            f"{self.key!r}: {paced}, {self.mode}, {len(self.in_flight)} in flight, "
            f"{cooling} cooling, {sum(1 for w in self.waiters if not w.future.done())} waiting"
        )

    # -- the quota in force --------------------------------------------------------------

    @property
    def off(self) -> bool:
        """Whether Redis last said the key is not paced (``set_quota(key, None)``)."""
        return self.told is not None and self.told[0] == 0

    @property
    def limit(self) -> int:
        """The effective limit as last told (the ledger gates by it)."""
        if self.told is None or self.told[0] == 0:
            return self.quota.limit
        return self.told[0]

    @property
    def period(self) -> float:
        """The period in force: slots cool this long after their request's outcome."""
        if self.told is None or self.told[0] == 0:
            return self.quota.period
        return self.told[1] / _US

    def effective(self, quota: Quota) -> Quota | None:
        """The quota in force as last told, ``quota`` itself when that is what it is."""
        told = self.told
        if told is None:
            return quota
        limit, period_us, burst = told
        if limit == 0:
            return None
        if (limit, period_us, burst) == _told(quota):
            return quota
        made = Quota(limit, period_us / _US)
        if burst:
            made = attrs.evolve(made, burst=min(burst, limit))
        return made

    def tell(self, limit: int, period_us: int, burst: int, when: float) -> None:
        """Redis said what the key's quota is now (``limit`` 0: not paced)."""
        was, self.told, self.told_at = self.told, (limit, period_us, burst), when
        if was is not None and was != self.told:
            self._room_changed()  # a raised limit makes room in the ledger

    # -- callers' side ------------------------------------------------------------------

    def enqueue(
        self,
        *,
        fail_fast: bool,
        interactive: bool,
        max_wait: float | None,
        deadline: float | None,
    ) -> _Waiter:
        now = self.owner._now()
        order = now - HEAD_START * self.period if interactive else now
        if interactive:
            self.interactive_at = now
        waiter = _Waiter(
            self.owner._ticket(interactive),
            self.loop.create_future(),
            fail_fast=fail_fast,
            interactive=interactive,
            order=order,
            max_wait=max_wait,
            deadline=deadline,
        )
        self.waiters.append(waiter)
        if self.mode == "local":
            self.serve_locally()
        self.kick()
        return waiter

    def abandon(self, waiter: _Waiter) -> None:
        """A waiter left before being served: its ticket goes, and a grant it got goes back."""
        future = waiter.future
        if not future.done():
            future.cancel()
        if not future.cancelled() and future.exception() is None:
            kind, token, _ = future.result()
            if kind != "off":
                self.give_back(token)
        elif waiter.registered:
            self.leaves.add(waiter.ticket)
        self.kick()

    def give_back(self, token: str) -> None:
        """A grant that was never used: its slot is free at once (a reserved one: once
        the slot it was reserved from has cooled; Redis knows when)."""
        self.release(token, 0.0, sent=False)

    def take(self, token: str) -> None:
        now = self.owner._now()
        self.in_flight[token] = now + self.owner._lease + self.period
        self.live.add(token)
        self.active_at = now
        self.ensure_listener()

    def release(self, token: str, hold: float, *, sent: bool) -> None:
        now = self.owner._now()
        self.in_flight.pop(token, None)
        self.live.discard(token)
        self.active_at = now
        free_at = now + hold if sent else now
        if sent and hold > 0:
            bisect.insort(self.cooling, free_at)
        if token in self.adopts:
            if sent:
                self.adopts[token] = (free_at,)
            else:
                del self.adopts[token]
        self.releases[token] = (free_at, sent)
        if len(self.releases) == 1:
            self.release_due = now + _FLUSH_DELAY
        self._room_changed()
        if self.mode == "local":
            self.serve_locally()
        self.kick()

    def room(self, *, bulk: bool = False) -> bool:
        """Whether the ledger lets this process start one more request now.

        ``bulk`` (the local fallback only; with Redis, its script keeps the reserve):
        leave the reserve to interactive callers while they use the key.
        """
        now = self.owner._now()
        cut = bisect.bisect_right(self.cooling, now)
        if cut:
            del self.cooling[:cut]
        for token in [t for t, ends in self.in_flight.items() if ends <= now]:
            del self.in_flight[token]  # a permit never released: abandoned, as Redis counts it
        limit = self.limit
        if bulk and now - self.interactive_at < interactive_window(self.period):
            limit -= reserve(limit)
        return len(self.in_flight) + len(self.cooling) < limit

    async def wait_room(self, start: float, deadline: float | None) -> bool:
        """Sleep until ``start``, then until the ledger has room (it nearly always has).

        Whether it had room by ``deadline`` (local time; ``None``: no bound).
        """
        while True:
            delay = start - self.owner._now()
            if delay > 0:
                await self.owner._sleep(delay)
            if self.room():
                return True
            future = self.loop.create_future()
            self.room_waiters.append(future)
            when = self.next_room_at()
            now = self.owner._now()
            if deadline is not None:
                if now >= deadline:
                    return False
                when = deadline if when is None else min(when, deadline)
            timeout = None if when is None else max(0.0, when - now)
            try:
                await asyncio.wait([future], timeout=timeout)
            finally:
                if future in self.room_waiters:
                    self.room_waiters.remove(future)
            start = 0.0

    def next_room_at(self) -> float | None:
        """When the ledger frees a slot by itself (a cooling one, an abandoned one)."""
        times = [self.cooling[0]] if self.cooling else []
        if self.in_flight:
            times.append(min(self.in_flight.values()))
        return min(times) if times else None

    def _room_changed(self) -> None:
        for future in self.room_waiters:
            if not future.done():
                future.set_result(None)
        self.room_waiters.clear()

    async def settle(self) -> None:
        """Wait (briefly, bounded) until Redis has been told what this process gave up."""
        if not (self.leaves or self.releases) or self.mode == "local":
            return
        future = self.loop.create_future()
        self.pending_confirm.append(future)
        self.kick(now=True)
        with contextlib.suppress(asyncio.CancelledError):  # cancelled again: go at once
            await asyncio.wait([future], timeout=min(_LEAVE_WAIT, self.owner._redis_timeout))

    def waiting(self) -> list[_Waiter]:
        while self.waiters and self.waiters[0].future.done():
            self.waiters.popleft()
        return [w for w in self.waiters if not w.future.done()]

    def fail(self, waiter: _Waiter, error: BaseException) -> None:
        """End ``waiter``'s wait with ``error``; its ticket leaves Redis's line."""
        waiter.fail(error)
        if waiter.registered:
            self.leaves.add(waiter.ticket)

    def fail_all(self, error: Callable[[], BaseException]) -> None:
        for waiter in self.waiting():
            self.fail(waiter, error())
        self.waiters.clear()

    def fail_late(self, ready_at: float, now: float) -> None:
        """Fail at once every waiter whose ``max_wait`` ends before ``ready_at``
        (a pause, or a blackout after a loss): nothing can be granted before then."""
        for waiter in self.waiting():
            if waiter.deadline is not None and ready_at > waiter.deadline:
                assert waiter.max_wait is not None
                self.fail(waiter, WaitExceeded(waiter.max_wait, ready_at - now))

    # -- the pump: the one task that talks to Redis for this key -----------------------

    def kick(self, *, now: bool = False) -> None:
        if now:
            self.release_due = 0.0
        self.wake.set()
        if self.pump is None or self.pump.done():
            self.pump = self.loop.create_task(self._pump())

    def ensure_listener(self) -> None:
        if self.mode == "redis" and (self.listener is None or self.listener.done()):
            self.listener = self.loop.create_task(self._listen())

    def _live_slots(self) -> bool:
        return bool(self.in_flight) or bool(self.cooling and self.cooling[-1] > self.owner._now())

    def _due(self) -> tuple[bool, float | None]:
        """Whether a call is due now, else when one will be (``None``: on a kick only)."""
        now = self.owner._now()
        waiting = self.waiting()
        if self.mode == "local":
            if not (waiting or self.releases or self.leaves or self.adopts or self.in_flight):
                return False, None
            return now - self.last_failure >= self._backoff(), self.last_failure + self._backoff()
        if self.need_check or self.leaves or self.adopts or self.pending_confirm:
            return self._after_backoff(now)
        if any(not w.registered for w in waiting):
            return self._after_backoff(now)
        when: float | None = None
        if self.releases:
            when = self.release_due
        if waiting:
            renew = self.renew_at
            if self.blocked_until > 0:
                renew = min(renew, self.blocked_until)
            when = renew if when is None else min(when, renew)
        if when is not None and now >= when:
            return self._after_backoff(now)
        return False, when

    def _after_backoff(self, now: float) -> tuple[bool, float | None]:
        """Due now, unless Redis failed a moment ago: then once the backoff is over."""
        again = self.last_failure + self._backoff()
        if self.outage_since is not None and now < again:
            return False, again
        return True, None

    def _pending(self) -> bool:
        return bool(
            self.waiting()
            or self.releases
            or self.leaves
            or self.adopts
            or self.pending_confirm
            or self.need_check
        )

    def _backoff(self) -> float:
        if self.outage_since is None:
            return 0.0
        lasted = self.last_failure - self.outage_since
        return min(_MAX_BACKOFF, max(_MIN_BACKOFF, lasted / 4))

    async def _pump(self) -> None:
        owner = self.owner
        while True:
            self.wake.clear()
            due, when = self._due()
            if not due:
                if when is None and not self._pending():
                    return
                timeout = None if when is None else max(0.0, when - owner._now())
                if timeout is not None:
                    timeout += random.uniform(0, owner._max_jitter) if self.mode == "local" else 0
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), timeout)
                continue
            batch = self._take_batch()
            try:
                reply, received = await owner._step(self, batch)
            except LimiterUnavailableError as err:
                self._failed(batch, err)
                continue
            self._answered(batch, reply, received)

    def _take_batch(self) -> _Batch:
        batch = _Batch()
        if self.offset is None:
            return batch  # first: learn the server's clock, so later calls carry deadlines
        now = self.owner._now()
        for token, entry in itertools.islice(self.adopts.items(), _BATCH):
            free_at = entry[0]
            if free_at is not None and free_at <= now:
                continue  # freed already: nothing for Redis to count
            batch.adopts.append((token, entry))
        for token, release in itertools.islice(self.releases.items(), _BATCH):
            batch.releases.append((token, release))
        batch.leaves = list(itertools.islice(self.leaves, _BATCH))
        if self.mode == "redis":
            waiting = self.waiting()
            batch.renewal = bool(waiting) and (
                now >= self.renew_at or 0 < self.blocked_until <= now
            )
            for waiter in waiting:
                if len(batch.asks) >= _BATCH:
                    break
                if batch.renewal or not waiter.registered:
                    batch.asks.append(waiter)
                    waiter.registered = True
        batch.confirm, self.pending_confirm = self.pending_confirm, []
        return batch

    def _failed(self, batch: _Batch, err: LimiterUnavailableError) -> None:
        owner = self.owner
        now = owner._now()
        self.pending_confirm.extend(batch.confirm)
        if self.outage_since is None or now - self.last_failure > 2 * _MAX_BACKOFF + 1.0:
            self.outage_since = now
        self.last_failure = now
        self.renew_at = 0.0  # the asks may not have arrived: ask again with every ticket
        if owner._fallback == "local":
            if self.mode != "local":
                self.mode = "local"
                owner._warn_outage(err)
            for waiter in self.waiting():
                if waiter.registered:
                    self.leaves.add(waiter.ticket)
                    waiter.registered = False
            self.serve_locally()
        elif now - self.outage_since >= owner._outage_timeout:
            owner._warn_outage(err)
            self.fail_all(lambda: _unavailable(err, owner._outage_timeout))
        for waiter in batch.asks:
            if waiter.max_wait == 0:  # one trip was all it would wait for
                self.fail(waiter, WaitExceeded(0.0, None))
        for future in self.pending_confirm:
            if not future.done():
                future.set_result(None)  # nobody should wait on a Redis that is away
        self.pending_confirm.clear()

    def _answered(self, batch: _Batch, reply: Sequence[Any], received: float) -> None:
        owner = self.owner
        now_us, status, wait_us, run = int(reply[0]), int(reply[1]), int(reply[2]), reply[3]
        if _text(run) != self.known_run:
            self.clock_samples.clear()  # another server (a failover): another clock
        self._clock_sample(now_us / _US - received, received)
        self.known_run = _text(run)
        self.need_check = False
        self.tell(int(reply[4]), int(reply[5]), int(reply[6]), received)
        if self.outage_since is not None:
            self.outage_since = None
            if self.mode == "local":
                self.mode = "redis"
                if self.local_timer is not None:
                    self.local_timer.cancel()
                    self.local_timer = None
            owner._recovered()
        for token, release in batch.releases:
            if self.releases.get(token) is release:
                del self.releases[token]
        for token, entry in batch.adopts:
            if self.adopts.get(token) is entry:
                del self.adopts[token]
        now = owner._now()
        for token in [t for t, e in self.adopts.items() if e[0] is not None and e[0] <= now]:
            del self.adopts[token]
        self.leaves.difference_update(batch.leaves)
        if batch.renewal:
            self.renew_at = received + owner._ticket_ttl / 3
        grants = 8 + 2 * int(reply[7])
        for i in range(8, grants, 2):
            delay = int(reply[i + 1])
            # A slot free when the script ran is free now; one reserved from a cooling
            # slot is usable once the server's clock has certainly reached its start.
            start = received if delay <= 0 else self.local_time(now_us + delay)
            self.granted(_text(reply[i]), start)
        if status == _OFF:
            for waiter in self.waiting():
                waiter.future.set_result(("off", "", received))
                if waiter.registered:
                    self.leaves.add(waiter.ticket)  # asked before: it may still be in line
        elif status == _OK:
            self.blocked_until, self.blocked_kind = 0.0, _OK
            if wait_us > 0:  # when a slot whose holder vanished frees itself
                self.renew_at = min(self.renew_at, received + wait_us / _US)
        else:
            self.blocked_until, self.blocked_kind = received + wait_us / _US, status
            if status == _PAUSED:
                for waiter in self.waiting():
                    if waiter.fail_fast:
                        self.fail(waiter, Paused(wait_us / _US))
            self.fail_late(self.blocked_until, received)
        self._expected(reply, grants, received)
        for waiter in batch.asks:
            if waiter.max_wait == 0 and not waiter.future.done():
                # Only a slot free now would do: the script took its ticket out of line.
                waiter.registered = False
                expected = waiter.expected
                waiter.fail(WaitExceeded(0.0, None if expected is None else expected - received))
        for future in batch.confirm:
            if not future.done():
                future.set_result(None)
        if self.waiting():
            self.ensure_listener()

    def _expected(self, reply: Sequence[Any], start: int, received: float) -> None:
        """Estimates for waiters with a ``max_wait``: fail at once those it cannot meet."""
        if start >= len(reply):
            return
        expected = {_text(reply[i]): int(reply[i + 1]) for i in range(start, len(reply) - 1, 2)}
        for waiter in self.waiting():
            delay = expected.get(waiter.ticket)
            if delay is None:
                continue
            waiter.expected = received + delay / _US
            late = waiter.deadline is not None and waiter.expected > waiter.deadline
            if waiter.max_wait and late and delay > _CLOCK_MARGIN * _US:
                self.fail(waiter, WaitExceeded(waiter.max_wait, delay / _US))

    def _clock_sample(self, offset: float, received: float) -> None:
        """Keep the tightest recent bound on the server's clock (every answer gives one).

        Each answer arrives after the script read the time, so ``server - local`` at
        its arrival is at most the true offset; the largest of the last few seconds'
        is the closest that is still never ahead (a loaded process reads its answers
        late, and a late reading must not delay the slots it is handed).
        """
        samples = self.clock_samples
        samples.append((received, offset))
        while samples and samples[0][0] < received - _SAMPLE_WINDOW:
            samples.popleft()
        self.offset = max(o for _, o in samples)

    def local_time(self, server_us: int, received: float | None = None) -> float:
        """The local moment by which server time ``server_us`` has certainly come."""
        if self.offset is None:
            return self.owner._now() if received is None else received
        return server_us / _US - self.offset + _CLOCK_MARGIN

    def granted(self, ticket: str, start: float) -> None:
        """Redis handed ``ticket`` a slot usable from ``start`` (local time)."""
        for waiter in self.waiters:
            if waiter.ticket == ticket:
                if not waiter.future.done():
                    self.live.add(ticket)
                    waiter.future.set_result(("redis", ticket, start))
                    return
                break
        if ticket not in self.live:
            self.leaves.add(ticket)  # its waiter is gone: give the slot back
            self.kick()

    # -- the listener: grants for this process's waiters, and a watch on the server ---

    async def _listen(self) -> None:
        owner = self.owner
        failures = 0
        while self.mode == "redis" and (
            any(w.registered for w in self.waiting()) or self._live_slots()
        ):
            try:
                message = await owner._pop(self)
            except LimiterUnavailableError:
                # Whatever happened to Redis, the next call checks what it still knows.
                self.need_check = True
                self.kick()
                failures += 1
                await asyncio.sleep(min(_MAX_BACKOFF, _MIN_BACKOFF * failures))
                continue
            failures = 0
            if message is None:
                continue
            received = owner._now()
            words = iter(_text(message).split())
            for word in words:
                if word == "w":  # ask again: a pause began, the quota changed, or dropped
                    self.renew_at = 0.0
                    self.kick()
                else:
                    start_us = int(next(words, "0"))
                    start = received if start_us <= 0 else self.local_time(start_us, received)
                    self.granted(word, start)

    # -- the local fallback -----------------------------------------------------------

    def serve_locally(self) -> None:
        """Serve waiters from the ledger while it has room (Redis is away), in line order:
        interactive ones a head start earlier, bulk ones within the reserve."""
        owner = self.owner
        if self.local_timer is not None:
            self.local_timer.cancel()
            self.local_timer = None
        paused = owner._local_paused.get(self.key, 0.0) - owner._now()
        for waiter in sorted(self.waiting(), key=lambda w: w.order):
            if paused > 0:
                if waiter.fail_fast:
                    waiter.fail(Paused(paused))
                    continue
                break
            if not self.room(bulk=not waiter.interactive):
                if not waiter.interactive:
                    continue  # an interactive one further back may still fit
                break
            token = f"{owner._proc}.l{next(owner._seq):x}"
            self.adopts[token] = (None,)
            self.take(token)
            waiter.future.set_result(("local", token, owner._now()))
        if not self.waiting():
            return
        when = self.next_room_at()
        wake = max(paused, 0.0 if when is None else when - owner._now())
        if paused > 0 or when is not None:
            self.local_timer = self.loop.call_later(max(wake, 0.0), self.serve_locally)

    async def close(self) -> None:
        """Stop talking to Redis; tell it, within one timeout, what this process gave up."""
        for task in (self.pump, self.listener):
            if task is not None and not task.done():
                task.cancel()
        if self.local_timer is not None:
            self.local_timer.cancel()
        self.fail_all(lambda: LimiterUnavailableError("the RedisLimiter was closed"))
        if self.releases or self.leaves or self.adopts:
            try:
                batch = self._take_batch()
                reply, received = await self.owner._step(self, batch)
                self._answered(batch, reply, received)
            except LimiterUnavailableError as err:
                logger.warning(
                    "livestats: could not tell Redis about %d slot(s) of %s at close: %s",
                    len(self.releases) + len(self.leaves),
                    self.key,
                    err,
                )


class _RedisPermit:
    __slots__ = ("_line", "_released", "_token")

    def __init__(self, line: _Line, token: str) -> None:
        self._line = line
        self._token = token
        self._released = False

    async def release(self, *, sent: bool = True, unanswered_for: float = 0.0) -> None:
        if self._released:
            return
        self._released = True
        # The period in force now (a quota set at run time may have changed it).
        line = self._line
        line.release(self._token, line.period + unanswered_for, sent=sent)

    def __repr__(self) -> str:
        state = "released" if self._released else "held"
        return f"<RedisPermit {self._line.key!r} {state}>"


class _FreePermit:
    """The permit of a key that is not paced: it holds no slot, so releasing it does nothing."""

    __slots__ = ("_key",)

    def __init__(self, key: str) -> None:
        self._key = key

    async def release(self, *, sent: bool = True, unanswered_for: float = 0.0) -> None:
        return None

    def __repr__(self) -> str:
        return f"<RedisPermit {self._key!r} not paced>"


class _Bound:
    """What the limiter keeps for one event loop: its client, scripts and lines."""

    __slots__ = ("client", "guard", "lines", "loop", "pop_timeout", "scripts")

    def __init__(self, loop: asyncio.AbstractEventLoop, client: Any, pop_timeout: float) -> None:
        self.loop = loop
        self.client = client
        self.pop_timeout = pop_timeout
        self.scripts: dict[str, AsyncScript] = {}
        self.lines: dict[str, _Line] = {}
        self.guard: AsyncGenerator[None, None] | None = None


class RedisLimiter:
    """The :class:`~livestats.Limiter` for quotas shared across processes and hosts.

    ``url_or_client`` is a Redis URL (``redis://host:6379/0``; the limiter makes
    and closes its own client, one per event loop; with ``cluster=True`` the URL
    names any node of a Redis Cluster) or a ``redis.asyncio.Redis`` or
    ``redis.asyncio.RedisCluster`` you own. ``key_prefix`` namespaces the keys:
    services that should share a quota use the same prefix (and the same quota keys,
    which are the same when their clients are configured alike).

    ``lease``: seconds a slot may stay in flight before it counts as abandoned
    (longer than any attempt). ``ticket_ttl``: seconds a waiter's place in line
    survives without its process renewing it. ``attempt_timeout``: the longest a
    request may be on its way (the clients' ``timeout``); after Redis may have lost
    its state, nothing is granted for one quota period plus this.
    ``redis_timeout``: seconds one Redis call may take before Redis counts as
    unavailable. ``outage_timeout``: how long an acquire waits for an unavailable
    Redis before :class:`~livestats.LimiterUnavailableError`. ``fallback``:
    ``"error"`` (default) waits, then raises; ``"local"`` paces at once from this
    process's own slots while Redis is away, and logs a warning.

    ``clock``: the :class:`~livestats.Clock` the limiter reads and sleeps on (slot
    times are always the Redis server's own ``TIME``).

    Priorities, ``max_wait``, learned limits and quotas set at run time follow
    :mod:`livestats._core.sharing` across every process on the Redis, and through
    the local fallback within this one. While Redis is away, :meth:`refused` lowers
    the limit in this process alone (its ledger paces by it), and :meth:`set_quota`
    raises :class:`~livestats.LimiterUnavailableError`.

    Needs the ``redis`` package (``pip install 'livestats[redis]'``) and Redis 6.2
    or later, or Valkey.
    """

    def __init__(
        self,
        url_or_client: str | Any,
        *,
        key_prefix: str = "livestats",
        lease: float = 60.0,
        ticket_ttl: float = 10.0,
        fallback: Literal["error", "local"] = "error",
        max_jitter: float = 0.01,
        clock: Clock | None = None,
        attempt_timeout: float = 10.0,
        redis_timeout: float = 1.0,
        outage_timeout: float = 10.0,
        cluster: bool = False,
    ) -> None:
        if clock is not None and not isinstance(clock, Clock):
            raise ConfigurationError(f"clock must be a livestats.Clock, not {shown(clock)}")
        clock = clock or Clock()
        self._now = clock.monotonic
        #: Waits for a reserved slot sleep on this clock (slot times are the Redis server's).
        self._sleep = clock.sleep
        try:
            import redis.asyncio  # noqa: F401  (checked here so the error comes early)
        except ImportError:
            raise ConfigurationError(
                "RedisLimiter needs the redis package: pip install 'livestats[redis]'"
            ) from None
        if isinstance(url_or_client, str):
            self._url: str | None = _check_redis_url(url_or_client)
            self._given: Any = None
        else:
            if not callable(getattr(url_or_client, "register_script", None)):
                raise ConfigurationError(
                    "url_or_client must be a URL or a redis.asyncio.Redis / RedisCluster"
                )
            self._url = None
            self._given = url_or_client
        if not isinstance(cluster, bool):
            raise ConfigurationError("cluster must be True or False")
        self._cluster = cluster
        self._prefix = check_text(key_prefix, "key_prefix", error=ConfigurationError)
        self._lease = check_seconds(lease, "lease")
        self._ticket_ttl = check_seconds(ticket_ttl, "ticket_ttl")
        self._attempt_timeout = check_seconds(attempt_timeout, "attempt_timeout")
        self._redis_timeout = check_seconds(redis_timeout, "redis_timeout")
        self._outage_timeout = (
            0.0
            if outage_timeout == 0 and not isinstance(outage_timeout, bool)
            else check_seconds(outage_timeout, "outage_timeout")
        )
        if not isinstance(fallback, str) or fallback not in ("error", "local"):
            raise ConfigurationError(f"fallback must be 'error' or 'local', not {shown(fallback)}")
        self._fallback = fallback
        if (
            isinstance(max_jitter, bool)
            or not isinstance(max_jitter, (int, float))
            or not 0 <= max_jitter < 1
        ):
            raise ConfigurationError(
                f"max_jitter must be a number of seconds from 0 to under 1, not {shown(max_jitter)}"
            )
        self._max_jitter = float(max_jitter)
        #: This limiter's name in Redis: its tickets start with it, its inbox ends with it.
        self._proc = secrets.token_hex(6)
        self._seq = itertools.count()
        self._bound: _Bound | None = None
        self._local_paused: dict[str, float] = {}
        self._outage = False

    def __repr__(self) -> str:
        where = "its own client" if self._url is not None else "a given client"
        lines = ", ".join(repr(line) for line in self._bound.lines.values()) if self._bound else ""
        return (
            f"<RedisLimiter prefix={self._prefix!r} {where} fallback={self._fallback!r}"
            f" {{{lines}}}>"
        )

    def keys(self, key: str) -> dict[str, str]:
        """The Redis keys of quota key ``key`` (``inbox``: this limiter's own)."""
        tag = f"{self._prefix}:{{{key}}}"
        names = {part: f"{tag}:{part}" for part in _STEP_KEYS}
        names["inbox"] = f"{tag}:inbox:{self._proc}"
        names["seen"] = f"{tag}:seen:{self._proc}"
        return names

    async def aclose(self) -> None:
        """Tell Redis what is pending and stop; close the client this limiter made."""
        bound, self._bound = self._bound, None
        if bound is not None and bound.guard is not None:
            guard, bound.guard = bound.guard, None
            await guard.aclose()  # runs _close_bound

    async def flush(self) -> None:
        """Tell Redis now what this process released or gave up (within ``redis_timeout``).

        Releases go to Redis with the next acquire of their key, or a few
        milliseconds later: a slot's free time is fixed when it is released, so
        nothing waits longer for it. Call this to see Redis up to date at once.
        """
        bound = self._bound
        if bound is None or bound.loop is not asyncio.get_running_loop():
            return
        for line in list(bound.lines.values()):
            await line.settle()

    async def __aenter__(self) -> RedisLimiter:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # -- the Limiter interface ---------------------------------------------------------

    async def acquire(
        self,
        key: str,
        quota: Quota,
        *,
        wait_if_paused: bool = True,
        priority: Priority = Priority.INTERACTIVE,
        max_wait: float | None = None,
    ) -> Permit:
        max_wait = _check_max_wait(max_wait)
        line = await self._line(key, quota)
        now = self._now()
        if line.off:
            if now - line.told_at >= _RECHECK:
                line.need_check = True  # another process may have set a quota since
                line.kick()
            return _FreePermit(key)
        blocked = max(line.blocked_until, self._local_paused.get(key, 0.0)) - now
        if not wait_if_paused:
            left = max(
                line.blocked_until - now if line.blocked_kind == _PAUSED else 0.0,
                self._local_paused.get(key, 0.0) - now,
            )
            if left > 0:
                raise Paused(left)
        if max_wait is not None and blocked > max_wait:
            raise WaitExceeded(max_wait, blocked)  # paused, or blacked out, past the deadline
        if (
            self._fallback == "error"
            and line.outage_since is not None
            and now - line.outage_since >= self._outage_timeout
            and now - line.last_failure < 2 * _MAX_BACKOFF + 1.0
        ):
            # Redis has been away longer than callers wait for it: say so at once.
            raise _unavailable(None, self._outage_timeout)
        deadline = None if max_wait is None else now + max_wait
        waiter = line.enqueue(
            fail_fast=not wait_if_paused,
            interactive=priority is not Priority.BULK,
            max_wait=max_wait,
            deadline=deadline,
        )
        try:
            if max_wait is None or max_wait == 0:
                # max_wait=0: the one trip that carries the ask decides.
                kind, token, start = await waiter.future
            else:
                await asyncio.wait([waiter.future], timeout=max_wait)
                if not waiter.future.done():
                    line.abandon(waiter)
                    expected = waiter.expected
                    retry = None if expected is None else max(0.0, expected - self._now())
                    raise WaitExceeded(max_wait, retry)
                kind, token, start = waiter.future.result()
        except asyncio.CancelledError:
            line.abandon(waiter)
            await line.settle()
            raise
        if kind == "off":
            return _FreePermit(key)
        if kind == "redis":
            if (
                max_wait is not None
                and deadline is not None
                and start > max(deadline, self._now()) + _CLOCK_MARGIN
            ):
                # Reserved from a slot that cools past the deadline: known now, not then.
                line.give_back(token)
                line.kick(now=True)
                raise WaitExceeded(max_wait, start - self._now())
            try:
                roomy = await line.wait_room(start, deadline)
            except asyncio.CancelledError:
                line.give_back(token)
                await line.settle()
                raise
            if not roomy and max_wait is not None:
                line.give_back(token)
                at = line.next_room_at()
                raise WaitExceeded(max_wait, None if at is None else max(0.0, at - self._now()))
            line.take(token)
            self._recovered()
        return _RedisPermit(line, token)

    async def pause(self, key: str, seconds: float) -> None:
        now = self._now()
        self._local_paused[key] = max(self._local_paused.get(key, 0.0), now + seconds)
        bound = self._bound
        line = bound.lines.get(key) if bound is not None else None
        if line is not None:
            line.blocked_until = max(line.blocked_until, now + seconds)
            line.blocked_kind = _PAUSED
            line.fail_late(line.blocked_until, now)
            if line.mode == "local":
                line.serve_locally()
        names = self.keys(key)
        try:
            await self._run(
                "pause",
                [names["pause"], names["queue:i"], names["queue:b"]],
                [_micro(seconds), self._inbox_prefix(names), _micro(self._ticket_ttl)],
            )
        except LimiterUnavailableError as err:
            if self._fallback == "error":
                raise
            self._warn_outage(err)

    async def refused(self, key: str, quota: Quota, *, recover: bool = True) -> Quota | None:
        line = await self._line(key, quota)
        names = self.keys(key)
        limit, period_us, burst = _told(quota)
        try:
            reply = await self._run(
                "refused",
                [names["quota"], names["learn"]],
                [limit, period_us, burst, 1 if recover else 0, _ms(_SETTING_TTL)],
            )
        except LimiterUnavailableError as err:
            # Learn in this process alone: its ledger paces by the lower limit until
            # Redis answers again (and tells the group's).
            self._warn_outage(err)
            return self._refused_locally(line, quota)
        changed, limit, period_us, burst = (int(v) for v in reply)
        line.tell(limit, period_us, burst, self._now())
        if not changed:
            return None
        return line.effective(quota)

    def _refused_locally(self, line: _Line, quota: Quota) -> Quota | None:
        now = self._now()
        if line.off or now - line.refused_at < line.period:
            return None
        line.refused_at = now
        limit, period_us, burst = line.told or _told(quota)
        lowered = decreased(limit)
        if lowered == limit:
            return None
        line.tell(lowered, period_us, burst, line.told_at)
        return line.effective(quota)

    async def set_quota(self, key: str, quota: Quota | None) -> None:
        if quota is not None and not isinstance(quota, Quota):
            raise ConfigurationError(f"quota must be a livestats.Quota or None, not {shown(quota)}")
        names = self.keys(key)
        told = (0, 0, 0) if quota is None else _told(quota)
        value = "off" if quota is None else " ".join(str(v) for v in told)
        await self._run(
            "set_quota",
            [names["quota"], names["learn"], names["queue:i"], names["queue:b"]],
            [value, _ms(_SETTING_TTL), self._inbox_prefix(names), _micro(self._ticket_ttl)],
        )
        bound = await self._bind()
        line = bound.lines.get(key)
        if line is None:
            line = bound.lines[key] = _Line(self, key, quota or _UNSET, bound)
        now = self._now()
        if quota is None:
            told = (0, _micro(line.quota.period), 0)
        line.tell(*told, now)
        line.refused_at = -1e18
        if line.waiting():
            line.renew_at = 0.0  # this process's waiters too, at once
            line.kick()

    def effective_quota(self, key: str, quota: Quota) -> Quota | None:
        bound = self._bound
        line = bound.lines.get(key) if bound is not None else None
        return quota if line is None else line.effective(quota)

    # -- internals ---------------------------------------------------------------------

    def _ticket(self, interactive: bool) -> str:
        # The letter says the priority (the script queues by it); zero-padded: tickets
        # one script queues at the same instant sort in order.
        kind = "i" if interactive else "b"
        return f"{self._proc}.{kind}{next(self._seq):012x}"

    def _inbox_prefix(self, names: dict[str, str]) -> str:
        return names["inbox"][: -len(self._proc)]

    async def _line(self, key: str, quota: Quota) -> _Line:
        bound = await self._bind()
        line = bound.lines.get(key)
        if line is None:
            line = bound.lines[key] = _Line(self, key, quota, bound)
        elif line.quota != quota:
            line.quota = quota
        return line

    async def _bind(self) -> _Bound:
        """This loop's client and lines (redis-py's connections belong to one loop)."""
        loop = asyncio.get_running_loop()
        bound = self._bound
        if bound is not None and bound.loop is loop:
            return bound
        client = self._given if self._url is None else self._make_client()
        bound = self._bound = _Bound(loop, client, self._pop_timeout(client))
        bound.guard = close_at_loop_shutdown(lambda: self._close_bound(bound))
        await bound.guard.__anext__()
        return bound

    def _make_client(self) -> Any:
        from redis.asyncio import Redis
        from redis.asyncio.cluster import RedisCluster
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        assert self._url is not None
        # Bounded socket waits, so a call this limiter abandoned ends too; no retries of
        # redis-py's own: the pump retries, and knows what a retry means.
        options: dict[str, Any] = {
            "socket_timeout": 2 * self._redis_timeout,
            "socket_connect_timeout": self._redis_timeout,
        }
        if self._cluster:
            return RedisCluster.from_url(self._url, **options)
        return Redis.from_url(self._url, retry=Retry(NoBackoff(), 0), **options)

    def _pop_timeout(self, client: Any) -> float:
        """How long one BLPOP blocks: well within the client's own socket timeout."""
        kwargs: dict[str, Any] = {}
        pool = getattr(client, "connection_pool", None)
        if pool is not None:
            kwargs = getattr(pool, "connection_kwargs", {}) or {}
        elif callable(getattr(client, "get_connection_kwargs", None)):
            kwargs = client.get_connection_kwargs() or {}
        timeout = min(0.5, self._redis_timeout / 2)
        socket_timeout = kwargs.get("socket_timeout")
        if isinstance(socket_timeout, (int, float)) and socket_timeout > 0:
            timeout = min(timeout, socket_timeout / 2)
        return max(0.01, timeout)

    async def _close_bound(self, bound: _Bound) -> None:
        if self._bound is bound:
            self._bound = None
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            return
        if bound.loop is not running:
            return  # that loop is gone, and its sockets with it
        for line in list(bound.lines.values()):
            await line.close()
        bound.lines.clear()
        if self._url is not None and bound.client is not None:
            client, bound.client = bound.client, None
            try:
                await asyncio.wait_for(client.aclose(), self._redis_timeout)
            except (Exception, asyncio.TimeoutError):
                logger.debug("livestats: closing the Redis client failed", exc_info=True)

    async def _step(self, line: _Line, batch: _Batch) -> tuple[Sequence[Any], float]:
        """Run the step script for ``batch``; the answer and when it arrived (local time)."""
        limit, period_us, burst = _told(line.quota)
        # Slots this process took may cool for the longer of the periods it knows of.
        held = max(line.quota.period, line.period)
        sent_at = self._now()
        deadline = 0
        if line.offset is not None:
            # Never later, in server time, than the moment this call is abandoned.
            deadline = int((sent_at + line.offset + self._redis_timeout) * _US)
        recent = line._live_slots() or sent_at - line.active_at < held + self._attempt_timeout
        names = self.keys(line.key)
        args: list[str | int] = [
            limit,
            period_us,
            burst,
            _micro(self._lease),
            _micro(self._ticket_ttl),
            _micro(self._attempt_timeout),
            _micro(_GRACE),
            deadline,
            self._proc,
            self._inbox_prefix(names),
            line.known_run if recent else "",
            names["seen"][: -len(self._proc)],
            self._seen_ms(),
            _ms(_SETTING_TTL),
            _micro(held),
            AGED_SHARE,
            len(batch.releases),
        ]
        for token, (free_at, sent) in batch.releases:
            args += [token, _hold(free_at, sent_at), 1 if sent else 0]
        args.append(len(batch.adopts))
        for token, (adopted,) in batch.adopts:
            args += [token, -1 if adopted is None else _hold(adopted, sent_at)]
        args.append(len(batch.leaves))
        args += batch.leaves
        args.append(len(batch.asks))
        for waiter in batch.asks:
            args += [waiter.ticket, waiter.want]
        reply = await self._run("step", line.script_keys, args, line.bound)
        return reply, self._now()

    async def _run(
        self,
        name: str,
        keys: Sequence[str],
        args: Sequence[str | int],
        bound: _Bound | None = None,
    ) -> Any:
        if bound is None:
            bound = await self._bind()

        async def call() -> Any:
            script = bound.scripts.get(name)
            if script is None:
                script = bound.scripts[name] = bound.client.register_script(_SOURCES[name])
            return await script(keys=list(keys), args=list(args))

        return await self._call(call, self._redis_timeout)

    def _seen_ms(self) -> int:
        """How long a process stays "alive" in Redis after its last word (milliseconds)."""
        return round((3 * min(0.5, self._redis_timeout / 2) + 2 * self._redis_timeout) * 1000)

    async def _pop(self, line: _Line) -> Any:
        """The next message in this process's inbox for ``line``, or ``None`` after a block.

        Says first, now and then, that this process is alive: Redis hands slots only
        to waiters of processes it has heard from lately.
        """
        bound = line.bound
        timeout = bound.pop_timeout
        names = self.keys(line.key)
        now = self._now()
        beat = now - line.beat_at >= timeout
        if beat:
            line.beat_at = now

        async def call() -> Any:
            if beat:
                from redis.exceptions import ResponseError

                with contextlib.suppress(ResponseError):  # best effort (out of memory)
                    await bound.client.set(names["seen"], 1, px=self._seen_ms())
            got = await bound.client.blpop([names["inbox"]], timeout=timeout)
            return None if got is None else got[1]

        return await self._call(call, timeout + 2 * self._redis_timeout)

    async def _call(self, make: Callable[[], Awaitable[Any]], timeout: float) -> Any:
        """``make()`` in a task of its own, abandoned (never awaited) past ``timeout``.

        redis-py may swallow a cancellation, or wait forever on a server that never
        answers; the caller of this method returns in time either way.
        """
        from redis.exceptions import RedisError

        task = asyncio.ensure_future(make())
        try:
            done, _ = await asyncio.wait([task], timeout=timeout)
        except asyncio.CancelledError:
            _abandon(task)
            raise
        if not done:
            _abandon(task)
            raise LimiterUnavailableError(
                f"Redis did not answer within {timeout:g} s", retryable=False
            )
        try:
            return task.result()
        except (RedisError, OSError) as exc:
            raise LimiterUnavailableError(
                f"Redis failed: {type(exc).__name__}: {exc}", retryable=False
            ) from exc

    def _warn_outage(self, err: BaseException | None = None) -> None:
        if not self._outage:
            self._outage = True
            if self._fallback == "local":
                logger.warning(
                    "livestats: Redis is unavailable (%s); pacing with this process's own slots"
                    " until it is back (this process keeps to the quota, the group may not)",
                    err,
                )
            else:
                logger.warning("livestats: Redis is unavailable: %s", err)

    def _recovered(self) -> None:
        if self._outage:
            self._outage = False
            logger.warning("livestats: Redis is back; pacing with it again")


def _unavailable(err: BaseException | None, waited: float) -> LimiterUnavailableError:
    made = LimiterUnavailableError(
        f"Redis has been unavailable for {waited:g} s or more"
        + (f" ({err})" if err is not None else ""),
        retryable=False,
    )
    made.__cause__ = err
    return made


def _abandon(task: asyncio.Future[Any]) -> None:
    task.cancel()
    task.add_done_callback(_consume)


def _consume(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()  # retrieved, so asyncio does not log it as never retrieved


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _micro(seconds: float) -> int:
    return max(1, round(seconds * _US))


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


def _told(quota: Quota) -> tuple[int, int, int]:
    """``quota`` as the scripts carry it: limit, period in µs, burst (0: none)."""
    return quota.limit, _micro(quota.period), quota.burst or 0


def _check_max_wait(value: float | None) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise ConfigurationError(f"max_wait must be None or seconds from 0, not {shown(value)}")
    return None if value == math.inf else float(value)


def _hold(free_at: float, now: float) -> int:
    """Microseconds from ``now`` until ``free_at`` (0 if it has passed)."""
    return max(0, round((free_at - now) * _US))


_REDIS_SCHEMES = ("redis", "rediss", "unix")


def _check_redis_url(value: str) -> str:
    """A URL redis-py can connect to: ``redis://``, ``rediss://`` (TLS) or ``unix://``."""
    text = check_text(value, "url", error=ConfigurationError)
    try:
        url = URL(text)
    except ValueError:
        url = None
    if url is None or url.scheme not in _REDIS_SCHEMES or not (url.host or url.path.strip("/")):
        raise ConfigurationError(
            "url must be a Redis URL such as redis://localhost:6379/0 "
            f"(schemes: {', '.join(_REDIS_SCHEMES)}), not {text[:80]!r}"
        )
    return text
