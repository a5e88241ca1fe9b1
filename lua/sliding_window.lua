#!lua
--[[
sliding_window.lua: an exact sliding-window (sliding log) rate limiter, atomic.

KEYS[1]  sorted set of admitted requests (member: a unique id, score: time in ms)
KEYS[2]  counter that makes members unique (same hash tag as KEYS[1])
ARGV[1]  window, in seconds (a number from 0.001 to 31,622,400: 366 days)
ARGV[2]  maximum requests per window (an integer from 1 to 10,000: the log holds one entry each)
ARGV[3]  optional: now in ms (an integer up to 10^13); empty means the server's clock (TIME), the default
ARGV[4]  optional: cost of this request (an integer from 1 to the maximum), default 1

Returns  {allowed (1/0), remaining, retry_after_ms, reset_ms}:
           remaining       requests still allowed in the window after this one
           retry_after_ms  0 if allowed, else when this request would be allowed
           reset_ms        when the whole limit is available again

A request counts when it is allowed; denied ones are not recorded. A request at
time t sees the admitted requests in (t - window, t].

Complexity: O(log N + M + C) for N requests in the window, M expiring ones and a cost
of C. N, M and C are at most 10,000 (MAX_LOG_LIMIT, helpers/bounds.py): a few ms at
worst, so no caller can stall the server for long.

Flags: a writing script (#!lua, no flags): a server at maxmemory refuses it before it
runs, and every argument is checked before the first write.
]]

local SCRIPT, KEY_COUNT, KEY_WORDS = 'sliding_window', 2, 'keys (log, sequence)'
local PERIOD_WORD, LIMIT_WORD = 'window', 'maximum requests'
local MAX_LIMIT = 10000  -- MAX_LOG_LIMIT: one entry per admitted request
--!include ratelimit_arguments.lua
local window_s = period_s

local window_ms = math.floor(window_s * 1000 + 0.5)  -- to the nearest ms: 1.001 s is 1001 ms
if window_ms < 1 then return fail('ARGV[1] (window in seconds) must be at least 0.001, got ' .. tostring(ARGV[1])) end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window_ms)
local count = redis.call('ZCARD', KEYS[1])

if count + cost <= limit then
  local last = redis.call('INCRBY', KEYS[2], cost)
  local members = {}  -- unique: the counter never repeats; ZADD takes them 1,000 at a time
  for i = cost - 1, 0, -1 do
    members[#members + 1] = now
    members[#members + 1] = now .. '-' .. (last - i)
    if #members == 2000 or i == 0 then
      redis.call('ZADD', KEYS[1], unpack(members))
      members = {}
    end
  end
  redis.call('PEXPIRE', KEYS[1], window_ms)
  redis.call('PEXPIRE', KEYS[2], window_ms)
  local newest = now
  return {1, limit - count - cost, 0, newest + window_ms - now}
end

-- denied: wait until enough of the oldest entries leave the window
local must_leave = count + cost - limit
local entry = redis.call('ZRANGE', KEYS[1], must_leave - 1, must_leave - 1, 'WITHSCORES')
local newest = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
local retry_after = tonumber(entry[2]) + window_ms - now
local reset = tonumber(newest[2]) + window_ms - now
return {0, math.max(limit - count, 0), math.max(retry_after, 1), math.max(reset, 1)}
