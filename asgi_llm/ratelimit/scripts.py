"""The two Redis scripts: admit (check everything, then take everything) and settle.

Why our own scripts and not `limits`' strategies on the same Redis:
- `limits` checks one window per call: a request under two rules of two windows each is four
  round trips, and not atomic as a whole (a request refused by the third window has already
  taken from the first two, or, with test-then-hit, two replicas both pass the test);
- a reservation cannot be settled: there is no refund, and the fixed window's `incr` counts
  refused hits too, so one oversized token reservation would eat the window;
- its moving window pushes one list entry per unit of cost (`lpush` x cost) and takes the
  timestamp from the caller's clock (replica clock skew moves the window).
Here every strategy reads Redis' own clock (`TIME`), a moving-window entry is one sorted-set
member whatever its cost ("<amount>|<id>", a running sum beside it), and one `EVALSHA`
decides a whole request. The algorithms are those of `memory.py`, line for line.

All keys of a call share one hash tag (the prefix), so the scripts also run on a cluster.
Needs Redis >= 6.0 (`SET ... KEEPTTL`).
"""

from __future__ import annotations

_COMMON = r"""
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local strategy = ARGV[1]
local rid = ARGV[2]

local function count(key)
  return tonumber(redis.call('GET', key)) or 0
end

local function incr(key, amount, ttl)
  redis.call('INCRBY', key, amount)
  redis.call('PEXPIRE', key, ttl)
end

local function moving_used(key, exp)
  local z, s = key .. ':z', key .. ':s'
  local cutoff = now - exp
  local total = tonumber(redis.call('GET', s)) or 0
  local old = redis.call('ZRANGEBYSCORE', z, '-inf', cutoff)
  if #old > 0 then
    for _, m in ipairs(old) do
      total = total - tonumber(string.match(m, '^(%d+)|'))
    end
    if total < 0 then total = 0 end
    redis.call('ZREMRANGEBYSCORE', z, '-inf', cutoff)
    redis.call('SET', s, total, 'KEEPTTL')
  end
  return total
end
"""

ADMIT = (
    _COMMON
    + r"""
local pos = 3
local windows, slots, budgets = {}, {}, {}
local n = tonumber(ARGV[pos]); pos = pos + 1
for i = 1, n do
  windows[i] = {key = ARGV[pos], limit = tonumber(ARGV[pos + 1]), exp = tonumber(ARGV[pos + 2]),
                cost = tonumber(ARGV[pos + 3])}
  pos = pos + 4
end
n = tonumber(ARGV[pos]); pos = pos + 1
for i = 1, n do
  slots[i] = {key = ARGV[pos], limit = tonumber(ARGV[pos + 1]), lease = tonumber(ARGV[pos + 2])}
  pos = pos + 3
end
n = tonumber(ARGV[pos]); pos = pos + 1
for i = 1, n do
  budgets[i] = {key = ARGV[pos], member = ARGV[pos + 1], limit = tonumber(ARGV[pos + 2]),
                ends = tonumber(ARGV[pos + 3])}
  pos = pos + 4
end

local function used(w)
  local idx = math.floor(now / w.exp)
  if strategy == 'fixed-window' then
    return count(w.key .. ':' .. idx)
  elseif strategy == 'sliding-window-counter' then
    local elapsed = now - idx * w.exp
    local previous = count(w.key .. ':' .. (idx - 1))
    return math.floor(previous * (w.exp - elapsed) / w.exp) + count(w.key .. ':' .. idx)
  end
  return moving_used(w.key, w.exp)
end

local function reset(w)
  if strategy == 'moving-window' then
    local oldest = redis.call('ZRANGE', w.key .. ':z', 0, 0, 'WITHSCORES')
    if oldest[2] then return tonumber(oldest[2]) + w.exp - now end
    return w.exp
  end
  return (math.floor(now / w.exp) + 1) * w.exp - now
end

local function retry(w, u)
  local exp = w.exp
  local idx = math.floor(now / exp)
  if strategy == 'fixed-window' then
    return (idx + 1) * exp - now
  elseif strategy == 'sliding-window-counter' then
    local elapsed = now - idx * exp
    local current = count(w.key .. ':' .. idx)
    local previous = count(w.key .. ':' .. (idx - 1))
    local room = w.limit - w.cost - current
    if room >= 0 then
      if previous == 0 then return 1 end
      local needed = exp - math.floor((room + 1) * exp / previous) + 1
      return math.max(1, needed - elapsed)
    end
    local rest = exp - elapsed
    if current == 0 then return math.max(1, rest) end
    local needed = exp - math.floor((w.limit - w.cost + 1) * exp / current) + 1
    return math.max(1, rest + math.max(0, needed))
  end
  local entries = redis.call('ZRANGE', w.key .. ':z', 0, -1, 'WITHSCORES')
  local freed = 0
  for i = 1, #entries, 2 do
    freed = freed + tonumber(string.match(entries[i], '^(%d+)|'))
    if u - freed + w.cost <= w.limit then
      return math.max(1, tonumber(entries[i + 1]) + exp - now)
    end
  end
  return exp
end

local function states(u, taken, out)
  for i, w in ipairs(windows) do
    local after = u[i]
    if taken then after = after + w.cost end
    out[#out + 1] = math.max(0, w.limit - after)
    out[#out + 1] = reset(w)
  end
  return out
end

local u = {}
for i, w in ipairs(windows) do u[i] = used(w) end

for i, b in ipairs(budgets) do
  local spent = tonumber(redis.call('HGET', b.key, b.member)) or 0
  if spent >= b.limit then
    return states(u, false, {0, now, 3, i - 1, math.max(1, b.ends - now)})
  end
end
local failed, wait = -1, 0
for i, w in ipairs(windows) do
  if u[i] + w.cost > w.limit then
    if failed < 0 then failed = i - 1 end
    wait = math.max(wait, retry(w, u[i]))
  end
end
if failed >= 0 then
  return states(u, false, {0, now, 1, failed, wait})
end
for i, s in ipairs(slots) do
  redis.call('ZREMRANGEBYSCORE', s.key, '-inf', now)
  if redis.call('ZCARD', s.key) >= s.limit then
    return states(u, false, {0, now, 2, i - 1, 1000})
  end
end

for _, w in ipairs(windows) do
  if strategy == 'moving-window' then
    local z, s = w.key .. ':z', w.key .. ':s'
    redis.call('ZADD', z, now, w.cost .. '|' .. rid)
    redis.call('INCRBY', s, w.cost)
    redis.call('PEXPIRE', z, w.exp + 1000)
    redis.call('PEXPIRE', s, w.exp + 1000)
  else
    local idx = math.floor(now / w.exp)
    incr(w.key .. ':' .. idx, w.cost, (idx + 2) * w.exp - now)
  end
end
for _, s in ipairs(slots) do
  redis.call('ZADD', s.key, now + s.lease, rid)
  redis.call('PEXPIRE', s.key, s.lease + 1000)
end
return states(u, true, {1, now, 0, -1, 0})
"""
)

