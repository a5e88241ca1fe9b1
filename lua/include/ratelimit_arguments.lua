-- The arguments every rate-limit script takes, checked before anything is written. The script sets,
-- before including this: SCRIPT (its name, for errors), KEY_COUNT and KEY_WORDS, PERIOD_WORD
-- ("window" or "period"), LIMIT_WORD, MAX_LIMIT. It leaves: fail(), period_s, limit, now, cost.
-- Bounds (helpers/bounds.py): periods of whole ms up to 366 days, times before the year 2286.
local MAX_PERIOD_S, MAX_NOW_MS = 31622400, 10000000000000
local function fail(message)
  return redis.error_reply('ERR ' .. SCRIPT .. ': ' .. message)
end
--!include integer.lua
if #KEYS ~= KEY_COUNT then return fail('expected ' .. KEY_COUNT .. ' ' .. KEY_WORDS .. ', got ' .. #KEYS) end
local period_s = ARGV[1]
if type(period_s) ~= 'string' or not (string.match(period_s, '^%d+%.?%d*$') or string.match(period_s, '^%.%d+$')) then
  period_s = nil
else
  period_s = tonumber(period_s)
end
if not period_s or period_s < 0.001 or period_s > MAX_PERIOD_S then
  return fail('ARGV[1] (' .. PERIOD_WORD .. ' in seconds) must be a number from 0.001 to ' .. MAX_PERIOD_S
    .. ', got ' .. tostring(ARGV[1]))
end
local limit = integer(ARGV[2], 1, MAX_LIMIT)
if not limit then
  return fail('ARGV[2] (' .. LIMIT_WORD .. ') must be an integer from 1 to ' .. MAX_LIMIT .. ', got ' .. tostring(ARGV[2]))
end
local now
if ARGV[3] == nil or ARGV[3] == '' then
  local time = redis.call('TIME')
  now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
else
  now = integer(ARGV[3], 0, MAX_NOW_MS)
  if not now then
    return fail('ARGV[3] (now in ms) must be empty or an integer from 0 to ' .. MAX_NOW_MS .. ', got ' .. tostring(ARGV[3]))
  end
end
local cost = 1
if ARGV[4] ~= nil and ARGV[4] ~= '' then
  cost = integer(ARGV[4], 1, limit)
  if not cost then
    return fail('ARGV[4] (cost) must be an integer from 1 to the ' .. LIMIT_WORD .. ', got ' .. tostring(ARGV[4]))
  end
end
