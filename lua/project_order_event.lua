#!lua
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
ARGV[4]  amount in cents (a plain integer from 0 to 2^53 - 1, as helpers.orders.cents gives it)

Returns  1 if applied now, 0 if this entry ID was applied before (a redelivery).

All or nothing: every argument is checked, and the action's running total too
(it must stay within 2^53 - 1 cents, where a Lua number is exact), before the
first write. So an event either lands whole, its ID recorded with its effect,
or leaves nothing and can be delivered again (before, a huge amount recorded the
ID, then failed on the cents: the redelivery was skipped and the money lost).

Counts and amounts are sums, so their order does not matter; the status is only
overwritten by an event with a greater stream ID, so a late "paid" cannot undo
an earlier-applied "shipped" that came after it in the log.

Complexity: O(1): SISMEMBER, 2 HGET, 2 HINCRBY, SADD and at most 2 HSET.

Flags: a writing script (#!lua, no flags): a server at maxmemory refuses it before it runs.
]]

if #KEYS ~= 5 then
  return redis.error_reply('ERR project_order_event: expected 5 keys, got ' .. #KEYS)
end
local MAX_CENTS = 9007199254740991  -- 2^53 - 1, helpers/bounds.py
local entry_id, order_id, action, amount = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local ms, seq = string.match(entry_id or '', '^(%d+)-(%d+)$')
if not ms or #ms > 16 or #seq > 16 then
  return redis.error_reply('ERR project_order_event: ARGV[1] must be a stream ID like 1700000000000-0')
end
if order_id == nil or order_id == '' or action == nil or action == '' then
  return redis.error_reply('ERR project_order_event: ARGV[2] (order_id) and ARGV[3] (action) must be non-empty')
end
if type(amount) ~= 'string' or not (amount == '0' or string.match(amount, '^[1-9]%d*$'))
    or #amount > 16 or tonumber(amount) > MAX_CENTS then
  return redis.error_reply('ERR project_order_event: ARGV[4] (cents) must be a plain integer from 0 to 2^53 - 1')
end

if redis.call('SISMEMBER', KEYS[1], entry_id) == 1 then
  return 0
end
local total = tonumber(redis.call('HGET', KEYS[5], action)) or 0
if total + tonumber(amount) > MAX_CENTS then
  return redis.error_reply('ERR project_order_event: the ' .. action .. ' total would pass 2^53 - 1 cents')
end
redis.call('HINCRBY', KEYS[4], action, 1)
redis.call('HINCRBY', KEYS[5], action, amount)  -- the string as given: no double in between

local function newer(a_ms, a_seq, b)
  local b_ms, b_seq = string.match(b, '^(%d+)-(%d+)$')
  if not b_ms then return true end  -- not an ID of ours: any event replaces it
  b_ms, b_seq = tonumber(b_ms), tonumber(b_seq)
  return a_ms > b_ms or (a_ms == b_ms and a_seq > b_seq)
end
local latest = redis.call('HGET', KEYS[3], order_id)
if not latest or newer(tonumber(ms), tonumber(seq), latest) then
  redis.call('HSET', KEYS[2], order_id, action)
  redis.call('HSET', KEYS[3], order_id, entry_id)
end
redis.call('SADD', KEYS[1], entry_id)  -- last: recorded only with its effect
return 1
