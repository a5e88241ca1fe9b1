#!lua
--[[
sliding_window_classic.lua: the classic twelve-line sliding-window rate limiter, kept
unchanged (below this header) so notebook 03 can show its weaknesses.

KEYS[1]  the limiter's sorted set (one member per admitted request, scored by time)
ARGV[1]  window, in seconds
ARGV[2]  maximum requests per window
ARGV[3]  now, in milliseconds, from the CALLER's clock

Returns  1 (allowed) or 0 (denied).

Complexity: O(log N + M): ZREMRANGEBYSCORE removes M old entries, ZCARD, ZADD.

Weaknesses (fixed in sliding_window.lua): trusts the caller's clock; the member
now .. '-' .. math.random(1000000) can collide and lose a request; answers only
yes or no; validates nothing.

Flags: the #!lua line declares it a writing script (no flags), so a server at
maxmemory refuses it before it runs.
]]
local key = KEYS[1]
local window = tonumber(ARGV[1])
local max_requests = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', key, 0, now - window * 1000)
local count = redis.call('ZCARD', key)
if count < max_requests then
  redis.call('ZADD', key, now, now .. '-' .. math.random(1000000))
  redis.call('PEXPIRE', key, window * 1000)
  return 1
end
return 0
