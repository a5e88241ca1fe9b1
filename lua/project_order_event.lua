--[[
project_order_event.lua: apply one order event to the live projection, exactly once
and in event order, even when several consumers apply events of one order at once.

KEYS[1]  set of entry IDs already applied
KEYS[2]  hash order_id -> latest action
KEYS[3]  hash order_id -> stream ID of that latest action
KEYS[4]  hash action -> number of events
KEYS[5]  hash action -> amount in cents
ARGV[1]  the stream entry ID ("<ms>-<seq>")
ARGV[2]  order_id (non-empty)
ARGV[3]  action (non-empty)
ARGV[4]  amount in cents (an integer >= 0)

Returns  1 if applied now, 0 if this entry ID was applied before (a redelivery).

Counts and amounts are sums, so their order does not matter; the status is only
overwritten by an event with a greater stream ID, so a late "paid" cannot undo
an earlier-applied "shipped" that came after it in the log.

Complexity: O(1): SISMEMBER, SADD, 2 HINCRBY, HGET and at most 2 HSET.
]]

if #KEYS ~= 5 then
  return redis.error_reply('ERR project_order_event: expected 5 keys, got ' .. #KEYS)
end
local entry_id, order_id, action = ARGV[1], ARGV[2], ARGV[3]
local amount = tonumber(ARGV[4])
local ms, seq = string.match(entry_id or '', '^(%d+)-(%d+)$')
if not ms then
  return redis.error_reply('ERR project_order_event: ARGV[1] must be a stream ID like 1700000000000-0')
end
if order_id == nil or order_id == '' or action == nil or action == '' then
  return redis.error_reply('ERR project_order_event: ARGV[2] (order_id) and ARGV[3] (action) must be non-empty')
end
if not amount or amount < 0 or amount % 1 ~= 0 then
  return redis.error_reply('ERR project_order_event: ARGV[4] (cents) must be an integer >= 0')
end

if redis.call('SISMEMBER', KEYS[1], entry_id) == 1 then
  return 0
end
redis.call('SADD', KEYS[1], entry_id)
redis.call('HINCRBY', KEYS[4], action, 1)
redis.call('HINCRBY', KEYS[5], action, amount)

local function newer(a_ms, a_seq, b)
  local b_ms, b_seq = string.match(b, '^(%d+)-(%d+)$')
  b_ms, b_seq = tonumber(b_ms), tonumber(b_seq)
  return a_ms > b_ms or (a_ms == b_ms and a_seq > b_seq)
end
local latest = redis.call('HGET', KEYS[3], order_id)
if not latest or newer(tonumber(ms), tonumber(seq), latest) then
  redis.call('HSET', KEYS[2], order_id, action)
  redis.call('HSET', KEYS[3], order_id, entry_id)
end
return 1
