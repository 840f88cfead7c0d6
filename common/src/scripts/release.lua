-- Hand running jobs back at once (graceful shutdown), instead of waiting for the lease.
-- The attempt already counted stays counted, so the fencing token keeps increasing.
-- KEYS[1] queue prefix
-- ARGV: keep_failed_ms, reason; then per job: id, token
-- Returns per job: 1 handed back (or cancelled, if that was requested), 0 not held.
local now = now_ms()
local keep_failed, reason = tonumber(ARGV[1]), ARGV[2]
local sched_pairs = {}
local out = {}
for j = 3, #ARGV, 2 do
  local id, token = ARGV[j], tonumber(ARGV[j + 1])
  local rec = redis.call('HGET', K_JOBS, id)
  local h, rest
  if rec then h, rest = split(rec) end
  if h == nil or h[2] ~= RUNNING or h[3] ~= token then
    out[#out + 1] = 0
  else
    out[#out + 1] = 1
    redis.call('ZREM', K_RUN, id)
    local x = ext(h)
    if x.c then
      finish(id, h, rest, CANCELLED, now, keep_failed)
    else
      x.e = reason
      x.w = nil
      h[2] = ENQUEUED
      redis.call('HSET', K_JOBS, id, cmsgpack.pack(h) .. rest)
      schedule(id, now, sched_pairs)
      bump('released')
      note(id, ENQUEUED, h[3])
    end
  end
end
zadd_pairs(K_SCHED, sched_pairs)
flush()
return out
