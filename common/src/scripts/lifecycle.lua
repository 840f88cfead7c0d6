-- The lifecycle of a job: finishing it (with its children in a chain and its unique
-- name), the next period of periodic work, retries, ending an attempt, and cancelling.
-- These helpers take the call's time and retentions from the per-call context (now,
-- keep_ok, keep_failed: keys.lua, set by begin() and the script).

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
        redis.call('SREM', k_tag(tag), id)
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
local function settle_children(id, h, rest, state)
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
        to_done(cid, keep_failed, state)
        if type(cx.k) == 'table' then
          for _, gid in ipairs(cx.k) do queue[#queue + 1] = { gid, cid } end
        end
      end
    end
  end
end

-- Moves a job (already off its timeline and out of any held set) into a finished state,
-- kept queryable for keep_ok (SUCCEEDED) or keep_failed; a retention of 0 deletes it now.
-- Its progress goes too (ext.G marks that it has some). (The ack of a job kept after it
-- finishes runs this per job: its writes are inline, not to_done(), as a call per job
-- costs about 1 % more Redis CPU there.)
local function finish(id, h, rest, state)
  h[2] = state
  local x = ext(h)
  x.f = now
  local keep_ms = keep_failed
  if state == SUCCEEDED then
    bump('succeeded')
    keep_ms = keep_ok
  elseif state == FAILED then bump('failed')
  else bump('cancelled') end
  note(id, state, h[3])
  if x.G then
    w_unprogress[#w_unprogress + 1] = id
    x.G = nil
  end
  settle_children(id, h, rest, state)
  if keep_ms <= 0 then
    delete_job(id, h)
  else
    put_job(id, cmsgpack.pack(h) .. rest)
    w_done[#w_done + 1] = now + keep_ms
    w_done[#w_done + 1] = id
    bump(RETAINED[state])
  end
end

-- A record whose header cannot be read fails alone, keeping its bytes as the input, in
-- place of a header that says so.
local function fail_undecodable(id, rec)
  local bad = { FORMAT_VERSION, FAILED, 0, now, '', {} }
  ext(bad).e = 'undecodable record header (not workq format v1)'
  finish(id, bad, rec, FAILED)
end

-- Puts a job back on its lane's timeline, due at `due`, counted under `counter`.
local function requeue(id, h, rest, due, counter)
  h[2] = ENQUEUED
  put_job(id, cmsgpack.pack(h) .. rest)
  schedule(id, due, lane_of(h))
  bump(counter)
  note(id, ENQUEUED, h[3])
end

-- Periodic work never finishes on its own: when a period's run is over (succeeded, failed
-- for good, or out of attempts), the job waits for the next period. next_due and
-- following come from the worker (it knows the schedule, cron included); without them
-- (a lost worker) the due time precomputed for the next period is used, which may lie
-- in the past: a missed period then runs once, at once.
local function next_period(id, h, rest, next_due, following)
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
  requeue(id, h, rest, due, 'periodic_runs')
end

-- Appends a failed attempt's error to the job's history (ext.E, the latest last, each
-- `{attempt, at, message}`), which keeps the last ERROR_HISTORY.
local function remember_error(x, attempt, msg)
  local list = x.E
  if type(list) ~= 'table' then list = {} end
  list[#list + 1] = { attempt, now, msg }
  while #list > ERROR_HISTORY do table.remove(list, 1) end
  x.E = list
end

-- After a failed attempt: back on the timeline (after the backoff, or at once for a lost
-- worker, which is not the job's fault), or finished: FAILED past max attempts, or, for
-- periodic work, on to the next period.
local function retry_or_fail(id, h, rest, immediate, next_due, following)
  if run_attempts(h) >= max_attempts(h) then
    if is_periodic(h) then
      ext(h).L = { FAILED, now }
      next_period(id, h, rest, next_due, following)
    else
      finish(id, h, rest, FAILED)
    end
  elseif immediate then
    requeue(id, h, rest, now, 'retried')
  else
    requeue(id, h, rest, now + backoff_ms(h, run_attempts(h)), 'retried')
  end
end

-- An attempt ends, whatever the outcome: the trailer (started_ms, worker) is folded into
-- the header, and the attempt's progress goes. (end_attempt() does the same inline: the
-- ack of a job kept after it finishes runs it per job, and the call costs about 0.5 %
-- more Redis CPU there.)
local function close_attempt(id, x, started, worker)
  x.s = started
  x.w = worker
  if x.G then
    w_unprogress[#w_unprogress + 1] = id
    x.G = nil
  end
end

-- Ends a RUNNING job's attempt outside the success fast path: folds the trailer into the
-- header, then cancels (when `cancel`, a stop reason, is set), retries or finishes it.
-- `code` is S, F or R (ack.rs) and `immediate` retries without backoff (a lost worker);
-- next_due and following are the worker's next periods of periodic work (0 for none).
local function end_attempt(id, rec, cancel, code, msg, output, immediate, next_due, following)
  local h, rest, started, worker = split(rec)
  if h == nil then
    fail_undecodable(id, rec)
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
    finish(id, h, rest, CANCELLED)
    return
  end
  if msg ~= '' then
    x.e = msg
    if code ~= 'S' then remember_error(x, h[3], msg) end
  end
  if code == 'R' then
    retry_or_fail(id, h, rest, immediate, next_due, following)
  elseif is_periodic(h) then
    x.L = { code == 'S' and SUCCEEDED or FAILED, now }
    next_period(id, h, rest, next_due, following)
  else
    if #output > 0 then
      x.o = #output
      rest = rest .. output
    end
    if code == 'S' then
      finish(id, h, rest, SUCCEEDED)
    else
      finish(id, h, rest, FAILED)
    end
  end
end

-- An attempt whose worker is gone (its lease ran out, or its claim reply was lost): the
-- attempt counts and the job is due again at once, or ends CANCELLED when `cancel` (a
-- pending stop reason) is set.
local function lose_attempt(id, rec, cancel, why)
  end_attempt(id, rec, cancel, 'R', why, '', true)
end

-- Cancels a job: a waiting (ENQUEUED or BLOCKED) one at once, with its subtree in a chain;
-- a RUNNING one is asked to stop (its worker learns it at its next heartbeat). Returns 1
-- cancelled, 2 asked to stop, 3 already finished.
local function cancel_job(id, h, rest, reason)
  if h[2] == ENQUEUED or h[2] == BLOCKED then
    unwait(id, h)
    ext(h).e = reason
    finish(id, h, rest, CANCELLED)
    return 1
  elseif h[2] == RUNNING then
    redis.call('HSETNX', K_CANCEL, id, reason)
    return 2
  end
  return 3
end
