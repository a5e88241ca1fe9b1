#!lua
--[[
write_then_spin.lua: a deliberately slow WRITING script for notebook 04's
UNKILLABLE lesson. It adds one member to a sorted set, then spins for ARGV[1]
milliseconds. Once it has written, SCRIPT KILL cannot stop it (the server
answers UNKILLABLE: stopping it halfway would leave half a script applied),
so past busy-reply-threshold the only ways out are to wait for it or
SHUTDOWN NOSAVE.

KEYS[1]  the sorted set the marker member is added to (score 0)
ARGV[1]  how long to spin after the write, in milliseconds (an integer from 0
         to 5000: the script stops on its own by then, a safety net so that a
         forgotten call cannot hold a server for more than a few seconds)
ARGV[2]  the marker member to add (a non-empty string)

Returns  {elapsed_ms, loops, clock}: as busy_loop.lua (how long it spun by the
         clock it used, how many times it read that clock, "TIME" or "os.clock").

Clock: the same as busy_loop.lua: os.clock() where the server has it (Redis 7.2
and later, Valkey: there TIME stands still within a script), else TIME (Redis
7.0, where TIME moves); it stops with an error if neither moves in a million reads.

Complexity: O(log N) for the ZADD into a set of N members, then O(ARGV[1]) in
time, on purpose. Never run it on a server others use: it blocks every client
of that server, and nothing but SHUTDOWN NOSAVE ends it early.

Flags: none (#!lua): it writes. Every argument is checked before the write, so
a bad call writes nothing and returns at once.
]]

local MAX_MS = 5000
local STUCK_READS = 1000000
local function fail(message)
  return redis.error_reply('ERR write_then_spin: ' .. message)
end
if #KEYS ~= 1 then return fail('expected 1 key (the sorted set), got ' .. #KEYS) end
--!include integer.lua
local duration_ms = integer(ARGV[1], 0, MAX_MS)
if not duration_ms then
  return fail('ARGV[1] (milliseconds) must be an integer from 0 to ' .. MAX_MS .. ', got ' .. tostring(ARGV[1]))
end
local member = ARGV[2]
if not member or member == '' then return fail('ARGV[2] (the marker member) must be a non-empty string') end
if #ARGV ~= 2 then return fail('expected 2 arguments (milliseconds, member), got ' .. #ARGV) end

redis.call('ZADD', KEYS[1], 0, member)  -- from here on SCRIPT KILL answers UNKILLABLE

--!include spin.lua
