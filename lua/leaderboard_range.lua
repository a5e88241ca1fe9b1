--[[
leaderboard_range.lua: a slice of the board, best first, with what competition
ranks need, read atomically.

KEYS[1]  the leaderboard, a sorted set where a higher score is better
ARGV[1]  start, a 0-based position counted from the top (integer >= 0)
ARGV[2]  stop, the last position included (integer >= start)

Returns  {higher, {member1, score1, member2, score2, ...}} where higher is the
         number of members with a strictly higher score than the first one
         returned (its competition rank is higher + 1); {0, {}} past the end.

Complexity: O(log N + M) for M members returned: ZCARD, ZREVRANGE and ZCOUNT.
]]

if #KEYS ~= 1 then
  return redis.error_reply('ERR leaderboard_range: expected 1 key (the board), got ' .. #KEYS)
end
local start = tonumber(ARGV[1])
local stop = tonumber(ARGV[2])
if not start or start < 0 or start % 1 ~= 0 then
  return redis.error_reply('ERR leaderboard_range: ARGV[1] (start) must be an integer >= 0')
end
if not stop or stop < start or stop % 1 ~= 0 then
  return redis.error_reply('ERR leaderboard_range: ARGV[2] (stop) must be an integer >= start')
end

-- Clamp to the board: Lua numbers are doubles, and a huge one would reach
-- ZREVRANGE as "1e+17", which Redis rejects as not an integer.
local size = redis.call('ZCARD', KEYS[1])
if start >= size then
  return {0, {}}
end
stop = math.min(stop, size - 1)
local items = redis.call('ZREVRANGE', KEYS[1], start, stop, 'WITHSCORES')
return {redis.call('ZCOUNT', KEYS[1], '(' .. items[2], '+inf'), items}
