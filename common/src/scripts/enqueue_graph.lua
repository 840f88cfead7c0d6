-- Enqueue a graph of jobs (a chain: its roots ENQUEUED, the others BLOCKED on their
-- parents), optionally as unique work under a name and a policy. All or nothing.
-- KEYS[1] queue prefix
-- ARGV: name ('' for none), policy, keep_failed_ms, n; then per job:
--       id, due, record, lane, ntags, tag...
--   Records carry their in-graph edges in ext: P (parent ids), p (how many), k (child
--   ids). A root is ENQUEUED, any other job BLOCKED; a leaf has no children.
--   due > 0 is an absolute time in ms; due <= 0 means -due ms after Redis' now.
--   policy, with a name: KEEP, REPLACE, APPEND, APPEND_OR_REPLACE (unique work);
--   UPDATE, CANCEL_AND_REENQUEUE (unique periodic work, a single job).
-- Returns {now_ms, status, ids...}: status 1 enqueued (the graph's ids), 0 kept the
-- existing unfinished work (its ids), 2 this graph was enqueued before (a retry),
-- 3 updated the existing periodic work (its id).
local now = now_ms()
local name, policy, keep_failed, n = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local jobs = {}
local a = 5
for j = 1, n do
  local job = { id = ARGV[a], due = tonumber(ARGV[a + 1]), rec = ARGV[a + 2], lane = ARGV[a + 3], tags = {} }
  local nt = tonumber(ARGV[a + 4])
  for t = 1, nt do job.tags[t] = ARGV[a + 4 + t] end
  a = a + 5 + nt
  jobs[j] = job
end
if n == 0 then return { now, 1 } end
if redis.call('HEXISTS', K_JOBS, jobs[1].id) == 1 then return { now, 2, jobs[1].id } end

local function finished(st)
  return st == nil or st == SUCCEEDED or st == FAILED or st == CANCELLED
end

-- The work already under this name: which of it is unfinished, and how its leaves ended.
local existing, unfinished, leaves_unfinished, doomed_by = nil, {}, {}, nil
-- Leaves that succeeded and are still retained: appended work gets their outputs.
local leaves_succeeded = {}
-- Existing ids whose records are still there (the others were pruned).
local retained = {}
if name ~= '' then
  local v = redis.call('HGET', K_UNIQUE, name)
  if v then
    local ok, u = pcall(cmsgpack.unpack, v)
    if ok and type(u) == 'table' and type(u.ids) == 'table' and #u.ids > 0 then existing = u end
  end
  if existing then
    local recs = hmget(K_JOBS, existing.ids)
    local state = {}
    for i, id in ipairs(existing.ids) do
      state[id] = state_of(recs[i])
      if not finished(state[id]) then unfinished[#unfinished + 1] = id end
      if state[id] ~= nil then retained[#retained + 1] = id end
    end
    for _, id in ipairs(existing.leaves or {}) do
      local st = state[id]
      if not finished(st) then
        leaves_unfinished[#leaves_unfinished + 1] = id
      elseif st == SUCCEEDED then
        leaves_succeeded[#leaves_succeeded + 1] = id
      elseif (st == FAILED or st == CANCELLED) and doomed_by == nil then
        doomed_by = { id, st }
      end
    end
  end
end

local function cancel_existing(reason)
  for _, id in ipairs(unfinished) do
    local rec = redis.call('HGET', K_JOBS, id)
    local h, rest
    if rec then h, rest = split(rec) end
    if h and (h[2] == ENQUEUED or h[2] == BLOCKED) then
      unwait(id, h)
      ext(h).e = reason
      finish(id, h, rest, CANCELLED, now, keep_failed)
    elseif h and h[2] == RUNNING then
      redis.call('HSETNX', K_CANCEL, id, reason)
    end
  end
end

local attach, done_parents = {}, {}
local doom = nil
if name ~= '' then
  local reason = "replaced by new work named '" .. name .. "'"
  if policy == 'KEEP' then
    if #unfinished > 0 then
      local out = { now, 0 }
      for _, id in ipairs(existing.ids) do out[#out + 1] = id end
      return out
    end
  elseif policy == 'REPLACE' or policy == 'CANCEL_AND_REENQUEUE' then
    cancel_existing(reason)
  elseif policy == 'UPDATE' then
    if #unfinished > 0 then
      -- Periodic work keeps its id, state, attempts and schedule; it takes the new kind,
      -- input and options, and the run in progress (if any) finishes with the old ones.
      local id = unfinished[1]
      local rec = redis.call('HGET', K_JOBS, id)
      local h, rest, _, _, trailer = split(rec)
      local nh, nrest = split(jobs[1].rec)
      if h and nh then
        local x, nx = ext(h), ext(nh)
        for _, k in ipairs({ 's', 'w', 'f', 'e', 'rb', 'rn', 'ra', 'G', 'u' }) do nx[k] = x[k] end
        local was = lane_of(h)
        -- Tags: the job leaves the sets of tags it no longer has and joins the new ones.
        local keep_tag = {}
        for _, tag in ipairs(jobs[1].tags) do keep_tag[tag] = true end
        for _, tag in ipairs(x.t or {}) do
          if not keep_tag[tag] then redis.call('SREM', prefix .. 'tag:' .. tag, id) end
        end
        for _, tag in ipairs(jobs[1].tags) do redis.call('SADD', prefix .. 'tag:' .. tag, id) end
        h[5] = nh[5]
        h[6] = nx
        if h[2] == ENQUEUED and lane_of(h) ~= was then
          local due = redis.call('ZSCORE', k_due(was), id)
          redis.call('ZREM', k_due(was), id)
          schedule(id, tonumber(due) or now, lane_of(h))
        end
        redis.call('HSET', K_JOBS, id, cmsgpack.pack(h) .. nrest .. (trailer or ''))
        flush()
        return { now, 3, id }
      end
    end
  else -- APPEND, APPEND_OR_REPLACE
    if doomed_by and policy == 'APPEND' then
      doom = doomed_by
    elseif doomed_by then
      cancel_existing(reason)
    else
      attach = leaves_unfinished
      done_parents = leaves_succeeded
    end
  end
end

-- Outputs of the succeeded leaves appended work starts from (as a released child's).
local done_inputs = nil
if #done_parents > 0 then
  done_inputs = {}
  local recs = hmget(K_JOBS, done_parents)
  for i, p in ipairs(done_parents) do
    local ph, prest = nil, nil
    if recs[i] then ph, prest = split(recs[i]) end
    if ph then done_inputs[p] = output_of(ph, prest) end
  end
end

-- Write the graph.
local ids, roots, leaves = {}, {}, {}
for _, job in ipairs(jobs) do
  local h, rest = split(job.rec)
  if h == nil then return redis.error_reply('workq: malformed record for job ' .. job.id) end
  local id = job.id
  ids[#ids + 1] = id
  h[4] = now
  local x = ext(h)
  if doom then
    h[2] = doom[2]
    x.f = now
    if doom[2] == FAILED then
      x.e = 'parent ' .. doom[1] .. ' failed'
      bump('failed')
    else
      x.e = 'parent ' .. doom[1] .. ' was cancelled'
      bump('cancelled')
    end
    w_done[#w_done + 1] = now + keep_failed
    w_done[#w_done + 1] = id
  else
    if h[2] == ENQUEUED then roots[#roots + 1] = id end
    if h[2] == ENQUEUED and (#attach > 0 or done_inputs) then
      local parents = {}
      for _, p in ipairs(attach) do parents[#parents + 1] = p end
      for _, p in ipairs(done_parents) do parents[#parents + 1] = p end
      for _, p in ipairs(x.P or {}) do parents[#parents + 1] = p end
      x.P = parents
      if done_inputs then
        local inputs = x.i
        if type(inputs) ~= 'table' then inputs = {} end
        for p, out in pairs(done_inputs) do inputs[p] = out end
        x.i = inputs
      end
      if #attach > 0 then
        h[2] = BLOCKED
        x.p = (x.p or 0) + #attach
      end
    end
    if h[2] == ENQUEUED then
      local due = job.due
      if due <= 0 then due = now - due end
      schedule(id, due, job.lane)
    else
      -- Waits for its parents; its delay (or time) applies from its release.
      if job.due ~= 0 then x.D = job.due end
      w_blocked_add[#w_blocked_add + 1] = id
    end
    bump('enqueued')
  end
  if type(x.k) ~= 'table' or #x.k == 0 then leaves[#leaves + 1] = id end
  for _, tag in ipairs(job.tags) do
    redis.call('SADD', prefix .. 'tag:' .. tag, id)
  end
  put_job(id, cmsgpack.pack(h) .. rest)
  note(id, h[2], 0)
end

-- Appended work: the old leaves now have the new roots as children.
for _, leaf in ipairs(attach) do
  local rec = redis.call('HGET', K_JOBS, leaf)
  local h, rest, _, _, trailer = nil, nil, nil, nil, nil
  if rec then h, rest, _, _, trailer = split(rec) end
  if h then
    local x = ext(h)
    local kids = x.k or {}
    for _, r in ipairs(roots) do kids[#kids + 1] = r end
    x.k = kids
    redis.call('HSET', K_JOBS, leaf, cmsgpack.pack(h) .. rest .. (trailer or ''))
  end
end

if name ~= '' then
  local all = {}
  if #attach > 0 or done_inputs then
    for _, id in ipairs(retained) do all[#all + 1] = id end
  end
  for _, id in ipairs(ids) do all[#all + 1] = id end
  redis.call('HSET', K_UNIQUE, name, cmsgpack.pack({ ids = all, leaves = leaves }))
end

flush()
local out = { now, 1 }
for _, id in ipairs(ids) do out[#out + 1] = id end
return out
