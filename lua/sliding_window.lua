#!lua
--[[
sliding_window.lua: an exact sliding-window (sliding log) rate limiter, atomic.

KEYS[1]  sorted set of admitted requests (score: time in ms; member: that time, a # and
         its place among the requests admitted in that ms: 1733400000123#1, #2, ...)
ARGV[1]  window, in seconds (a number from 0.001 to 31,622,400: 366 days)
ARGV[2]  maximum requests per window (an integer from 1 to 10,000: the log holds one entry each)
ARGV[3]  optional: now in ms (an integer up to 10^13); empty means the server's clock (TIME), the default
ARGV[4]  optional: cost of this request (an integer from 1 to the maximum), default 1

Returns  {allowed (1/0), remaining, retry_after_ms, reset_ms}:
           remaining       requests still allowed in the window after this one
           retry_after_ms  0 if allowed, else when this request would be allowed
           reset_ms        when the whole limit is available again

A request counts when it is allowed; denied ones are not recorded. A request at
time t sees the admitted requests scored after t - window, later ones included (a
caller whose clock runs behind others' sees their entries as still in the window). With
times that only move forward (the server's clock) that is exactly (t - window, t]; an
admission at a later time drops what left its window, which a caller whose clock runs
behind would still have counted. reset_ms on an admission is one window from now.

How it decides in one read: a request of cost C fits if fewer than limit - C + 1 entries
are in the window, that is if the (limit - C + 1)-th newest entry has left it (or does
not exist). A refusal reads two entries and writes nothing; an admission then removes
the entries that left the window, counts, and adds its own.

Members are unique without a second key: every entry of one ms is removed together (by
score), so the entries at a score s are always s#1 ... s#n, and a new one is s#(n+1). (The
#, not a dash: an older version of this script named members s-<counter>, and a log
written by both during a rolling deploy must not mix the two.)

Complexity: O(log N + M + C) for N requests in the window, M expiring ones and a cost
of C. N, M and C are at most 10,000 (MAX_LOG_LIMIT, helpers/bounds.py): a few ms at
worst, so no caller can stall the server for long.

Flags: a writing script (#!lua, no flags): a server at maxmemory refuses it before it
runs, and every argument is checked before the first write.
]]

local SCRIPT, KEY_COUNT, KEY_WORDS = 'sliding_window', 1, 'key (the log)'
local PERIOD_WORD, LIMIT_WORD = 'window', 'maximum requests'
local MAX_LIMIT = 10000  -- MAX_LOG_LIMIT: one entry per admitted request
--!include ratelimit_arguments.lua

local window_ms = math.floor(period_s * 1000 + 0.5)  -- to the nearest ms: 1.001 s is 1001 ms
if window_ms < 1 then return fail('ARGV[1] (window in seconds) must be at least 0.001, got ' .. tostring(ARGV[1])) end
local log, since = KEYS[1], now - window_ms  -- entries scored at or before since have left the window

local index = cost - limit - 1  -- the (limit - cost + 1)-th newest entry
local decisive = redis.call('ZRANGE', log, index, index, 'WITHSCORES')
if decisive[2] then
  local at = tonumber(decisive[2])
  if at > since then  -- denied: wait until that entry leaves the window
    local newest = tonumber(redis.call('ZRANGE', log, '-1', '-1', 'WITHSCORES')[2])
    local remaining = 0  -- a request of cost 1 is refused only when the window is full
    if cost > 1 then remaining = math.max(limit - redis.call('ZCOUNT', log, '(' .. since, '+inf'), 0) end
    return {0, remaining, math.max(at + window_ms - now, 1), math.max(newest + window_ms - now, 1)}
  end
end

redis.call('ZREMRANGEBYSCORE', log, '-inf', since)
local count = redis.call('ZCARD', log)
local taken = redis.call('ZCOUNT', log, now_text, now_text)  -- this ms's entries: now#1 ... now#taken
if cost == 1 then
  redis.call('ZADD', log, now_text, now_text .. '#' .. (taken + 1))
else
  local members = {}  -- ZADD takes them 1,000 at a time
  for i = 1, cost do
    members[#members + 1] = now_text
    members[#members + 1] = now_text .. '#' .. (taken + i)
    if #members == 2000 or i == cost then
      redis.call('ZADD', log, unpack(members))
      members = {}
    end
  end
end
redis.call('PEXPIRE', log, window_ms)
return {1, limit - count - cost, 0, window_ms}
