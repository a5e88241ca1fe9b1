-- integer(value, low, high): a plain decimal integer string within [low, high] as a number, else nil.
-- No sign, no exponent, no "-0", no spaces, at most 16 digits (exact as a Lua double).
local function integer(value, low, high)
  if type(value) ~= 'string' or not string.match(value, '^%d+$') or #value > 16 then return nil end
  local number = tonumber(value)
  if number < low or number > high then return nil end
  return number
end
