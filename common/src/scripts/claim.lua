-- Claim due jobs for one worker, take over expired leases, prune. KEYS, ARGV and the
-- reply: common/src/scripts/claim.rs (the one statement of this script's contract).
-- Every redis.call costs more than a job's share of the work, so the common case (nothing
-- to prune, no lease run out, one lane) reads each key once.
local limit = math.min(tonumber(ARGV[1]), 1000)
local lease_ms = tonumber(ARGV[2])
local worker = ARGV[3]
keep_failed = tonumber(ARGV[4])
local maint = tonumber(ARGV[5])
local next_wake = nil
local function wake_for(t)
  if t and (next_wake == nil or t < next_wake) then next_wake = t end
end

-- 1. Finished jobs past retention (pruning.lua).
wake_for(auto_prune(maint, ARGV[9] == '1'))

-- 2. Workers whose lease ran out lose their jobs' attempts (reaper.lua).
wake_for(reap(worker, maint))

-- 3. Presence (for stats): when this worker last looked for work, its labels, its kinds,
--    host and slots. The worker asks for it every few seconds, not on every call.
if ARGV[7] == '1' then
  local tail = ARGV[10]
  tail = (tail and tail ~= '') and ('|' .. tail) or ''
  redis.call('HSET', K_WORKERS, worker, now .. '|' .. ARGV[6] .. '|' .. (ARGV[8] or '') .. tail)
end

-- 4. The lanes this worker serves.
local mine = {}
for label in string.gmatch(ARGV[6], '[^,]+') do mine[label] = true end
local runs = kind_set(ARGV[8] or '')
local function serves(lane)
  local hash = string.find(lane, '#', 1, true)
  if hash then
    if runs and not runs[string.sub(lane, hash + 1)] then return false end
    lane = string.sub(lane, 1, hash - 1)
  end
  local at = string.find(lane, '@', 1, true)
  if not at then return true end
  for label in string.gmatch(string.sub(lane, at + 1), '[^,]+') do
    if not mine[label] then return false end
  end
  return true
