-- Record what an open request has delivered so far: replace its open record, unless it has been settled.
--
-- KEYS[1] the open-requests hash of its process  [2] its "settled" marker (set by settle.lua)
-- ARGV[1] request id  [2] the open record (its usage event as of now, and its admission)  [3] hash TTL (ms)
-- A checkpoint that arrives after the settle (it was sent just before the last byte) must not bring the
-- open record back: the reaper would bill the request a second time once its process is gone.
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
