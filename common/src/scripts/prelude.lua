-- Shared head of every workq script. Rust prepends the DEFAULT_* and EVENTS_MAXLEN
-- constants (see scripts.rs) so that defaults live in one place.
--
-- Layout of a queue (all keys share the {queue} hash tag):
--   jobs         hash   id -> record
--   due          zset   ENQUEUED ids by due time (ms)
--   leases       zset   worker id -> lease end (ms); one lease covers all a worker holds
--   held:<w>     set    ids of the RUNNING jobs worker <w> holds
--   cancel       hash   id -> stop reason, for RUNNING jobs asked to stop
--   done         zset   finished ids by the time they may be pruned
--   tag:<t>      set    ids with tag <t>
--   stats        hash   counters
--   events       stream state changes, written only while `watch` exists
--
-- A record is a MessagePack header array followed by the input bytes and, once finished
-- with output, the output bytes:
--   [version, state, attempts, enqueued_ms, kind, ext?] .. input .. output
-- While RUNNING it also ends with a trailer: MessagePack [started_ms, worker] and one
-- byte giving that trailer's length. Scripts never re-encode input or output, and the
-- hot paths (claim, ack of a success) do not decode the header: state and attempts are
-- single bytes at fixed offsets whenever attempts < 127, and are spliced in place.

local ENQUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED, BLOCKED = 0, 1, 2, 3, 4, 5
local FORMAT_VERSION = 1

local prefix = KEYS[1]
local K_JOBS = prefix .. 'jobs'
local K_DUE = prefix .. 'due'
local K_LEASES = prefix .. 'leases'
local K_CANCEL = prefix .. 'cancel'
local K_DONE = prefix .. 'done'
local K_STATS = prefix .. 'stats'
local K_EVENTS = prefix .. 'events'
local K_WATCH = prefix .. 'watch'
local CH_WAKE = prefix .. 'wake'
local function k_held(worker) return prefix .. 'held:' .. worker end

-- Redis is the one clock: due times and leases never come from a client.
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- State and attempts straight from the record's first bytes; nil when the header is not
-- in its compact form (then callers decode it).
local function peek(rec)
  local b0, b1, st, att = string.byte(rec, 1, 4)
  if (b0 == 0x95 or b0 == 0x96) and b1 == FORMAT_VERSION and st and st <= 5 and att and att < 127 then
    return st, att
  end
  return nil
end

