"""Notebook 03, your turn 3: a token bucket: bursts up to `burst`, then `rate_per_s` on average."""

TOKEN_BUCKET = """
local rate, burst, now, cost = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ms')
local tokens = tonumber(state[1]) or burst          -- a new bucket starts full
local last = tonumber(state[2]) or now
tokens = math.min(burst, tokens + (now - last) * rate / 1000)  -- refilled since, never past burst
local allowed = tokens >= cost
if allowed then tokens = tokens - cost end          -- a refused request takes nothing
redis.call('HSET', KEYS[1], 'tokens', tokens, 'ms', now)
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) * 1000 / rate) + 1)  -- full again: no key needed
if allowed then return 1 end
return 0
"""


def token_bucket_hit(r, key, rate_per_s, burst, now_ms, cost=1):
    return r.eval(TOKEN_BUCKET, 1, key, rate_per_s, burst, now_ms, cost) == 1
