-- Admit one request against the limits of one or more scopes (its tenant, its API key), atomically.
--
-- KEYS, 5 per scope: rpm bucket, tpm bucket, in-flight zset, held-reservations hash, budget hash (this month);
--     then, optionally, the open-requests hash of the admitting process (gateway.metering.liveness).
-- ARGV[1] now (ms)  [2] request id  [3] lease (ms)  [4] tokens to take from the TPM bucket
--     [5] worst-case price (integer units of 1e-8)  [6] worst-case tokens  [7] budget key TTL (s)
--     then 7 per scope: rpm, tpm, concurrency, budget units, token cap, seed units, seed tokens
--     (-1: no such limit / no seed known); then, with the open-requests hash, the request's open record.
-- An admitted request's open record is written in the same call: a durable trace before anything is sent
-- upstream, from which the request is settled and billed if its process dies (gateway.metering.reaper).
-- Returns {code, scope, retry_ms, limit_req, remaining_req, reset_req_ms, limit_tok, remaining_tok,
--          reset_tok_ms, used, cap}: code 0 admitted, 1 rpm, 2 tpm, 3 concurrency, 4 budget, 5 token cap,
--          6 the scope's budget needs its seed (month-to-date usage from the ledger), 7 larger than the TPM.
-- Buckets refill continuously (limit per 60 s) up to the limit. Money stays in integer units (HINCRBY,
-- int64); Lua compares it as doubles, exact below 2^53 units (90 million in the currency).