end
local expedited, normal = {}, { '' }
local paused = false
for _, lane in ipairs(redis.call('SMEMBERS', K_LANES)) do
  if lane == '!' then -- keys::PAUSE_MARKER
    paused = true -- admin.lua's pause: no claims, maintenance goes on
  elseif serves(lane) then
    if string.sub(lane, 1, 1) == 'x' then
      expedited[#expedited + 1] = lane
    else
      normal[#normal + 1] = lane
    end
  end
end
-- 5. Claim: expedited lanes first, then the others; within each group, in due order
--    across its lanes (so work in a labelled lane is not held back behind newer work
--    in the plain lane). `oldest` and `newest` are the earliest and latest due times of
--    the jobs claimed, and at_oldest/at_newest their jobs' places in `ids`: the reply
--    puts those two jobs first and last, so that the worker's lateness metric knows their
--    due times and places the others between them. Scores are read only where needed,
--    because Redis 7.0 formats each one with printf, and with no call made for them alone:
--    where more jobs are due than taken, the newest is not read (newest_unknown).
local out = { now, -1, -1, -1 }
local ids = {}
local oldest, newest, at_oldest, at_newest = nil, nil, nil, nil
local newest_unknown = false
local function saw(due, at)
  if oldest == nil or due < oldest then oldest, at_oldest = due, at end
  if newest == nil or due > newest then newest, at_newest = due, at end
end
local function take(group)
  local room = math.max(limit - #ids, 0)
  if #group == 0 then return end
  if #group == 1 then -- the common case: no merging, no table per job
    local key = k_due(group[1])
    local first = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
    if not first[2] then return end
    local d0 = tonumber(first[2])
    if d0 > now or room == 0 then
      wake_for(d0)
      return
    end
    local at = #ids + 1
    saw(d0, at)
    local due = redis.call('ZRANGEBYSCORE', key, '-inf', now, 'LIMIT', 0, room + 1)
    local n = math.min(#due, room)
    for k = 1, n do ids[#ids + 1] = due[k] end
    if #due > room then
      due[#due] = nil
      wake_for(now) -- more are due
      newest_unknown = true
    else
      -- The last job taken gives the newest due time claimed, and the one after it when
      -- to look again.
      local tail = redis.call('ZRANGE', key, n - 1, n, 'WITHSCORES')
      if tail[2] then saw(tonumber(tail[2]), at + n - 1) end
      if tail[4] then wake_for(tonumber(tail[4])) end
    end
    each_chunk('ZREM', key, due, 1)
    return
  end
  -- Each lane is read once: its first room + 1 entries by rank are the due ones to take,
  -- in order, and after them the entry that gives the next wake.
  local picked = {}
  for li, lane in ipairs(group) do
    local head = redis.call('ZRANGE', k_due(lane), 0, room, 'WITHSCORES')
    for k = 1, #head, 2 do
      local due = tonumber(head[k + 1])
      if k > 2 * room or due > now then
        wake_for(due)
        break
      end
      picked[#picked + 1] = { head[k], due, li }
    end
  end
  if #picked > room then
    table.sort(picked, function(a, b)
      if a[2] ~= b[2] then return a[2] < b[2] end
      return a[1] < b[1] -- the same due time: the older id (ids are time-ordered)
    end)
    wake_for(picked[room + 1][2]) -- due, left for the next call
  end
  local taken = {}
  for n = 1, math.min(room, #picked) do
    local e = picked[n]
    ids[#ids + 1] = e[1]
    saw(e[2], #ids)
    local t = taken[e[3]]
    if not t then t = {}; taken[e[3]] = t end
    t[#t + 1] = e[1]
  end
  for li, t in pairs(taken) do each_chunk('ZREM', k_due(group[li]), t, 1) end
end
if not paused then
  take(expedited)
  take(normal)
end
-- The jobs due at `oldest` and at `newest` go first and last.
local function swap(a, b) ids[a], ids[b] = ids[b], ids[a] end
if at_oldest and at_oldest ~= 1 then
  swap(1, at_oldest)
  if at_newest == 1 then at_newest = at_oldest end
end
if newest_unknown then
  newest = nil
elseif at_newest and at_newest ~= #ids and #ids > 1 then
  swap(#ids, at_newest)
end
if #ids > 0 then
  local recs = hmget(K_JOBS, ids)
  local trailer = cmsgpack.pack({ now, worker })
  trailer = trailer .. string.char(#trailer)
  local claimed = {}
  local byte, sub, find = string.byte, string.sub, string.find
  local checked_head = nil -- ids are checked as in enqueue.lua
  for n, id in ipairs(ids) do
    local rec = recs[n]
    local attempt = nil
    local good_id = false
    if #id == 26 then
      if checked_head and find(id, checked_head, 1, true) == 1 and ID_CHAR[byte(id, 25)]
          and ID_CHAR[byte(id, 26)] then
        good_id = true
      elseif find(id, ID_PATTERN) then
        good_id = true
        checked_head = sub(id, 1, 24)
      end
    end
    if rec and not good_id then
      -- Written by hand past enqueue's checks: it fails alone, and stays out of events
      -- (whose lists are comma-separated) and out of the claim reply.
      fail_malformed_id(id, rec)
    elseif rec then
      local b0, b1, st, att, b5 = byte(rec, 1, 5)
      local kind = nil
      if runs and b5 == HEADER_STAMP then
        local kb = byte(rec, 14)
        if kb and kb >= 0xa0 and kb <= 0xbf then
          kind = sub(rec, 15, 14 + kb - 0xa0)
        elseif kb == 0xd9 then
          kind = sub(rec, 16, 15 + (byte(rec, 15) or 0))
        end
      end
      if (b0 == HEADER_BARE or b0 == HEADER_EXT) and b1 == FORMAT_VERSION and st == ENQUEUED and att < 126
          and ((kind and runs[kind]) or not runs) then
        attempt = att + 1
        rec = string.char(b0, FORMAT_VERSION, RUNNING, attempt) .. sub(rec, 5) .. trailer
      else
        local h, rest, _, by = split(rec)
        if h == nil then
          fail_undecodable(id, rec)
        elseif h[2] == ENQUEUED and runs and not runs[h[5]] then
          park_for_kind(id, h, rest)
        elseif h[2] == ENQUEUED then
          h[2] = RUNNING
          h[3] = h[3] + 1
          attempt = h[3]
          rec = cmsgpack.pack(h) .. rest .. trailer
        else
          check_unexpected(id, rec, h, rest, by)
        end
      end
    end
    if attempt then
      put_job(id, rec)
      claimed[#claimed + 1] = id
      out[#out + 1] = id
      out[#out + 1] = rec
      if watched ~= false then note(id, RUNNING, attempt) end
    end
  end
  if #claimed > 0 then
    each_chunk('SADD', k_held(worker), claimed, 1)
    -- The lease covers the new jobs until the worker's next heartbeat.
    redis.call('ZADD', K_LEASES, 'GT', now + lease_ms, worker)
    bump('claimed', #claimed)
    -- (Due times read before the records: a stale entry, one whose record is gone or no
    -- longer ENQUEUED, can widen them a little.)
    if oldest then out[3], out[4] = oldest, newest or -1 end
  end
end

if next_wake then out[2] = next_wake end
flush()
return out
