#!lua flags=no-writes
--[[
leaderboard_around.lua: a member and its neighbours, best first, read atomically.

KEYS[1]  the leaderboard, a sorted set where a higher score is better
ARGV[1]  the member, a non-empty string
ARGV[2]  radius, how many neighbours either side (an integer from 0 to 4,999)

Returns  nil when the member is not on the board, else
         {start, higher, {member1, score1, member2, score2, ...}} where start is
         the 0-based position of the first member returned and higher the number
         of members with a strictly higher score than it (its competition rank
         is higher + 1).

Complexity: O(log N + M) for M = 2 * radius + 1 members: ZREVRANK, ZCARD, ZREVRANGE, ZCOUNT;
M is below MAX_RESULTS (10,000, helpers/bounds.py).

Flags: no-writes (it runs on a replica, and on a server at maxmemory).
]]

if #KEYS ~= 1 then
  return redis.error_reply('ERR leaderboard_around: expected 1 key (the board), got ' .. #KEYS)
end
local member = ARGV[1]
if member == nil or member == '' then
  return redis.error_reply('ERR leaderboard_around: ARGV[1] (member) must be a non-empty string')
end
local MAX_RADIUS = 4999  -- (MAX_RESULTS - 1) / 2, helpers/bounds.py
local radius = ARGV[2]
if type(radius) ~= 'string' or not string.match(radius, '^%d+$') or #radius > 4 or tonumber(radius) > MAX_RADIUS then
  return redis.error_reply('ERR leaderboard_around: ARGV[2] (radius) must be an integer from 0 to 4999')
end
radius = tonumber(radius)

local position = redis.call('ZREVRANK', KEYS[1], member)
if not position then
  return nil
end
-- Clamp to the board: a huge radius would reach ZREVRANGE as "1e+17".
radius = math.min(radius, redis.call('ZCARD', KEYS[1]))
local start = math.max(0, position - radius)
local items = redis.call('ZREVRANGE', KEYS[1], start, position + radius, 'WITHSCORES')
return {start, redis.call('ZCOUNT', KEYS[1], '(' .. items[2], '+inf'), items}
