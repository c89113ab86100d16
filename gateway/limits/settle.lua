-- Settle an admitted request once it has ended: free its slot and reservation, count what it really used.
--
-- KEYS, 5 per scope as in admit.lua, then the open-requests hash of the process that admitted it, this
--     request's "settled" marker (per tenant), then the alert stream last.
-- ARGV[1] now (ms)  [2] request id  [3] price charged (integer units of 1e-8)  [4] tokens used
--     [5] TPM correction (tokens used minus tokens taken at admission; may be negative)
--     [6] tenant id  [7] period (YYYY-MM)
--     then 5 per scope: tpm, budget units, token cap, soft percent, scope label (API key prefix or '')
-- Crossing a budget's soft percent adds one entry to the alert stream, once per month and kind.
-- Idempotent: a second settle of the same request (a retry after an unclear failure, or the request's own
-- settle after the reaper settled it from a checkpoint) changes nothing. The open record goes either way.

local now = tonumber(ARGV[1])
local rid = ARGV[2]
local units = ARGV[3]
local tokens = ARGV[4]
local correction = tonumber(ARGV[5])
local alerts = KEYS[#KEYS]
local scopes = (#KEYS - 3) / 5
redis.call('HDEL', KEYS[#KEYS - 2], rid)
if not redis.call('SET', KEYS[#KEYS - 1], 1, 'NX', 'EX', 3600) then return 0 end

-- HINCRBY by minus a non-negative integer string (Redis refuses "-0"; Lua doubles would lose digits)
local function release(key, field, amount)
  if amount ~= '0' then redis.call('HINCRBY', key, field, '-' .. amount) end
end

local function alert(budget, flag, kind, used, cap, soft, label)
  if soft <= 0 or cap <= 0 or used * 100 < soft * cap then return end
  if redis.call('HSETNX', budget, flag, 1) == 1 then
    redis.call('XADD', alerts, 'MAXLEN', '~', 10000, '*', 'tenant', ARGV[6], 'key', label, 'period', ARGV[7],
      'kind', kind, 'used', tostring(used), 'cap', tostring(cap), 'soft', tostring(soft))
  end
end

for i = 0, scopes - 1 do
  local k = i * 5
  local a = 8 + i * 5
  local tpm, cap_units, cap_tokens = tonumber(ARGV[a]), tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
  local soft, label = tonumber(ARGV[a + 3]), ARGV[a + 4]
  local live, held, budget = KEYS[k + 3], KEYS[k + 4], KEYS[k + 5]
  redis.call('ZREM', live, rid)
  local h = redis.call('HGET', held, rid)
  if h then
    local reserved_in, r_units, r_tokens = string.match(h, '^(.*)|(%d+)|(%d+)$')
    if reserved_in and redis.call('EXISTS', reserved_in) == 1 then
      release(reserved_in, 'reserved', r_units)
      release(reserved_in, 'rtokens', r_tokens)
    end
    redis.call('HDEL', held, rid)
  end
  if tpm >= 0 and correction ~= 0 then
    local state = redis.call('HMGET', KEYS[k + 2], 't', 'ts')
    local t = tonumber(state[1])
    if t ~= nil then
      local elapsed = now - tonumber(state[2])
      if elapsed < 0 then elapsed = 0 end
      t = math.min(t + elapsed * tpm / 60000, tpm) - correction
      if t < -tpm then t = -tpm end -- a debt of at most one minute
      redis.call('HSET', KEYS[k + 2], 't', tostring(t), 'ts', now)
      redis.call('PEXPIRE', KEYS[k + 2], 120000)
    end
  end
  if cap_units >= 0 or cap_tokens >= 0 then
    if redis.call('EXISTS', budget) == 1 then
      local spent = redis.call('HINCRBY', budget, 'spent', units)
      local used_tokens = redis.call('HINCRBY', budget, 'tokens', tokens)
      alert(budget, 'alerted_spend', 'spend', spent, cap_units, soft, label)
      alert(budget, 'alerted_tokens', 'tokens', used_tokens, cap_tokens, soft, label)
    end
  elseif redis.call('EXISTS', budget) == 1 then
    redis.call('DEL', budget) -- no cap any more: a cap set later starts again from the ledger
  end
end
return 0
