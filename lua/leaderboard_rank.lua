#!lua flags=no-writes
--[[
leaderboard_rank.lua: a member's competition rank, read atomically: a rank's work and no more.

KEYS[1]  the leaderboard, a sorted set where a higher score is better
ARGV[1]  the member, a non-empty string

Returns  nil when the member is not on the board, else {score, higher}:
           score   the member's score, as Redis stores it
           higher  members with a strictly higher score (competition rank = higher + 1)

Complexity: O(log N), one ZSCORE and one ZCOUNT, and no other client can change
the board between them (leaderboard_standing adds the lower count and the size,
for the percentile).

Flags: no-writes (it runs on a replica, and on a server at maxmemory).
]]

if #KEYS ~= 1 then
  return redis.error_reply('ERR leaderboard_rank: expected 1 key (the board), got ' .. #KEYS)
end
local member = ARGV[1]
if member == nil or member == '' then
  return redis.error_reply('ERR leaderboard_rank: ARGV[1] (member) must be a non-empty string')
end

local score = redis.call('ZSCORE', KEYS[1], member)
if not score then
  return nil
end
return {score, redis.call('ZCOUNT', KEYS[1], '(' .. score, '+inf')}
