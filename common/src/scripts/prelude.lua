-- Shared head of the workq function library. Rust prepends constants (DEFAULT_*,
-- EVENTS_MAXLEN, MAX_*, the state codes ENQUEUED = 0 .. BLOCKED = 5 and FORMAT_VERSION)
-- and appends each script as one function (see scripts/mod.rs), so that those values
-- live in one place and the helpers below are built once per load, not once per call.
--
-- Layout of a queue (all keys share the {queue} hash tag):
--   jobs         hash   id -> record
--   due          zset   ENQUEUED ids by due time (ms), plain lane
--   due:<lane>   zset   the same for lane x (expedited), @labels, x@labels
--   lanes        set    lanes other than the plain one that ever held work
--   blocked      set    BLOCKED ids (waiting for parents in a chain)
--   leases       zset   worker id -> lease end (ms); one lease covers all a worker holds
--   workers      hash   worker id -> its labels (comma-separated)
--   held:<w>     set    ids of the RUNNING jobs worker <w> holds
--   cancel       hash   id -> stop reason, for RUNNING jobs asked to stop
--   progress     hash   id -> progress data of a RUNNING job
--   unique       hash   unique name -> MessagePack {ids = [...], leaves = [...]}
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

-- Key names of the queue a call is about, set by begin() (see the end of this file).
local prefix
local K_JOBS, K_DUE, K_LANES, K_BLOCKED, K_LEASES, K_WORKERS, K_CANCEL, K_PROGRESS
local K_UNIQUE, K_DONE, K_STATS, K_EVENTS, K_WATCH, CH_WAKE
local function k_held(worker) return prefix .. 'held:' .. worker end
local function k_due(lane)
  if lane == '' then return K_DUE end
  return K_DUE .. ':' .. lane
end

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

