#!lua
--[[
gcra.lua: the generic cell rate algorithm, a token bucket kept as one number: the
theoretical arrival time (TAT) of the next request. O(1) memory per key, and
smooth: after a burst (the limit, unless ARGV[5] says less), requests are let through
at the sustained rate (limit / period) instead of all at once when a window resets.

KEYS[1]  string holding the TAT, in ms
ARGV[1]  period, in seconds (a number from 0.001 to 31,622,400: 366 days): limit requests per period
ARGV[2]  limit: requests per period (an integer from 1 to 10^9); the emission interval,
         one request's worth of time, is period / limit
ARGV[3]  optional: now in ms (an integer up to 10^13); empty means the server's clock (TIME)
ARGV[4]  optional: cost of this request (an integer from 1 to the limit), default 1
ARGV[5]  optional: burst, the most requests let through at once after a quiet spell (an
         integer from the cost to 10^9), default the limit; the tolerance is burst x interval,
         and a quiet spell of that long refills it

Returns  {allowed (1/0), remaining, retry_after_ms, reset_ms}; reset_ms is when the
         bucket is full again.

Complexity: O(1).

Flags: a writing script (#!lua, no flags): a server at maxmemory refuses it before it
runs, and every argument is checked before the first write.
]]

local SCRIPT, KEY_COUNT, KEY_WORDS = 'gcra', 1, 'key'
local PERIOD_WORD, LIMIT_WORD = 'period', 'limit'
local MAX_LIMIT = 1000000000  -- MAX_LIMIT
--!include ratelimit_arguments.lua

local period_ms = period_s * 1000
if period_ms < 1 then return fail('ARGV[1] (period in seconds) must be at least 0.001, got ' .. tostring(ARGV[1])) end
local burst = limit
if ARGV[5] ~= nil and ARGV[5] ~= '' then
  burst = integer(ARGV[5], cost, MAX_LIMIT)
  if not burst then
    return fail('ARGV[5] (burst) must be an integer from the cost to ' .. MAX_LIMIT .. ', got ' .. tostring(ARGV[5]))
  end
end
local interval = period_ms / limit  -- the emission interval: one request's worth of time
local tolerance = burst * interval  -- how far ahead of now the TAT may run: the burst
local EPSILON = 0.01  -- ms: interval is rarely whole, and at 1.7e12 ms a double's step is 0.0002 ms
local tat = math.max(tonumber(redis.call('GET', KEYS[1])) or now, now)
local new_tat = tat + cost * interval
local allow_at = new_tat - tolerance

local function requests_left(at)  -- whole requests that fit between at - tolerance and now
  return math.max(math.floor((now - (at - tolerance) + EPSILON) / interval), 0)
end
if now < allow_at - EPSILON then
  return {0, requests_left(tat), math.ceil(allow_at - now - EPSILON), math.ceil(tat - now - EPSILON)}
end
-- %.17g keeps every digit of the double: rounding the stored time would lose part of a request
redis.call('SET', KEYS[1], string.format('%.17g', new_tat), 'PX', math.max(math.ceil(new_tat - now), 1))
return {1, requests_left(new_tat), 0, math.ceil(new_tat - now - EPSILON)}
