#!lua flags=no-writes
--[[
busy_loop.lua: a deliberately slow script for notebook 04. It spins for ARGV[1]
milliseconds and does nothing else: while it runs, the server serves no other
client, which is what "scripts block the server" means.

KEYS[1]  none: the script takes no key (KEYS must be empty). It reads and writes
         no data, so SCRIPT KILL can stop it once it runs past busy-reply-threshold.
ARGV[1]  how long to spin, in milliseconds (an integer from 0 to 60000)

Returns  {elapsed_ms, loops, clock}: how long it held the server by the clock it
         used, how many times it read that clock, and which clock ("TIME" or "os.clock").

Which clock. Since Redis 7.2 (and on Valkey) redis.call('TIME') inside a script
returns the same time for the whole script, so that every command of it sees
one moment (key expiry included): a loop "until TIME says 300 ms passed" never
ends. Those servers give scripts os.clock() (the server's CPU time, which a
busy loop spends as fast as wall time), and Redis 7.0 does not but its TIME
advances. The script uses os.clock() when the server has it, else TIME; if TIME
does not move either, it stops after a million reads with an error, rather
than spin until busy-reply-threshold.

Complexity: O(ARGV[1]) in time, on purpose; O(1) memory. Never run it on a
server others use: it blocks every client of that server for ARGV[1] ms.

Flags: no-writes (declared, so SCRIPT KILL can always stop it).
]]

local MAX_MS = 60000
local STUCK_READS = 1000000
local function fail(message)
  return redis.error_reply('ERR busy_loop: ' .. message)
end
if #KEYS ~= 0 then return fail('expected no keys, got ' .. #KEYS) end
--!include integer.lua
local duration_ms = integer(ARGV[1], 0, MAX_MS)
if not duration_ms then
  return fail('ARGV[1] (milliseconds) must be an integer from 0 to ' .. MAX_MS .. ', got ' .. tostring(ARGV[1]))
end

--!include spin.lua
