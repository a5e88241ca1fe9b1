-- The arguments every rate-limit script takes, checked before anything is written. The script sets,
-- before including this: SCRIPT (its name, for errors), KEY_COUNT and KEY_WORDS, PERIOD_WORD
-- ("window" or "period"), LIMIT_WORD, MAX_LIMIT. It leaves: fail(), period_s, limit, now, now_text
-- (now as a plain decimal string, ready to pass to a command), cost.
-- Bounds (helpers/bounds.py): periods of whole ms up to 366 days, times before the year 2286.
-- These lines run on every request, so they are written for speed as well as strictness: turning a
-- number into text (tostring, or `..` on a number) costs about as much as three string.match calls,
-- so the clock is read as text, and the usual empty now and cost of 1 are recognised as text.
local MAX_PERIOD_S, MAX_NOW_MS = 31622400, 10000000000000
local function fail(message)
  return redis.error_reply('ERR ' .. SCRIPT .. ': ' .. message)
end
--!include integer.lua
if #KEYS ~= KEY_COUNT then return fail('expected ' .. KEY_COUNT .. ' ' .. KEY_WORDS .. ', got ' .. #KEYS) end
local period_s = ARGV[1]
if period_s and (string.match(period_s, '^%d+%.?%d*$') or string.match(period_s, '^%.%d+$')) then
  period_s = tonumber(period_s)
else
  period_s = nil
end
if not period_s or period_s < 0.001 or period_s > MAX_PERIOD_S then
  return fail('ARGV[1] (' .. PERIOD_WORD .. ' in seconds) must be a number from 0.001 to ' .. MAX_PERIOD_S
    .. ', got ' .. tostring(ARGV[1]))
end
local limit = integer(ARGV[2], 1, MAX_LIMIT)
if not limit then
  return fail('ARGV[2] (' .. LIMIT_WORD .. ') must be an integer from 1 to ' .. MAX_LIMIT .. ', got ' .. tostring(ARGV[2]))
end
local now, now_text = nil, ARGV[3]
if now_text == nil or now_text == '' then
  local time = redis.call('TIME')  -- {seconds, microseconds}: ms are the seconds and the first 3 of 6 digits
  now_text = time[1] .. string.sub('00000' .. time[2], -6, -4)
  now = tonumber(now_text)
else
  now = integer(now_text, 0, MAX_NOW_MS)
  if not now then
    return fail('ARGV[3] (now in ms) must be empty or an integer from 0 to ' .. MAX_NOW_MS .. ', got ' .. tostring(ARGV[3]))
  end
end
local cost = 1
if ARGV[4] ~= nil and ARGV[4] ~= '' and ARGV[4] ~= '1' then
  cost = integer(ARGV[4], 1, limit)
  if not cost then
    return fail('ARGV[4] (cost) must be an integer from 1 to the ' .. LIMIT_WORD .. ', got ' .. tostring(ARGV[4]))
  end
end
