-- Shared head of every workq script. Rust prepends the DEFAULT_* and EVENTS_MAXLEN
-- constants (see scripts.rs) so that defaults live in one place.
--
-- A job is one field of the `jobs` hash. Its value (the record) is a MessagePack header
-- array followed by the raw input bytes and, once finished with output, the output bytes:
--   [version, state, attempts, enqueued_ms, kind, ext?] .. input .. output
-- Scripts rewrite the header only; input and output pass through untouched.

local ENQUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED, BLOCKED = 0, 1, 2, 3, 4, 5
local FORMAT_VERSION = 1

local prefix = KEYS[1]
local K_JOBS = prefix .. 'jobs'
local K_SCHED = prefix .. 'sched'
local K_RUN = prefix .. 'run'
local K_DONE = prefix .. 'done'
local K_STATS = prefix .. 'stats'
local K_EVENTS = prefix .. 'events'
local K_WATCH = prefix .. 'watch'
local CH_WAKE = prefix .. 'wake'

-- Redis is the one clock: due times and leases never come from a client.
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Returns header, rest; or nil when the header cannot be read (the job must then
-- fail alone instead of breaking the whole batch).
local function split(rec)
  local ok, off, h = pcall(cmsgpack.unpack_one, rec, 0)
  if not ok or type(h) ~= 'table' or h[1] ~= FORMAT_VERSION or type(h[2]) ~= 'number'
      or type(h[3]) ~= 'number' or type(h[4]) ~= 'number' or type(h[5]) ~= 'string'
      or (h[6] ~= nil and type(h[6]) ~= 'table') then
    return nil
  end
  return h, string.sub(rec, off + 1)
end

local function ext(h)
  local x = h[6]
  if x == nil then
    x = {}
    h[6] = x
  end
  return x
end

local function max_attempts(h)
  local x = h[6]
  return (x and x.m) or DEFAULT_MAX_ATTEMPTS
end

-- WorkManager's formulas: linear = initial * n, exponential = initial * 2^(n-1), capped.
local function backoff_ms(h, attempts)
  local x = h[6]
  local b = (x and x.b) or DEFAULT_BACKOFF
  local d
  if b[1] == 0 then
    d = b[2] * attempts
  else
    d = b[2] * 2 ^ (math.min(attempts, 62) - 1)
  end
  if d > b[3] then d = b[3] end
  return math.floor(d)
end

-- ZADD/ZREM in chunks: unpack() of a long list fails near 8,000 items.
local CHUNK = 512
local function zadd_pairs(key, pairs)
  for i = 1, #pairs, CHUNK * 2 do
    redis.call('ZADD', key, unpack(pairs, i, math.min(i + CHUNK * 2 - 1, #pairs)))
  end
end

-- Counters for dashboards, flushed once per script call.
local stats = {}
local function bump(field, n)
  stats[field] = (stats[field] or 0) + (n or 1)
end

-- State changes, written to the capped events stream only while somebody watches.
local ev_ids, ev_states, ev_attempts = {}, {}, {}
local function note(id, state, attempts)
  ev_ids[#ev_ids + 1] = id
  ev_states[#ev_states + 1] = state
  ev_attempts[#ev_attempts + 1] = attempts
end

-- The earliest due time this call scheduled; workers are woken for it.
local wake_at = nil
local function schedule(id, due, pairs)
  pairs[#pairs + 1] = due
  pairs[#pairs + 1] = id
  if wake_at == nil or due < wake_at then wake_at = due end
end

local function flush()
  for field, n in pairs(stats) do
    redis.call('HINCRBY', K_STATS, field, n)
  end
  if #ev_ids > 0 and redis.call('EXISTS', K_WATCH) == 1 then
    redis.call('XADD', K_EVENTS, 'MAXLEN', '~', EVENTS_MAXLEN, '*',
      'j', table.concat(ev_ids, ','), 's', table.concat(ev_states, ','),
      'a', table.concat(ev_attempts, ','))
  end
  if wake_at ~= nil then
    redis.call('PUBLISH', CH_WAKE, wake_at)
  end
end

local function delete_job(id, h)
  redis.call('HDEL', K_JOBS, id)
  redis.call('ZREM', K_DONE, id)
  local x = h and h[6]
  if x and x.t then
    for _, tag in ipairs(x.t) do
      redis.call('SREM', prefix .. 'tag:' .. tag, id)
    end
  end
end

-- Moves a job (already out of sched/run) into a finished state. keep_ms is how long the
-- finished job stays queryable; 0 deletes it now.
local function finish(id, h, rest, state, now, keep_ms)
  h[2] = state
  local x = ext(h)
  x.f = now
  x.w = nil
  if state == SUCCEEDED then bump('succeeded')
  elseif state == FAILED then bump('failed')
  else bump('cancelled') end
  note(id, state, h[3])
  if keep_ms <= 0 then
    delete_job(id, h)
  else
    redis.call('HSET', K_JOBS, id, cmsgpack.pack(h) .. rest)
    redis.call('ZADD', K_DONE, now + keep_ms, id)
  end
end

-- After a failed attempt: back to the schedule, or FAILED past max attempts. A failure
-- waits out the backoff; a lost worker (immediate = true) is not the job's fault, so its
-- job is due again at once.
local function retry_or_fail(id, h, rest, now, keep_failed, pairs, immediate)
  if h[3] >= max_attempts(h) then
    finish(id, h, rest, FAILED, now, keep_failed)
  else
    h[2] = ENQUEUED
    ext(h).w = nil
    redis.call('HSET', K_JOBS, id, cmsgpack.pack(h) .. rest)
    local due = now
    if not immediate then due = now + backoff_ms(h, h[3]) end
    schedule(id, due, pairs)
    bump('retried')
    note(id, ENQUEUED, h[3])
  end
end

-- A record whose header nobody can read fails alone; the raw bytes stay as its input.
local function fail_unreadable(id, rec, now, keep_failed)
  local h = { FORMAT_VERSION, FAILED, 0, now, '', { e = 'undecodable record header (not workq format v1)' } }
  finish(id, h, rec, FAILED, now, keep_failed)
end
