#!lua flags=no-writes
--[[
leaderboard_range.lua: a slice of the board, best first, with what competition
ranks need, read atomically.

KEYS[1]  the leaderboard, a sorted set where a higher score is better
ARGV[1]  start, a 0-based position counted from the top (an integer from 0 to 10^15)
ARGV[2]  stop, the last position included (an integer >= start; at most 10,000 positions in all)

Returns  {higher, {member1, score1, member2, score2, ...}} where higher is the
         number of members with a strictly higher score than the first one
         returned (its competition rank is higher + 1); {0, {}} past the end.

Complexity: O(log N + M) for M members returned: ZCARD, ZRANGE ... REV and ZCOUNT;
M is at most MAX_RESULTS (10,000, helpers/bounds.py), so one call stays in milliseconds.

Flags: no-writes (it runs on a replica, and on a server at maxmemory).
]]

if #KEYS ~= 1 then
  return redis.error_reply('ERR leaderboard_range: expected 1 key (the board), got ' .. #KEYS)
end
local MAX_POSITION, MAX_RESULTS = 1000000000000000, 10000  -- helpers/bounds.py
--!include integer.lua
local start = integer(ARGV[1], 0, MAX_POSITION)
if not start then
  return redis.error_reply('ERR leaderboard_range: ARGV[1] (start) must be an integer from 0 to 10^15')
end
local stop = integer(ARGV[2], start, start + MAX_RESULTS - 1)
if not stop then
  return redis.error_reply('ERR leaderboard_range: ARGV[2] (stop) must be an integer from start to start + 9999')
end

-- Clamp to the board: Lua numbers are doubles, and a huge one would reach
-- ZRANGE as "1e+17", which Redis rejects as not an integer.
local size = redis.call('ZCARD', KEYS[1])
if start >= size then
  return {0, {}}
end
stop = math.min(stop, size - 1)
local items = redis.call('ZRANGE', KEYS[1], start, stop, 'REV', 'WITHSCORES')  -- ZREVRANGE, deprecated since 6.2
return {redis.call('ZCOUNT', KEYS[1], '(' .. items[2], '+inf'), items}
