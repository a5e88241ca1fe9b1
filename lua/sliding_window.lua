--[[
sliding_window.lua: an exact sliding-window (sliding log) rate limiter, atomic.

KEYS[1]  sorted set of admitted requests (member: a unique id, score: time in ms)
KEYS[2]  counter that makes members unique (same hash tag as KEYS[1])
ARGV[1]  window, in seconds (a number > 0)
ARGV[2]  maximum requests per window (an integer > 0)
ARGV[3]  optional: now in ms; empty means the server's clock (TIME), the default
ARGV[4]  optional: cost of this request (an integer from 1 to the maximum), default 1

Returns  {allowed (1/0), remaining, retry_after_ms, reset_ms}:
           remaining       requests still allowed in the window after this one
           retry_after_ms  0 if allowed, else when this request would be allowed
           reset_ms        when the whole limit is available again

A request counts when it is allowed; denied ones are not recorded. A request at
time t sees the admitted requests in (t - window, t].

Complexity: O(log N + M) for N requests in the window and M expiring ones.
]]

local function fail(message)
  return redis.error_reply('ERR sliding_window: ' .. message)
end
if #KEYS ~= 2 then return fail('expected 2 keys (log, sequence), got ' .. #KEYS) end
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
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window_ms)
local count = redis.call('ZCARD', KEYS[1])

if count + cost <= limit then
  local last = redis.call('INCRBY', KEYS[2], cost)
  for i = cost - 1, 0, -1 do
    redis.call('ZADD', KEYS[1], now, now .. '-' .. (last - i))  -- unique: the counter never repeats
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
