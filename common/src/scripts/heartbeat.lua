-- Extend the leases of every job one worker holds, in one call.
-- KEYS[1] queue prefix
-- ARGV: lease_ms; then per job: id, token
-- Returns per job: 1 extended, 2 extended and cancellation requested, 0 lost (fenced out).
local now = now_ms()
local lease_end = now + tonumber(ARGV[1])
local out = {}
local run_pairs = {}
for j = 2, #ARGV, 2 do
  local id, token = ARGV[j], tonumber(ARGV[j + 1])
  local rec = redis.call('HGET', K_JOBS, id)
  local h
  if rec then h = split(rec) end
  if h == nil or h[2] ~= RUNNING or h[3] ~= token then
    out[#out + 1] = 0
  else
    run_pairs[#run_pairs + 1] = lease_end
    run_pairs[#run_pairs + 1] = id
    if h[6] and h[6].c then out[#out + 1] = 2 else out[#out + 1] = 1 end
  end
end
zadd_pairs(K_RUN, run_pairs)
return out