SETTLE = (
    _COMMON
    + r"""
local at = tonumber(ARGV[3])
local pos = 4
local n = tonumber(ARGV[pos]); pos = pos + 1
for _ = 1, n do
  local key, exp = ARGV[pos], tonumber(ARGV[pos + 1])
  local reserved, actual = tonumber(ARGV[pos + 2]), tonumber(ARGV[pos + 3])
  pos = pos + 4
  local delta = actual - reserved
  if strategy == 'moving-window' then
    local z, s = key .. ':z', key .. ':s'
    moving_used(key, exp)
    local old = reserved .. '|' .. rid
    local score = redis.call('ZSCORE', z, old)
    if score then
      redis.call('ZREM', z, old)
      if actual > 0 then
        -- the ZREM may have emptied (so deleted) the set: ZADD would recreate it without a TTL
        redis.call('ZADD', z, score, actual .. '|' .. rid)
        redis.call('PEXPIRE', z, exp + 1000)
      end
      local total = redis.call('INCRBY', s, delta)
      if total < 0 then redis.call('SET', s, 0, 'KEEPTTL') end
      redis.call('PEXPIRE', s, exp + 1000)
    elseif delta > 0 then
      redis.call('ZADD', z, now, delta .. '|' .. rid .. '+')
      redis.call('INCRBY', s, delta)
      redis.call('PEXPIRE', z, exp + 1000)
      redis.call('PEXPIRE', s, exp + 1000)
    end
  elseif delta > 0 then
    local idx = math.floor(now / exp)
    incr(key .. ':' .. idx, delta, (idx + 2) * exp - now)
  elseif delta < 0 then
    local k = key .. ':' .. math.floor(at / exp)
    local value = tonumber(redis.call('GET', k))
    if value then
      redis.call('SET', k, math.max(0, value + delta), 'KEEPTTL')
    end
  end
end
n = tonumber(ARGV[pos]); pos = pos + 1
for _ = 1, n do
  redis.call('ZREM', ARGV[pos], rid)
  pos = pos + 1
end
n = tonumber(ARGV[pos]); pos = pos + 1
for _ = 1, n do
  local key, member, micros, ends = ARGV[pos], ARGV[pos + 1], tonumber(ARGV[pos + 2]),
                                    tonumber(ARGV[pos + 3])
  pos = pos + 4
  if micros > 0 then
    redis.call('HINCRBY', key, member, micros)
    redis.call('PEXPIREAT', key, ends + 86400000)
  end
end
return now
"""
)

__all__ = ["ADMIT", "SETTLE"]
