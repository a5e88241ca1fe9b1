#!lua
--[[
fixed_window.lua: a fixed-window counter rate limiter, atomic. Cheapest of all (one
small hash per key), but a burst at the end of one window and another at the start
of the next can let through up to twice the limit within one window's length.

KEYS[1]  hash {window = index of the current window, count = requests admitted in it}
ARGV[1]  window, in seconds (a number from 0.001 to 31,622,400: 366 days)
ARGV[2]  maximum requests per window (an integer from 1 to 10^9)
ARGV[3]  optional: now in ms (an integer up to 10^13); empty means the server's clock (TIME)
ARGV[4]  optional: cost of this request (an integer from 1 to the maximum), default 1

Returns  {allowed (1/0), remaining, retry_after_ms, reset_ms}; reset_ms is when the
         current window ends and the count starts again from zero.

Complexity: O(1).

Flags: a writing script (#!lua, no flags): a server at maxmemory refuses it before it
runs, and every argument is checked before the first write.
]]

local SCRIPT, KEY_COUNT, KEY_WORDS = 'fixed_window', 1, 'key'
local PERIOD_WORD, LIMIT_WORD = 'window', 'maximum requests'
local MAX_LIMIT = 1000000000  -- MAX_LIMIT
--!include ratelimit_arguments.lua
--!include window.lua
local state = redis.call('HMGET', KEYS[1], 'window', 'count')
local count = 0
if tonumber(state[1]) == index then
  count = tonumber(state[2]) or 0
end
if count + cost <= limit then
  redis.call('HSET', KEYS[1], 'window', index, 'count', count + cost)
  redis.call('PEXPIRE', KEYS[1], window_end - now + window_ms)  -- cleanup only: the index decides
  return {1, limit - count - cost, 0, window_end - now}
end
return {0, limit - count, window_end - now, window_end - now}
