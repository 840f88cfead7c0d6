-- Claim due jobs for one worker; on the way, requeue jobs whose lease ran out and prune
-- finished jobs past their retention. Any worker may run it; it is idempotent.
-- KEYS[1] queue prefix
-- ARGV: limit, lease_ms, worker_id, keep_failed_ms, maintenance_limit
-- Returns {now_ms, next_due_ms|-1, next_lease_end_ms|-1, id1, record1, due1, id2, ...}
local now = now_ms()
local limit = math.min(tonumber(ARGV[1]), 1000)
local lease_ms = tonumber(ARGV[2])
local worker = ARGV[3]
local keep_failed = tonumber(ARGV[4])
local maint = tonumber(ARGV[5])
local sched_pairs = {}

-- 1. Leases that ran out: the worker is gone or stalled. The attempt counts (so a job
--    that keeps killing its workers ends FAILED), but the job is due again at once.
local lost = redis.call('ZRANGEBYSCORE', K_RUN, '-inf', now, 'LIMIT', 0, maint)
for _, id in ipairs(lost) do
  redis.call('ZREM', K_RUN, id)
  local rec = redis.call('HGET', K_JOBS, id)
  if rec then
    local h, rest = split(rec)
    if h == nil then
      fail_unreadable(id, rec, now, keep_failed)
    elseif h[2] == RUNNING then
      local x = ext(h)
      bump('lease_expired')
      if x.c then
        finish(id, h, rest, CANCELLED, now, keep_failed)
      else
        x.e = 'lease expired: worker ' .. (x.w or '?') .. ' lost during attempt ' .. h[3]
        retry_or_fail(id, h, rest, now, keep_failed, sched_pairs, true)
      end
    end
  end
end

-- 2. Finished jobs past retention.
local old = redis.call('ZRANGEBYSCORE', K_DONE, '-inf', now, 'LIMIT', 0, maint)
for _, id in ipairs(old) do
  local rec = redis.call('HGET', K_JOBS, id)
  delete_job(id, rec and split(rec))
end
if #old > 0 then bump('pruned', #old) end

-- 3. Claim. ZREM first: a job is in exactly one of sched/run/done.
local out = { now, -1, -1 }
if limit > 0 then
  local due = redis.call('ZRANGEBYSCORE', K_SCHED, '-inf', now, 'WITHSCORES', 'LIMIT', 0, limit)
  if #due > 0 then
    local ids = {}
    for k = 1, #due, 2 do ids[#ids + 1] = due[k] end
    redis.call('ZREM', K_SCHED, unpack(ids))
    local lease_end = now + lease_ms
    local run_pairs = {}
    for k = 1, #due, 2 do
      local id = due[k]
      local rec = redis.call('HGET', K_JOBS, id)
      if rec then
        local h, rest = split(rec)
        if h == nil then
          fail_unreadable(id, rec, now, keep_failed)
        else
          h[2] = RUNNING
          h[3] = h[3] + 1
          local x = ext(h)
          x.s = now
          x.w = worker
          rec = cmsgpack.pack(h) .. rest
          redis.call('HSET', K_JOBS, id, rec)
          run_pairs[#run_pairs + 1] = lease_end
          run_pairs[#run_pairs + 1] = id
          out[#out + 1] = id
          out[#out + 1] = rec
          out[#out + 1] = tonumber(due[k + 1])
          note(id, RUNNING, h[3])
        end
      end
    end
    zadd_pairs(K_RUN, run_pairs)
    if #run_pairs > 0 then bump('claimed', #run_pairs / 2) end
  end
end
zadd_pairs(K_SCHED, sched_pairs)

local nd = redis.call('ZRANGE', K_SCHED, 0, 0, 'WITHSCORES')
if nd[2] then out[2] = tonumber(nd[2]) end
local nl = redis.call('ZRANGE', K_RUN, 0, 0, 'WITHSCORES')
if nl[2] then out[3] = tonumber(nl[2]) end
flush()
return out
