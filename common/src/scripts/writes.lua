-- Batched reads and writes, counters, events and wake-ups: what a call collects, and
-- flush(), which applies it with one command per kind.

-- Batched commands: a redis.call costs more than the work it does for one job, so every
-- script issues one command per batch, in chunks because unpack() of a long list fails
-- near 8,000 items.
local CHUNK = 512
local function each_chunk(cmd, key, items, width)
  local step = CHUNK * width
  for i = 1, #items, step do
    redis.call(cmd, key, unpack(items, i, math.min(i + step - 1, #items)))
  end
end
-- A command that answers per item (HMGET, SMISMEMBER), CHUNK items at a time.
local function per_item(cmd, key, ids)
  if #ids <= CHUNK then
    return redis.call(cmd, key, unpack(ids))
  end
  local out = {}
  for i = 1, #ids, CHUNK do
    local part = redis.call(cmd, key, unpack(ids, i, math.min(i + CHUNK - 1, #ids)))
    for k = 1, #part do out[i + k - 1] = part[k] end
  end
  return out
end
local function hmget(key, ids)
  return per_item('HMGET', key, ids)
end

-- Stop reasons of RUNNING jobs asked to stop; the hash is usually empty, and then costs
-- one HLEN per call.
local function cancel_reasons(ids)
  if #ids == 0 or redis.call('HLEN', K_CANCEL) == 0 then return {} end
  return hmget(K_CANCEL, ids)
end

-- Writes collected during the call and applied in flush(), one command per kind (a script
-- touches each job once in these, so their order does not matter). Chain updates, which
-- may touch a job twice in one call, write at once instead.
local w_jobs, w_del, w_done, w_due, w_uncancel, w_unprogress = {}, {}, {}, {}, {}, {}
local w_blocked_add, w_blocked_rem = {}, {}
local function put_job(id, rec)
  w_jobs[#w_jobs + 1] = id
  w_jobs[#w_jobs + 1] = rec
end
-- Counters for dashboards.
local stats = {}
local function bump(field, n)
  stats[field] = (stats[field] or 0) + (n or 1)
end

-- The finished jobs in `done`, by state: counted up as they enter and down as they are
-- pruned, so that the exporter splits the retained jobs without reading them.
local RETAINED = { [SUCCEEDED] = 'retained_succeeded', [FAILED] = 'retained_failed',
  [CANCELLED] = 'retained_cancelled' }

-- A finished job's entry in `done`: it may be pruned keep_ms from now.
local function to_done(id, keep_ms, state)
  w_done[#w_done + 1] = now + keep_ms
  w_done[#w_done + 1] = id
  bump(RETAINED[state])
end

-- State changes, written to the capped events stream only while somebody watches (the
-- `watch` key exists); otherwise nothing is even collected. A state of 'P' marks a
-- progress update of a RUNNING job.
local watched = nil
local ev_ids, ev_states, ev_attempts = {}, {}, {}
local function note(id, state, attempts)
  if watched == nil then watched = redis.call('EXISTS', K_WATCH) == 1 end
  if watched then
    local n = #ev_ids + 1
    ev_ids[n] = id
    ev_states[n] = state
    ev_attempts[n] = attempts
  end
end

-- Puts a job on its lane's timeline; workers are woken for the earliest new due time.
local wake_at = nil
local function schedule(id, due, lane)
  local p = w_due[lane]
  if p == nil then
    p = {}
    w_due[lane] = p
  end
  p[#p + 1] = due
  p[#p + 1] = id
  if wake_at == nil or due < wake_at then wake_at = due end
end

-- Takes a waiting (ENQUEUED or BLOCKED) job off its lane or out of `blocked`.
local function unwait(id, h)
  if h[2] == ENQUEUED then
    redis.call('ZREM', k_due(lane_of(h)), id)
  else
    w_blocked_rem[#w_blocked_rem + 1] = id
  end
end

local function flush()
  each_chunk('HSET', K_JOBS, w_jobs, 2)
  each_chunk('HDEL', K_JOBS, w_del, 1)
  each_chunk('ZADD', K_DONE, w_done, 2)
  for lane, p in pairs(w_due) do
    each_chunk('ZADD', k_due(lane), p, 2)
    if lane ~= '' then redis.call('SADD', K_LANES, lane) end
  end
  each_chunk('SADD', K_BLOCKED, w_blocked_add, 1)
  each_chunk('SREM', K_BLOCKED, w_blocked_rem, 1)
  each_chunk('HDEL', K_CANCEL, w_uncancel, 1)
  each_chunk('HDEL', K_PROGRESS, w_unprogress, 1)
  for field, n in pairs(stats) do
    redis.call('HINCRBY', K_STATS, field, n)
  end
  if #ev_ids > 0 then
    redis.call('XADD', K_EVENTS, 'MAXLEN', '~', EVENTS_MAXLEN, '*',
      'j', table.concat(ev_ids, ','), 's', table.concat(ev_states, ','),
      'a', table.concat(ev_attempts, ','))
  end
  if wake_at ~= nil then
    redis.call('PUBLISH', CH_WAKE, wake_at)
  end
end
