-- Enqueue a graph of jobs (a chain), optionally as unique work. KEYS, ARGV and the
-- reply: common/src/scripts/enqueue_graph.rs (the one statement of this script's
-- contract). Every job and edge is checked (validate.lua) before the first write.
if not string.find(prefix, '^workq:{[^{},%s]+}:$') or #prefix > 73 then
  return redis.error_reply("ERR workq: refused: KEYS[1] must be 'workq:{<queue>}:' (a queue name of 1 to 64 bytes without braces, commas or spaces)")
end
local name, policy, n = ARGV[1], ARGV[2], tonumber(ARGV[4])
keep_failed = tonumber(ARGV[3])
local policies = { KEEP = true, REPLACE = true, APPEND = true, APPEND_OR_REPLACE = true, UPDATE = true,
  CANCEL_AND_REENQUEUE = true }
if not is_int(n, 0, MAX_BATCH) or not is_int(keep_failed, 0, MAX_INT) or (name ~= '' and not policies[policy])
    or #name > MAX_TAG_BYTES then
  return redis.error_reply('ERR workq: refused: ARGV must be name (0 to ' .. MAX_TAG_BYTES .. ' bytes), policy (KEEP, REPLACE, APPEND, '
    .. 'APPEND_OR_REPLACE, UPDATE or CANCEL_AND_REENQUEUE), keep_failed_ms, n (0 to ' .. MAX_BATCH .. '), then the jobs')
end
-- Every job is read and checked before anything is written: a refused graph stores nothing.
local jobs = {}
local in_graph = {}
local a = 5
for j = 1, n do
  local id, ds, rec, lane, nt = ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], tonumber(ARGV[a + 4])
  if rec == nil or not is_int(nt, 0, #ARGV - a - 4) then
    return redis.error_reply('ERR workq: refused: job ' .. j .. ': ARGV must give id, due, record, lane, ntags, then ntags tags')
  end
  if not valid_id(id) then
    return refusal(j, id, 'id', 'must be a ULID: 26 characters of Crockford base32, upper case, the first 0 to 7')
  end
  if in_graph[id] then return refusal(j, id, 'id', 'appears twice in the graph') end
  local h, due, field, what = check_new(rec, ds, lane, true)
  if due == nil then return refusal(j, id, field, what) end
  local job = { id = id, due = tonumber(ds), rec = rec, lane = lane, h = h, rest = nil, tags = {} }
  if h then
    local _, rest = split(rec)
    job.rest = rest
    job.tags = h[6].t or {}
  end
  for t = 1, nt do
    local tag, found = ARGV[a + 4 + t], false
    for _, have in ipairs(job.tags) do
      if have == tag then found = true end
    end
    if not found then
      return refusal(j, id, 'tags', "'" .. printable(tag) .. "' is given in ARGV but is not in the record's ext.t (tags are indexed from the record)")
    end
  end
  a = a + 5 + nt
  in_graph[id] = j
  jobs[j] = job
end
if a <= #ARGV then
  return redis.error_reply('ERR workq: refused: ' .. (#ARGV - a + 1) .. ' arguments after the last job')
end
-- The edges: a root is ENQUEUED with no parents; any other job is BLOCKED on p parents
-- listed in P, all in this graph, each listing it among its children (k).
for j, job in ipairs(jobs) do
  local x = (job.h and job.h[6]) or {}
  local parents = x.P or {}
  local blocked = string.byte(job.rec, 3) == BLOCKED
  if blocked ~= (#parents > 0) or (blocked and x.p ~= #parents) then
    return refusal(j, job.id, 'ext.P', 'a BLOCKED job lists its parents in P and their count in p; an ENQUEUED one has none')
  end
  for _, p in ipairs(parents) do
    local pj = in_graph[p]
    local listed = false
    if pj then
      for _, c in ipairs((jobs[pj].h and jobs[pj].h[6].k) or {}) do
        if c == job.id then listed = true end
      end
    end
    if not listed then
      return refusal(j, job.id, 'ext.P', 'parent ' .. printable(p) .. " is not a job of this graph that lists it in its k")
    end
  end
  for _, c in ipairs(x.k or {}) do
    if not in_graph[c] then return refusal(j, job.id, 'ext.k', 'child ' .. printable(c) .. ' is not a job of this graph') end
  end
  if x.u ~= nil and x.u ~= name then
    return refusal(j, job.id, 'ext.u', "must be the unique name of the call ('" .. printable(name) .. "')")
  end
end
if n == 0 then return { now, 1 } end
if (policy == 'UPDATE' or policy == 'CANCEL_AND_REENQUEUE') and n ~= 1 then
  return redis.error_reply('ERR workq: refused: ' .. policy .. ' takes a single (periodic) job')
end
if redis.call('HEXISTS', K_JOBS, jobs[1].id) == 1 then return { now, 2, jobs[1].id } end

-- The ext keys an UPDATE keeps from the work it updates: its latest attempt, its period
-- and its unique name.
local UPDATE_KEEPS = { 's', 'w', 'f', 'e', 'rb', 'rn', 'G', 'u' }

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
    if h then cancel_job(id, h, rest, reason) end
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
      local nh, nrest = jobs[1].h, jobs[1].rest
      if not nh then nh, nrest = split(jobs[1].rec) end
      if h and nh then
        local x, nx = ext(h), ext(nh)
        for _, k in ipairs(UPDATE_KEEPS) do nx[k] = x[k] end
        local was = lane_of(h)
        -- Tags: the job leaves the sets of tags it no longer has and joins the new ones.
        local keep_tag = {}
        for _, tag in ipairs(jobs[1].tags) do keep_tag[tag] = true end
        for _, tag in ipairs(x.t or {}) do
          if not keep_tag[tag] then redis.call('SREM', k_tag(tag), id) end
        end
        for _, tag in ipairs(jobs[1].tags) do redis.call('SADD', k_tag(tag), id) end
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
  local h, rest = job.h, job.rest
  if not h then h, rest = split(job.rec) end
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
    to_done(id, keep_failed, doom[2])
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
    redis.call('SADD', k_tag(tag), id)
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
