-- The fixed window that contains now, for the scripts that count per window (fixed window, sliding-window
-- counter). Needs period_s, now and fail() from ratelimit_arguments.lua. It leaves: window_ms (the window,
-- to the nearest ms), index (which window now is in: now // window_ms) and window_end (when it ends, in ms).
local window_ms = math.floor(period_s * 1000 + 0.5)  -- to the nearest ms: 1.001 s is 1001 ms
if window_ms < 1 then return fail('ARGV[1] (window in seconds) must be at least 0.001, got ' .. tostring(ARGV[1])) end
local index = math.floor(now / window_ms)
local window_end = (index + 1) * window_ms
