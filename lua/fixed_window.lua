--[[
fixed_window.lua: a fixed-window counter rate limiter, atomic. Cheapest of all (one
small hash per key), but a burst at the end of one window and another at the start
of the next can let through up to twice the limit within one window's length.

KEYS[1]  hash {window = index of the current window, count = requests admitted in it}
ARGV[1]  window, in seconds (a number > 0)
ARGV[2]  maximum requests per window (an integer > 0)
ARGV[3]  optional: now in ms; empty means the server's clock (TIME)
ARGV[4]  optional: cost of this request (an integer from 1 to the maximum), default 1

Returns  {allowed (1/0), remaining, retry_after_ms, reset_ms}; reset_ms is when the
         current window ends and the count starts again from zero.

Complexity: O(1).
]]

local function fail(message)
  return redis.error_reply('ERR fixed_window: ' .. message)
end
if #KEYS ~= 1 then return fail('expected 1 key, got ' .. #KEYS) end
local window_s = tonumber(ARGV[1])
if not window_s or window_s <= 0 or window_s ~= window_s or window_s == math.huge then
  return fail('ARGV[1] (window in seconds) must be a number > 0, got ' .. tostring(ARGV[1]))
end
local limit = tonumber(ARGV[2])
if not limit or limit < 1 or limit % 1 ~= 0 then
  return fail('ARGV[2] (maximum requests) must be an integer > 0, got ' .. tostring(ARGV[2]))
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
    return fail('ARGV[4] (cost) must be an integer from 1 to the maximum, got ' .. tostring(ARGV[4]))
  end
end

local window_ms = math.floor(window_s * 1000 + 0.5)  -- to the nearest ms: 1.001 s is 1001 ms
if window_ms < 1 then return fail('ARGV[1] (window in seconds) must be at least 0.001, got ' .. tostring(ARGV[1])) end
local index = math.floor(now / window_ms)
local window_end = (index + 1) * window_ms
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