-- Returns header, rest (input and output; a RUNNING record's trailer removed), started_ms,
-- worker, trailer bytes; or nil when the header cannot be read (the job must then fail
-- alone instead of breaking the whole batch).
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
      return h, string.sub(rest, 1, #rest - n - 1), t[1], t[2], string.sub(rest, #rest - n)
    end
  end
  return h, rest
end

-- State and attempts of a record: from its fixed bytes, or else from its decoded header;
-- nil for a record that is missing or cannot be read.
local function state_of(rec)
  if not rec then return nil end
  local st, att = peek(rec)
  if st == nil then
    local h = split(rec)
    if h then st, att = h[2], h[3] end
  end
  return st, att
end

local function ext(h)
  local x = h[6]
  if x == nil then
    x = {}
    h[6] = x
  end
  return x
end

-- The lane a job waits in: '' (plain), 'x' (expedited), '@gpu,eu' (needs those labels,
-- sorted by the producer), 'x@gpu,eu'; followed by '#<kind>' once a worker that does not
-- run its kind has passed it on (ext.K), so that only workers of its kind see it again.
local function lane_of(h)
  local x = h[6]
  if x == nil then return '' end
  local lane = ''
  if x.X then lane = 'x' end
  if type(x.l) == 'table' and #x.l > 0 then lane = lane .. '@' .. table.concat(x.l, ',') end
  if x.K then lane = lane .. '#' .. h[5] end
  return lane
end

local function max_attempts(h)
  local x = h[6]
  return (x and x.m) or DEFAULT_MAX_ATTEMPTS
end

local function is_periodic(h)
  local x = h[6]
  return x ~= nil and (x.ri ~= nil or x.rc ~= nil)
end

-- Attempts made in the current run. Periodic work starts counting again each period
-- (ext.rb); the attempt number itself keeps growing, because it is the fencing token.
local function run_attempts(h)
  local x = h[6]
  return h[3] - ((x and x.rb) or 0)
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

-- Forgets a pruned or deleted job in its unique name's sequence.
local function unlink_unique(id, name)
  local v = redis.call('HGET', K_UNIQUE, name)
  if not v then return end
  local ok, u = pcall(cmsgpack.unpack, v)
  if not ok or type(u) ~= 'table' then
    redis.call('HDEL', K_UNIQUE, name)
    return
  end
  local function without(list)
    local out = {}
    for _, x in ipairs(list or {}) do
      if x ~= id then out[#out + 1] = x end
    end
    return out
  end
  u.ids = without(u.ids)
  u.leaves = without(u.leaves)
  if #u.ids == 0 then
    redis.call('HDEL', K_UNIQUE, name)
  else
    redis.call('HSET', K_UNIQUE, name, cmsgpack.pack(u))
  end
end

-- Deletes a job that is not in `done` (finished with no retention, or pruned).
local function delete_job(id, h)
  w_del[#w_del + 1] = id
  local x = h and h[6]
  if x then
    if x.t then
      for _, tag in ipairs(x.t) do
        redis.call('SREM', prefix .. 'tag:' .. tag, id)
      end
    end
    if x.u then unlink_unique(id, x.u) end
  end
end

-- The output bytes at the end of `rest`, if any.
local function output_of(h, rest)
  local x = h[6]
  if x and x.o and x.o > 0 then return string.sub(rest, #rest - x.o + 1) end
  return ''
end

-- A finished job's children. When it SUCCEEDED, each child gets its output (for the input
-- merger) and is released once no parent is left; when it FAILED or was CANCELLED, every
-- descendant ends the same way, its stop reason naming the parent. Children are read and
-- written at once (not batched): two parents of one child may finish in the same call.
local function settle_children(id, h, rest, state, now, keep_failed)
  local x = h[6]
  if not x or type(x.k) ~= 'table' or #x.k == 0 then return end
  if state == SUCCEEDED then
    local output = output_of(h, rest)
    for _, cid in ipairs(x.k) do
      local rec = redis.call('HGET', K_JOBS, cid)
      local ch, crest
      if rec then ch, crest = split(rec) end
      if ch and ch[2] == BLOCKED then
        local cx = ext(ch)
        local inputs = cx.i
        if type(inputs) ~= 'table' then inputs = {} end
        inputs[id] = output
        cx.i = inputs
        cx.p = (cx.p or 1) - 1
        if cx.p <= 0 then
          cx.p = nil
          ch[2] = ENQUEUED
          w_blocked_rem[#w_blocked_rem + 1] = cid
          -- D: the job's own delay (<= 0, -ms from release) or time (> 0, ms).
          local due = now
          if cx.D then
            if cx.D > 0 then due = math.max(now, cx.D) else due = now - cx.D end
            cx.D = nil
          end
          schedule(cid, due, lane_of(ch))
          note(cid, ENQUEUED, ch[3])
        end
        redis.call('HSET', K_JOBS, cid, cmsgpack.pack(ch) .. crest)
      end
    end
    return
  end
  local verb = 'failed'
  if state == CANCELLED then verb = 'was cancelled' end
  local queue, seen = {}, {}
  for _, cid in ipairs(x.k) do queue[#queue + 1] = { cid, id } end
  local i = 1
  while i <= #queue do
    local cid, parent = queue[i][1], queue[i][2]
    i = i + 1
    if not seen[cid] then
      seen[cid] = true
      local rec = redis.call('HGET', K_JOBS, cid)
      local ch, crest
      if rec then ch, crest = split(rec) end
      if ch and (ch[2] == BLOCKED or ch[2] == ENQUEUED) then
        unwait(cid, ch)
        ch[2] = state
        local cx = ext(ch)
        cx.f = now
        cx.e = 'parent ' .. parent .. ' ' .. verb
        if state == FAILED then bump('failed') else bump('cancelled') end
        note(cid, state, ch[3])
        redis.call('HSET', K_JOBS, cid, cmsgpack.pack(ch) .. crest)
        w_done[#w_done + 1] = now + keep_failed
        w_done[#w_done + 1] = cid
        if type(cx.k) == 'table' then
          for _, gid in ipairs(cx.k) do queue[#queue + 1] = { gid, cid } end
        end
      end
    end
  end
end

-- Moves a job (already off its timeline and out of any held set) into a finished state.
-- keep_ms is how long it stays queryable; 0 deletes it now.
local function finish(id, h, rest, state, now, keep_ms, keep_failed)
  h[2] = state
  local x = ext(h)
  x.f = now
  if state == SUCCEEDED then bump('succeeded')
  elseif state == FAILED then bump('failed')
  else bump('cancelled') end
  note(id, state, h[3])
  if x.G then
    w_unprogress[#w_unprogress + 1] = id
    x.G = nil
  end
  settle_children(id, h, rest, state, now, keep_failed or keep_ms)
  if keep_ms <= 0 then
    delete_job(id, h)
  else
    put_job(id, cmsgpack.pack(h) .. rest)
    w_done[#w_done + 1] = now + keep_ms
    w_done[#w_done + 1] = id
  end
end

-- Periodic work never finishes on its own: when a period's run is over (succeeded, failed
-- for good, or out of attempts), the job waits for the next period. next_due and
-- following come from the worker (it knows the schedule, cron included); without them
-- (a lost worker) the due time precomputed for the next period is used, which may lie
-- in the past: a missed period then runs once, at once.
local function next_period(id, h, rest, now, next_due, following)
  local x = ext(h)
  local due = next_due
  if x.ri then
    -- Interval work: runs at anchor + k * interval + (interval - flex), the anchor being
    -- when it was enqueued; the next is the first such time after now.
    local off = x.ri - (x.rf or x.ri)
    local k = math.floor((now - h[4] - off) / x.ri) + 1
    if k < 1 then k = 1 end
    due = h[4] + k * x.ri + off
    x.rn = due + x.ri
  else
    if not due or due <= 0 then due = x.rn or now end
    if following and following > 0 then x.rn = following end
  end
  x.rb = h[3]
  h[2] = ENQUEUED
  put_job(id, cmsgpack.pack(h) .. rest)
  schedule(id, due, lane_of(h))
  bump('periodic_runs')
  note(id, ENQUEUED, h[3])
end

-- After a failed attempt: back on the timeline (after the backoff, or at once for a lost
-- worker, which is not the job's fault), or finished: FAILED past max attempts, or, for
-- periodic work, on to the next period.
local function retry_or_fail(id, h, rest, now, keep_failed, immediate, next_due, following)
  if run_attempts(h) >= max_attempts(h) then
    if is_periodic(h) then
      next_period(id, h, rest, now, next_due, following)
    else
      finish(id, h, rest, FAILED, now, keep_failed)
    end
  else
    h[2] = ENQUEUED
    put_job(id, cmsgpack.pack(h) .. rest)
    if immediate then
      schedule(id, now, lane_of(h))
    else
      schedule(id, now + backoff_ms(h, run_attempts(h)), lane_of(h))
    end
    bump('retried')
    note(id, ENQUEUED, h[3])
  end
end

-- Ends a RUNNING job's attempt outside the success fast path: folds the trailer into the
-- header, then cancels, retries or finishes it. `code` is S, F or R (see apply_acks) and
-- `immediate` retries without backoff (a lost worker).
local function end_attempt(id, rec, cancel, code, msg, output, now, keep_ok, keep_failed,
                           immediate, next_due, following)
  local h, rest, started, worker = split(rec)
  if h == nil then
    local bad = { FORMAT_VERSION, FAILED, 0, now, '', { e = 'undecodable record header (not workq format v1)' } }
    finish(id, bad, rec, FAILED, now, keep_failed)
    return
  end
  local x = ext(h)
  x.s = started
  x.w = worker
  if x.G then
    w_unprogress[#w_unprogress + 1] = id
    x.G = nil
  end
  if cancel then
    w_uncancel[#w_uncancel + 1] = id
    x.e = cancel
    finish(id, h, rest, CANCELLED, now, keep_failed)
    return
  end
  if msg ~= '' then x.e = msg end
  if code == 'R' then
    retry_or_fail(id, h, rest, now, keep_failed, immediate, next_due, following)
  elseif is_periodic(h) then
    next_period(id, h, rest, now, next_due, following)
  else
    if #output > 0 then
      x.o = #output
      rest = rest .. output
    end
    if code == 'S' then
      finish(id, h, rest, SUCCEEDED, now, keep_ok, keep_failed)
    else
      finish(id, h, rest, FAILED, now, keep_failed)
    end
  end
end

-- A job's stamp of Redis time: the 8 bytes of a big-endian uint64.
local function u64be(n)
  local b = {}
  for i = 8, 1, -1 do
    b[i] = n % 256
    n = math.floor(n / 256)
  end
  return string.char(unpack(b))
end

-- Every function of the library starts here. The library is loaded once, so the helpers
-- above are made once; what a call collects (writes, counters, events, the wake time)
-- starts empty on each call, and the key names are those of the call's queue (kept per
-- queue, so that a call does not build fourteen strings).
local key_sets, key_set_count = {}, 0
local function begin(keys)
  prefix = keys[1]
  local k = key_sets[prefix]
  if k == nil then
    if key_set_count >= 10000 then key_sets, key_set_count = {}, 0 end
    k = {}
    for _, name in ipairs({ 'jobs', 'due', 'lanes', 'blocked', 'leases', 'workers', 'cancel',
        'progress', 'unique', 'done', 'stats', 'events', 'watch', 'wake' }) do
      k[#k + 1] = prefix .. name
    end
    key_sets[prefix] = k
    key_set_count = key_set_count + 1
  end
  K_JOBS, K_DUE, K_LANES, K_BLOCKED, K_LEASES, K_WORKERS, K_CANCEL = k[1], k[2], k[3], k[4], k[5], k[6], k[7]
  K_PROGRESS, K_UNIQUE, K_DONE, K_STATS, K_EVENTS, K_WATCH, CH_WAKE = k[8], k[9], k[10], k[11], k[12], k[13], k[14]
  w_jobs, w_del, w_done, w_due, w_uncancel, w_unprogress = {}, {}, {}, {}, {}, {}
  w_blocked_add, w_blocked_rem = {}, {}
  stats = {}
  watched = nil
  ev_ids, ev_states, ev_attempts = {}, {}, {}
  wake_at = nil
end
