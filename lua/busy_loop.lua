--[[
busy_loop.lua: a deliberately slow script for notebook 04. It spins on the server's
clock for ARGV[1] milliseconds and does nothing else: while it runs, Redis serves
no other client, which is what "scripts block the server" means.

KEYS[1]  none: the script takes no key (KEYS must be empty). It reads and writes
         no data, so SCRIPT KILL can stop it once it runs past busy-reply-threshold.
ARGV[1]  how long to spin, in milliseconds (an integer from 0 to 60000)

Returns  {elapsed_ms, loops}: how long it held the server by the server's clock,
         and how many times it read that clock.

Complexity: O(ARGV[1]) in time, on purpose; O(1) memory. Never run it on a
server others use: it blocks every client of that server for ARGV[1] ms.
]]

local MAX_MS = 60000
local function fail(message)
  return redis.error_reply('ERR busy_loop: ' .. message)
end
if #KEYS ~= 0 then return fail('expected no keys, got ' .. #KEYS) end
local duration_ms = tonumber(ARGV[1])
if not duration_ms or duration_ms < 0 or duration_ms > MAX_MS or duration_ms % 1 ~= 0 then
  return fail('ARGV[1] (milliseconds) must be an integer from 0 to ' .. MAX_MS .. ', got ' .. tostring(ARGV[1]))
end

local function now_us()
  local time = redis.call('TIME')  -- read-only: the script stays killable
  return tonumber(time[1]) * 1000000 + tonumber(time[2])
end
local started = now_us()
local deadline = started + duration_ms * 1000
local now = started
local loops = 0
while now < deadline do
  now = now_us()
  loops = loops + 1
end
return {math.floor((now - started) / 1000), loops}
