-- Claim due jobs for one worker, taking over the jobs of workers whose lease ran out on
-- the way (the attempt counts; the job is due again at once, or FAILED past max
-- attempts), and pruning finished jobs past retention. Any worker may run it.
-- KEYS[1] queue prefix
-- ARGV: limit, lease_ms, worker_id, keep_failed_ms, maintenance_limit
-- Returns {now_ms, next_wake_ms|-1, id1, record1, due1, id2, ...}; next_wake is the
-- earliest due time or lease end of another worker.
local now = now_ms()
local limit = math.min(tonumber(ARGV[1]), 1000)
local lease_ms = tonumber(ARGV[2])
local worker = ARGV[3]
local keep_failed = tonumber(ARGV[4])
local maint = tonumber(ARGV[5])

-- 1. Finished jobs past retention. Records without ext (first byte 0x95) carry no tags.
local old = redis.call('ZRANGEBYSCORE', K_DONE, '-inf', now, 'LIMIT', 0, maint)
if #old > 0 then
  local recs = hmget(K_JOBS, old)
  for n, id in ipairs(old) do
    local rec = recs[n]
    if rec and string.byte(rec, 1) ~= 0x95 then
      local h = split(rec)
      delete_job(id, h)
    else
      delete_job(id, nil)
    end
  end
  each_chunk('ZREM', K_DONE, old, 1)
  bump('pruned', #old)
end

-- 2. Workers whose lease ran out are gone or stalled: their jobs lose the attempt. This
--    worker is alive (it is claiming), so it never reaps itself. The same read gives the
--    next lease end to wake up for.
local budget = maint
local next_lease = nil
local ls = redis.call('ZRANGE', K_LEASES, 0, 3, 'WITHSCORES')
for k = 1, #ls, 2 do
  local w, lease_end = ls[k], tonumber(ls[k + 1])
  if w ~= worker then
    if lease_end > now or budget <= 0 then
      if next_lease == nil then next_lease = lease_end end
    else
      local ids = redis.call('SPOP', k_held(w), budget)
      budget = budget - #ids
      if #ids > 0 then
        local recs = hmget(K_JOBS, ids)
        local cancels = cancel_reasons(ids)
        for n, id in ipairs(ids) do
          local rec = recs[n]
          local st, att = nil, '?'
          if rec then st, att = peek(rec) end
          if rec and (st == RUNNING or st == nil) then
            bump('lease_expired')
            end_attempt(id, rec, cancels[n] or nil, 'R',
              'lease expired: worker ' .. w .. ' lost during attempt ' .. (att or '?'),
              '', now, 0, keep_failed, true)
          end
        end
      end
      if redis.call('SCARD', k_held(w)) == 0 then
        redis.call('ZREM', K_LEASES, w)
      elseif next_lease == nil then
        next_lease = now -- more of its jobs to take over: come back at once
      end
    end
  end
end

-- 3. Claim.
local out = { now, -1 }
if limit > 0 then
  local due = redis.call('ZRANGEBYSCORE', K_DUE, '-inf', now, 'WITHSCORES', 'LIMIT', 0, limit)
  if #due > 0 then
    local ids = {}
    for k = 1, #due, 2 do ids[#ids + 1] = due[k] end
    each_chunk('ZREM', K_DUE, ids, 1)
    local recs = hmget(K_JOBS, ids)
    local trailer = cmsgpack.pack({ now, worker })
    trailer = trailer .. string.char(#trailer)
    local claimed = {}
    for n, id in ipairs(ids) do
      local rec = recs[n]
      local attempt = nil
      if rec then
        local b0, b1, st, att = string.byte(rec, 1, 4)
        if (b0 == 0x95 or b0 == 0x96) and b1 == FORMAT_VERSION and st == ENQUEUED and att < 126 then
          attempt = att + 1
          rec = string.char(b0, FORMAT_VERSION, RUNNING, attempt) .. string.sub(rec, 5) .. trailer
        else
          local h, rest = split(rec)
          if h == nil then
            local bad = { FORMAT_VERSION, FAILED, 0, now, '', { e = 'undecodable record header (not workq format v1)' } }
            finish(id, bad, rec, FAILED, now, keep_failed)
          elseif h[2] == ENQUEUED then
            h[2] = RUNNING
            h[3] = h[3] + 1
            attempt = h[3]
            rec = cmsgpack.pack(h) .. rest .. trailer
          end
        end
      end
      if attempt then
        put_job(id, rec)
        claimed[#claimed + 1] = id
        out[#out + 1] = id
        out[#out + 1] = rec
        out[#out + 1] = tonumber(due[2 * n])
        note(id, RUNNING, attempt)
      end
    end
    if #claimed > 0 then
      each_chunk('SADD', k_held(worker), claimed, 1)
      redis.call('ZADD', K_LEASES, 'GT', now + lease_ms, worker)
      bump('claimed', #claimed)
    end
  end
end

local nd = redis.call('ZRANGE', K_DUE, 0, 0, 'WITHSCORES')
if nd[2] then out[2] = tonumber(nd[2]) end
if next_lease and (out[2] < 0 or next_lease < out[2]) then out[2] = next_lease end
flush()
return out
