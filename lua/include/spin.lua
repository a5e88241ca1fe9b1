-- Spin for duration_ms by the server's clock, then return {elapsed_ms, loops, clock}. The script sets,
-- before including this: duration_ms, fail() and STUCK_READS. os.clock() where the server has it (7.2+,
-- Valkey: TIME stands still inside a script there), else TIME (7.0); a clock that never moves is an error.
-- rawget: reading a global the sandbox lacks is an error on Redis 7.0, rawget is not
local os_library = rawget(_G, 'os')
local clock, now_ms
if type(os_library) == 'table' and type(os_library.clock) == 'function' then
  clock = 'os.clock'
  now_ms = function() return os_library.clock() * 1000 end
else
  clock = 'TIME'
  now_ms = function()
    local time = redis.call('TIME')  -- a read: it changes nothing the script may have written
    return tonumber(time[1]) * 1000 + tonumber(time[2]) / 1000
  end
end
local started = now_ms()
local elapsed = 0  -- compared as returned: (started + d) - started can round to just under d
local loops = 0
while elapsed < duration_ms do
  elapsed = now_ms() - started
  loops = loops + 1
  if elapsed == 0 and loops >= STUCK_READS then
    return fail('the server clock did not move in ' .. loops .. ' reads of ' .. clock .. ': cannot time a loop')
  end
end
return {math.floor(elapsed), loops, clock}
