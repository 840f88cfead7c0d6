-- Extend one worker's lease and report on the jobs it holds. KEYS, ARGV and the reply:
-- common/src/scripts/heartbeat.rs (the one statement of this script's contract).
local worker = ARGV[1]
local known_until = tonumber(ARGV[3])
keep_failed = tonumber(ARGV[4])
-- Presence (for stats), as claims record it (`<labels>|<kinds>|<host>|<slots>` after the
-- time): a busy worker may not claim for a while.
redis.call('HSET', K_WORKERS, worker, now .. '|' .. ARGV[5])
local ids, tokens = {}, {}
local listed = {}
for j = 6, #ARGV, 2 do
  ids[#ids + 1] = ARGV[j]
  tokens[#tokens + 1] = tonumber(ARGV[j + 1])
  listed[ARGV[j]] = true
end
local out = {}

local orphans = {}
for _, id in ipairs(redis.call('SMEMBERS', k_held(worker))) do
  if not listed[id] then orphans[#orphans + 1] = id end
end
if #orphans > 0 then
  local recs = hmget(K_JOBS, orphans)
  local orphan_cancels = cancel_reasons(orphans)
  local gone = {}
  for n, id in ipairs(orphans) do
    local rec = recs[n]
    local h, _, started = nil, nil, nil
    if rec then h, _, started = split(rec) end
    if not h or h[2] ~= RUNNING then
      gone[#gone + 1] = id
    elseif started and started <= known_until then
      gone[#gone + 1] = id
      bump('released')
      -- A cancel asked for meanwhile ends it CANCELLED, as the reaper would.
      lose_attempt(id, rec, orphan_cancels[n] or nil, 'the claim reply was lost; handed back')
    end
  end
  each_chunk('SREM', k_held(worker), gone, 1)
  flush()
end
-- An idle worker still heartbeats (with no jobs) so that its orphans are handed back.
if #ids == 0 then return out end
local member = per_item('SMISMEMBER', k_held(worker), ids)
local recs = hmget(K_JOBS, ids)
local cancels = cancel_reasons(ids)
local any = false
for j, id in ipairs(ids) do
  local rec = recs[j]
  local st, att = state_of(rec)
  if member[j] ~= 1 or st ~= RUNNING or att ~= tokens[j] then
    out[j] = 0
  else
    any = true
    if cancels[j] then out[j] = 2 else out[j] = 1 end
  end
end
if any then
  redis.call('ZADD', K_LEASES, now + tonumber(ARGV[2]), worker)
end
return out