-- Returns header, rest (input and output; the RUNNING trailer removed), started_ms,
-- worker; or nil when the header cannot be read (the job must then fail alone instead of
-- breaking the whole batch).
local function split(rec)
  local ok, off, h = pcall(cmsgpack.unpack_one, rec, 0)
  if not ok or type(h) ~= 'table' or h[1] ~= FORMAT_VERSION or type(h[2]) ~= 'number'
      or type(h[3]) ~= 'number' or type(h[4]) ~= 'number' or type(h[5]) ~= 'string'
      or (h[6] ~= nil and type(h[6]) ~= 'table') then
    return nil
  end
  local rest = string.sub(rec, off + 1)
  if h[2] == RUNNING and #rest > 0 then
    local n = string.byte(rest, #rest)
    local ok2, t = pcall(cmsgpack.unpack, string.sub(rest, #rest - n, #rest - 1))
    if ok2 and type(t) == 'table' then
      return h, string.sub(rest, 1, #rest - n - 1), t[1], t[2]
    end
  end
  return h, rest
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
local function hmget(key, ids)
  if #ids <= CHUNK then
    return redis.call('HMGET', key, unpack(ids))
  end
  local out = {}
  for i = 1, #ids, CHUNK do
    local part = redis.call('HMGET', key, unpack(ids, i, math.min(i + CHUNK - 1, #ids)))
    for k = 1, #part do out[i + k - 1] = part[k] end
  end
  return out
end

-- Stop reasons of RUNNING jobs asked to stop; the hash is usually empty, and then costs
-- one HLEN per call.
local function cancel_reasons(ids)
  if #ids == 0 or redis.call('HLEN', K_CANCEL) == 0 then return {} end
  return hmget(K_CANCEL, ids)
end

-- Writes collected during the call and applied in flush(), one command per kind (a script
-- touches each job once, so their order does not matter).
local w_jobs, w_del, w_done, w_due, w_uncancel = {}, {}, {}, {}, {}
local function put_job(id, rec)
  w_jobs[#w_jobs + 1] = id
  w_jobs[#w_jobs + 1] = rec
end

-- Counters for dashboards.
local stats = {}
local function bump(field, n)
  stats[field] = (stats[field] or 0) + (n or 1)
end

-- State changes, written to the capped events stream only while somebody watches (the
-- `watch` key exists); otherwise nothing is even collected.
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

-- Puts a job on the timeline; workers are woken for the earliest new due time.
local wake_at = nil
local function schedule(id, due)
  w_due[#w_due + 1] = due
  w_due[#w_due + 1] = id
  if wake_at == nil or due < wake_at then wake_at = due end
end

local function flush()
  each_chunk('HSET', K_JOBS, w_jobs, 2)
  each_chunk('HDEL', K_JOBS, w_del, 1)
  each_chunk('ZADD', K_DONE, w_done, 2)
  each_chunk('ZADD', K_DUE, w_due, 2)
  each_chunk('HDEL', K_CANCEL, w_uncancel, 1)
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

-- Deletes a job that is not in `done` (finished with no retention).
local function delete_job(id, h)
  w_del[#w_del + 1] = id
  local x = h and h[6]
  if x and x.t then
    for _, tag in ipairs(x.t) do
      redis.call('SREM', prefix .. 'tag:' .. tag, id)
    end
  end
end

-- Moves a job (already off the timeline and out of any held set) into a finished state.
-- keep_ms is how long it stays queryable; 0 deletes it now.
local function finish(id, h, rest, state, now, keep_ms)
  h[2] = state
  ext(h).f = now
  if state == SUCCEEDED then bump('succeeded')
  elseif state == FAILED then bump('failed')
  else bump('cancelled') end
  note(id, state, h[3])
  if keep_ms <= 0 then
    delete_job(id, h)
  else
    put_job(id, cmsgpack.pack(h) .. rest)
    w_done[#w_done + 1] = now + keep_ms
    w_done[#w_done + 1] = id
  end
end

-- After a failed attempt: back on the timeline, or FAILED past max attempts. A failure
-- waits out the backoff; a lost worker (immediate = true) is not the job's fault, so its
-- job is due again at once.
local function retry_or_fail(id, h, rest, now, keep_failed, immediate)
  if h[3] >= max_attempts(h) then
    finish(id, h, rest, FAILED, now, keep_failed)
  else
    h[2] = ENQUEUED
    put_job(id, cmsgpack.pack(h) .. rest)
    if immediate then schedule(id, now) else schedule(id, now + backoff_ms(h, h[3])) end
    bump('retried')
    note(id, ENQUEUED, h[3])
  end
end

-- Ends a RUNNING job's attempt outside the success fast path: folds the trailer into the
-- header, then cancels, retries or finishes it. `code` is S, F or R (see ack.lua) and
-- `immediate` retries without backoff (a lost worker).
local function end_attempt(id, rec, cancel, code, msg, output, now, keep_ok, keep_failed, immediate)
  local h, rest, started, worker = split(rec)
  if h == nil then
    local bad = { FORMAT_VERSION, FAILED, 0, now, '', { e = 'undecodable record header (not workq format v1)' } }
    finish(id, bad, rec, FAILED, now, keep_failed)
    return
  end
  local x = ext(h)
  x.s = started
  x.w = worker
  if cancel then
    w_uncancel[#w_uncancel + 1] = id
    x.e = cancel
    finish(id, h, rest, CANCELLED, now, keep_failed)
    return
  end
  if msg ~= '' then x.e = msg end
  if code == 'R' then
    retry_or_fail(id, h, rest, now, keep_failed, immediate)
  else
    if #output > 0 then
      x.o = #output
      rest = rest .. output
    end
    if code == 'S' then
      finish(id, h, rest, SUCCEEDED, now, keep_ok)
    else
      finish(id, h, rest, FAILED, now, keep_failed)
    end
  end
end
