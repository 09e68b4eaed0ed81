"""Lua scripts: every multi-step change that must be atomic. Each touches keys of one
hash tag only (see keys.py), so each runs in one Redis Cluster slot."""

from __future__ import annotations

# KEYS: ns owner, ns accounts; ARGV: native id, address.
# Claims the native id for the account unless someone else owns it; returns the owner.
CLAIM_ACCOUNT = """
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if cur and cur ~= ARGV[2] then return cur end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('SADD', KEYS[2], ARGV[2])
return ARGV[2]
"""

# KEYS: ns owner, ns aliasof, ns seq
# ARGV: address, k, candidate_1..candidate_k, prefix, suffix, base, max
# Returns the alias of ARGV[1] in this namespace, allocating it on first use: the first
# free candidate, else prefix .. (base + INCR seq) .. suffix. An alias is never released.
ALLOCATE_ALIAS = """
local existing = redis.call('HGET', KEYS[2], ARGV[1])
if existing then return existing end
local k = tonumber(ARGV[2])
for i = 1, k do
  local c = ARGV[2 + i]
  if redis.call('HSETNX', KEYS[1], c, ARGV[1]) == 1 then
    redis.call('HSET', KEYS[2], ARGV[1], c)
    return c
  end
end
local prefix, suffix = ARGV[3 + k], ARGV[4 + k]
local base, max = tonumber(ARGV[5 + k]), tonumber(ARGV[6 + k])
for attempt = 1, 10000 do
  local n = base + redis.call('INCR', KEYS[3])
  if n > max then return redis.error_reply('ALIASSPACE alias space exhausted') end
  local c = prefix .. string.format('%.0f', n) .. suffix
  if redis.call('HSETNX', KEYS[1], c, ARGV[1]) == 1 then
    redis.call('HSET', KEYS[2], ARGV[1], c)
    return c
  end
end
return redis.error_reply('ALIASSPACE no free alias found')
"""

# KEYS: ns owner, ns accounts, ns regseq; ARGV: network, first, max
# Allocates the next free numeric id for a self-registered account; returns it.
ALLOCATE_REGISTRATION = """
local first, max = tonumber(ARGV[2]), tonumber(ARGV[3])
for attempt = 1, 10000 do
  local n = first + redis.call('INCR', KEYS[3]) - 1
  if n > max then return redis.error_reply('ALIASSPACE registration space exhausted') end
  local native = string.format('%.0f', n)
  local address = ARGV[1] .. ':' .. native
  if redis.call('HSETNX', KEYS[1], native, address) == 1 then
    redis.call('SADD', KEYS[2], address)
    return native
  end
end
return redis.error_reply('ALIASSPACE no free id found')
"""

# KEYS: sess:{A}, offline:{A}, seen:{A}:<id>
# ARGV: queue? (1/0), dedupe ttl, entry json, queue max, dedupe? (1/0)
# Atomically: drop a duplicate; else return the session rows when A is online;
# else append to the offline queue (if this kind is queued). Returns
# {'dup'} | {'online', row1, row2, ...} | {'queued', id} | {'full'} | {'dropped'}.
DELIVER_OR_QUEUE = """
if ARGV[5] == '1' then
  if redis.call('SET', KEYS[3], '1', 'NX', 'EX', tonumber(ARGV[2])) == false then
    return {'dup'}
  end
end
local rows = redis.call('HVALS', KEYS[1])
if #rows > 0 then
  local out = {'online'}
  for i = 1, #rows do out[#out + 1] = rows[i] end
  return out
end
if ARGV[1] ~= '1' then return {'dropped'} end
if redis.call('XLEN', KEYS[2]) >= tonumber(ARGV[4]) then
  if ARGV[5] == '1' then redis.call('DEL', KEYS[3]) end
  return {'full'}
end
return {'queued', redis.call('XADD', KEYS[2], '*', 'e', ARGV[3])}
"""

# KEYS: offline:{A}; ARGV: entry json, queue max. Appends unless full.
QUEUE_ONLY = """
if redis.call('XLEN', KEYS[1]) >= tonumber(ARGV[2]) then return false end
return redis.call('XADD', KEYS[1], '*', 'e', ARGV[1])
"""

# KEYS: persons of, persons seq; ARGV: n, address_1..address_n, members key prefix
# Links the addresses into one person (merging persons they already belong to).
LINK = """
local n = tonumber(ARGV[1])
local prefix = ARGV[n + 2]
local person = nil
for i = 1, n do
  local p = redis.call('HGET', KEYS[1], ARGV[1 + i])
  if p then person = p break end
end
if not person then person = tostring(redis.call('INCR', KEYS[2])) end
for i = 1, n do
  local a = ARGV[1 + i]
  local old = redis.call('HGET', KEYS[1], a)
  if old and old ~= person then
    local members = redis.call('SMEMBERS', prefix .. old)
    for _, m in ipairs(members) do
      redis.call('HSET', KEYS[1], m, person)
      redis.call('SADD', prefix .. person, m)
    end
    redis.call('DEL', prefix .. old)
  end
  redis.call('HSET', KEYS[1], a, person)
  redis.call('SADD', prefix .. person, a)
end
return person
"""

# KEYS: persons of; ARGV: address, members key prefix. Removes the address from its
# person; a person left with one address is dissolved. Returns the old person or false.
UNLINK = """
local person = redis.call('HGET', KEYS[1], ARGV[1])
if not person then return false end
local key = ARGV[2] .. person
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('SREM', key, ARGV[1])
if redis.call('SCARD', key) <= 1 then
  for _, m in ipairs(redis.call('SMEMBERS', key)) do redis.call('HDEL', KEYS[1], m) end
  redis.call('DEL', key)
end
return person
"""
