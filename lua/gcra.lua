--[[
gcra.lua: the generic cell rate algorithm, a token bucket kept as one number: the
theoretical arrival time (TAT) of the next request. O(1) memory per key, and
smooth: after a burst of the full limit, requests are let through at the
sustained rate (limit / period) instead of all at once when a window resets.

KEYS[1]  string holding the TAT, in ms
ARGV[1]  period, in seconds (a number > 0): the limit refills fully over it
ARGV[2]  limit: requests per period, and the largest burst (an integer > 0)
ARGV[3]  optional: now in ms; empty means the server's clock (TIME)
ARGV[4]  optional: cost of this request (an integer from 1 to the limit), default 1

Returns  {allowed (1/0), remaining, retry_after_ms, reset_ms}; reset_ms is when the
         bucket is full again.

Complexity: O(1).
]]

local function fail(message)
  return redis.error_reply('ERR gcra: ' .. message)
end
if #KEYS ~= 1 then return fail('expected 1 key, got ' .. #KEYS) end
local period_s = tonumber(ARGV[1])
if not period_s or period_s <= 0 or period_s ~= period_s or period_s == math.huge then
  return fail('ARGV[1] (period in seconds) must be a number > 0, got ' .. tostring(ARGV[1]))
end
local limit = tonumber(ARGV[2])
if not limit or limit < 1 or limit % 1 ~= 0 then
  return fail('ARGV[2] (limit) must be an integer > 0, got ' .. tostring(ARGV[2]))
end
local now
if ARGV[3] == nil or ARGV[3] == '' then
  local time = redis.call('TIME')
  now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
else
  now = tonumber(ARGV[3])
  if not now or now < 0 or now % 1 ~= 0 then
    return fail('ARGV[3] (now in ms) must be empty or an integer >= 0, got ' .. tostring(ARGV[3]))
  end
end
local cost = 1
if ARGV[4] ~= nil and ARGV[4] ~= '' then
  cost = tonumber(ARGV[4])
  if not cost or cost < 1 or cost > limit or cost % 1 ~= 0 then
    return fail('ARGV[4] (cost) must be an integer from 1 to the limit, got ' .. tostring(ARGV[4]))
  end
end

local period_ms = period_s * 1000
if period_ms < 1 then return fail('ARGV[1] (period in seconds) must be at least 0.001, got ' .. tostring(ARGV[1])) end
local interval = period_ms / limit  -- one request's worth of time
local EPSILON = 0.01  -- ms: interval is rarely whole, and at 1.7e12 ms a double's step is 0.0002 ms
local tat = math.max(tonumber(redis.call('GET', KEYS[1])) or now, now)
local new_tat = tat + cost * interval
local allow_at = new_tat - period_ms

local function requests_left(at)  -- whole requests that fit between at - period and now
  return math.max(math.floor((now - (at - period_ms)) / interval + EPSILON), 0)
end
if now < allow_at - EPSILON then
  return {0, requests_left(tat), math.ceil(allow_at - now - EPSILON), math.ceil(tat - now - EPSILON)}
end
-- %.17g keeps every digit of the double: rounding the stored time would lose part of a request
redis.call('SET', KEYS[1], string.format('%.17g', new_tat), 'PX', math.max(math.ceil(new_tat - now), 1))
return {1, requests_left(new_tat), 0, math.ceil(new_tat - now - EPSILON)}
