#!lua flags=no-writes
--[[
leaderboard_standing.lua: where one member stands on a leaderboard, read atomically.

KEYS[1]  the leaderboard, a sorted set where a higher score is better
ARGV[1]  the member, a non-empty string

Returns  nil when the member is not on the board, else {score, higher, lower, total}:
           score   the member's score, as Redis stores it
           higher  members with a strictly higher score (competition rank = higher + 1)
           lower   members with a strictly lower score (for the percentile)
           total   members on the board

Complexity: O(log N), one ZSCORE, two ZCOUNT and one ZCARD, and no other client
can change the board between them.

Flags: no-writes (it runs on a replica, and on a server at maxmemory).
]]

if #KEYS ~= 1 then
  return redis.error_reply('ERR leaderboard_standing: expected 1 key (the board), got ' .. #KEYS)
end
local member = ARGV[1]
if member == nil or member == '' then
  return redis.error_reply('ERR leaderboard_standing: ARGV[1] (member) must be a non-empty string')
end

local score = redis.call('ZSCORE', KEYS[1], member)
if not score then
  return nil
end
local higher = redis.call('ZCOUNT', KEYS[1], '(' .. score, '+inf')
local lower = redis.call('ZCOUNT', KEYS[1], '-inf', '(' .. score)
return {score, higher, lower, redis.call('ZCARD', KEYS[1])}
