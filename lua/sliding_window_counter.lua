#!lua
--[[
sliding_window_counter.lua: the sliding-window counter, an approximation of the
sliding log in O(1) memory: the previous window's count, weighted by how much of it
still overlaps the sliding window, plus the current window's count.

KEYS[1]  hash {window = index of the current window, current = its count,
         previous = the count of the window before it}
ARGV[1]  window, in seconds (a number from 0.001 to 31,622,400: 366 days)
ARGV[2]  maximum requests per window (an integer from 1 to 10^9)
ARGV[3]  optional: now in ms (an integer up to 10^13); empty means the server's clock (TIME)
ARGV[4]  optional: cost of this request (an integer from 1 to the maximum), default 1

Returns  {allowed (1/0), remaining, retry_after_ms, reset_ms}.

It assumes the previous window's requests were spread evenly: it can admit a few
more or fewer than the exact sliding log. Complexity: O(1).

Flags: a writing script (#!lua, no flags): a server at maxmemory refuses it before it
runs, and every argument is checked before the first write.
]]

local SCRIPT, KEY_COUNT, KEY_WORDS = 'sliding_window_counter', 1, 'key'
local PERIOD_WORD, LIMIT_WORD = 'window', 'maximum requests'
local MAX_LIMIT = 1000000000  -- MAX_LIMIT
--!include ratelimit_arguments.lua
--!include window.lua
local state = redis.call('HMGET', KEYS[1], 'window', 'current', 'previous')
local stored, current, previous = tonumber(state[1]), tonumber(state[2]) or 0, tonumber(state[3]) or 0
if stored == index - 1 then
  previous, current = current, 0
elseif stored ~= index then
  previous, current = 0, 0
end
local overlap = 1 - (now - index * window_ms) / window_ms  -- share of the previous window still inside
local estimate = previous * overlap + current

if estimate + cost <= limit then
  current = current + cost
  redis.call('HSET', KEYS[1], 'window', index, 'current', current, 'previous', previous)
  redis.call('PEXPIRE', KEYS[1], window_end + window_ms - now)
  local reset = window_end + window_ms - now
  return {1, math.floor(limit - estimate - cost), 0, reset}
end

-- denied: when does the estimate leave room for this request?
local retry_after
local room = limit - current - cost
if previous > 0 and room >= 0 then
  -- later in this window the previous count weighs less: previous * (1 - f) <= room
  local f = 1 - room / previous
  retry_after = math.ceil(index * window_ms + f * window_ms - now)
else
  -- only in the next window, once this window's count (then "previous") weighs little enough
  local f = 0
  if current > 0 then f = math.max(0, 1 - (limit - cost) / current) end
  retry_after = math.ceil(window_end + f * window_ms - now)
end
local reset = window_end - now
if current > 0 then reset = window_end + window_ms - now end
return {0, math.max(math.floor(limit - estimate), 0), math.max(retry_after, 1), reset}
