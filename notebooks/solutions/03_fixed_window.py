"""Notebook 03, your turn 1: a fixed-window rate limiter, one EVAL per decision."""

FIXED_WINDOW = """
local limit, window_ms, now = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local window = math.floor(now / window_ms)          -- windows are aligned to the clock
local state = redis.call('HMGET', KEYS[1], 'window', 'count')
local count = 0
if tonumber(state[1]) == window then count = tonumber(state[2]) end  -- an older window counts 0
if count >= limit then return 0 end
redis.call('HSET', KEYS[1], 'window', window, 'count', count + 1)
redis.call('PEXPIRE', KEYS[1], (window + 1) * window_ms - now)  -- gone when its window ends
return 1
"""


def fixed_window_hit(r, key, limit, window_ms, now_ms):
    # EVAL <script> 1 <key> <limit> <window_ms> <now_ms>: the key in KEYS, the numbers in ARGV
    return r.eval(FIXED_WINDOW, 1, key, limit, window_ms, now_ms) == 1
