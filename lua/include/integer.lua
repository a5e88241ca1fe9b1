-- integer(value, low, high): a plain decimal integer string within [low, high] as a number, else nil.
-- Plain: digits only, no leading zero (Redis refuses "007" as an integer too), so the text can be passed
-- on to a command as it is; no sign, no exponent, no "-0", no spaces, at most 16 digits (exact as a
-- Lua double). KEYS and ARGV hold only strings, so a missing value (nil) is the one other case.
local function integer(value, low, high)
  if not value or #value > 16 or not (value == '0' or string.match(value, '^[1-9]%d*$')) then return nil end
  local number = tonumber(value)
  if number < low or number > high then return nil end
  return number
end