local now = tonumber(ARGV[1])
local rid = ARGV[2]
local lease = tonumber(ARGV[3])
local need_tokens = tonumber(ARGV[4])
local worst_units = ARGV[5]
local worst_tokens = ARGV[6]
local ttl = tonumber(ARGV[7])
local scopes = math.floor(#KEYS / 5)
local open_key = nil
if #KEYS % 5 == 1 then open_key = KEYS[#KEYS] end

-- HINCRBY by minus a non-negative integer string (Redis refuses "-0"; Lua doubles would lose digits)
local function release(key, field, amount)
  if amount ~= '0' then redis.call('HINCRBY', key, field, '-' .. amount) end
end

local function level(key, limit)
  local state = redis.call('HMGET', key, 't', 'ts')
  local t = tonumber(state[1])
  if t == nil then return limit end
  local elapsed = now - tonumber(state[2])
  if elapsed < 0 then elapsed = 0 end
  t = t + elapsed * limit / 60000
  if t > limit then t = limit end
  return t
end

local function reset_ms(t, limit)
  if limit <= 0 then return 0 end
  return math.ceil((limit - t) * 60000 / limit)
end

local function sweep(live, held)
  local expired = redis.call('ZRANGEBYSCORE', live, '-inf', now)
  if #expired == 0 then return end
  for _, id in ipairs(expired) do
    local h = redis.call('HGET', held, id)
    if h then
      local budget, units, tokens = string.match(h, '^(.*)|(%d+)|(%d+)$')
      if budget and redis.call('EXISTS', budget) == 1 then
        release(budget, 'reserved', units)
        release(budget, 'rtokens', tokens)
      end
      redis.call('HDEL', held, id)
    end
  end
  redis.call('ZREMRANGEBYSCORE', live, '-inf', now)
end

-- Headers report the scope with the least left (OpenAI sends one set).
local out_req = {-1, -1, -1}
local out_tok = {-1, -1, -1}
local levels = {}

for i = 0, scopes - 1 do
  local k = i * 5
  local a = 8 + i * 7
  local rpm, tpm, conc = tonumber(ARGV[a]), tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
  local cap_units, cap_tokens = tonumber(ARGV[a + 3]), tonumber(ARGV[a + 4])
  local live, held, budget = KEYS[k + 3], KEYS[k + 4], KEYS[k + 5]
  local req_t, tok_t = -1, -1
  if rpm >= 0 then
    req_t = level(KEYS[k + 1], rpm)
    if out_req[1] < 0 or req_t - 1 < out_req[2] then
      out_req = {rpm, math.max(0, math.floor(req_t - 1)), reset_ms(math.max(req_t - 1, 0), rpm)}
    end
  end
  if tpm >= 0 then
    tok_t = level(KEYS[k + 2], tpm)
    if out_tok[1] < 0 or tok_t - need_tokens < out_tok[2] then
      out_tok = {tpm, math.max(0, math.floor(tok_t - need_tokens)), reset_ms(math.max(tok_t - need_tokens, 0), tpm)}
    end
  end
  levels[i] = {req_t, tok_t}
  local function refuse(code, retry, used, cap)
    -- a refused request takes nothing: report what is left, as it is
    if rpm >= 0 then out_req = {rpm, math.max(0, math.floor(req_t)), reset_ms(req_t, rpm)} end
    if tpm >= 0 then out_tok = {tpm, math.max(0, math.floor(tok_t)), reset_ms(math.max(tok_t, 0), tpm)} end
    return {code, i, retry, out_req[1], out_req[2], out_req[3], out_tok[1], out_tok[2], out_tok[3],
            used or '', cap or ''}
  end
  if conc >= 0 or cap_units >= 0 or cap_tokens >= 0 then sweep(live, held) end
  if conc >= 0 then
    local inflight = redis.call('ZCARD', live)
    if inflight >= conc then return refuse(3, 1000, tostring(inflight), tostring(conc)) end
  end
  if rpm >= 0 and req_t < 1 then
    return refuse(1, math.ceil((1 - req_t) * 60000 / math.max(rpm, 1)), tostring(rpm - math.floor(req_t)), tostring(rpm))
  end
  if tpm >= 0 then
    if need_tokens > tpm then return refuse(7, 0, tostring(need_tokens), tostring(tpm)) end
    if tok_t < need_tokens then
      return refuse(2, math.ceil((need_tokens - tok_t) * 60000 / tpm), tostring(math.floor(tpm - tok_t)), tostring(tpm))
    end
  end
  if cap_units >= 0 or cap_tokens >= 0 then
    if redis.call('EXISTS', budget) == 0 then
      if ARGV[a + 5] == '-1' then return refuse(6, 0) end
      redis.call('HSET', budget, 'spent', ARGV[a + 5], 'tokens', ARGV[a + 6], 'reserved', 0, 'rtokens', 0)
      redis.call('EXPIRE', budget, ttl)
    end
    local b = redis.call('HMGET', budget, 'spent', 'reserved', 'tokens', 'rtokens')
    if cap_units >= 0 and tonumber(b[1]) + tonumber(b[2]) + tonumber(worst_units) > cap_units then
      return refuse(4, 0, b[1], ARGV[a + 3])
    end
    if cap_tokens >= 0 and tonumber(b[3]) + tonumber(b[4]) + tonumber(worst_tokens) > cap_tokens then
      return refuse(5, 0, b[3], ARGV[a + 4])
    end
  end
end

-- Every scope admits the request: take from each.
for i = 0, scopes - 1 do
  local k = i * 5
  local a = 8 + i * 7
  local rpm, tpm, conc = tonumber(ARGV[a]), tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
  local cap_units, cap_tokens = tonumber(ARGV[a + 3]), tonumber(ARGV[a + 4])
  if rpm >= 0 then
    redis.call('HSET', KEYS[k + 1], 't', tostring(levels[i][1] - 1), 'ts', now)
    redis.call('PEXPIRE', KEYS[k + 1], 120000)
  end
  if tpm >= 0 then
    redis.call('HSET', KEYS[k + 2], 't', tostring(levels[i][2] - need_tokens), 'ts', now)
    redis.call('PEXPIRE', KEYS[k + 2], 120000)
  end
  if conc >= 0 then
    redis.call('ZADD', KEYS[k + 3], now + lease, rid)
    redis.call('PEXPIRE', KEYS[k + 3], lease * 2)
  end
  if cap_units >= 0 or cap_tokens >= 0 then
    redis.call('HINCRBY', KEYS[k + 5], 'reserved', worst_units)
    redis.call('HINCRBY', KEYS[k + 5], 'rtokens', worst_tokens)
    redis.call('HSET', KEYS[k + 4], rid, KEYS[k + 5] .. '|' .. worst_units .. '|' .. worst_tokens)
    redis.call('PEXPIRE', KEYS[k + 4], lease * 2)
    if conc < 0 then -- the lease is what frees a reservation its process never settled
      redis.call('ZADD', KEYS[k + 3], now + lease, rid)
      redis.call('PEXPIRE', KEYS[k + 3], lease * 2)
    end
  end
end
if open_key then
  redis.call('HSET', open_key, rid, ARGV[8 + scopes * 7])
  redis.call('PEXPIRE', open_key, lease * 2)
end
return {0, -1, 0, out_req[1], out_req[2], out_req[3], out_tok[1], out_tok[2], out_tok[3], '', ''}
