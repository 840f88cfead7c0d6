-- Extend the lease of one worker, which covers every job it holds, and report on those
-- jobs.
-- KEYS[1] queue prefix
-- ARGV: worker, lease_ms; then per job: id, token
-- Returns per job: 1 held, 2 held and cancellation requested, 0 lost (taken over after the
-- lease ran out, or gone).
local now = now_ms()
local worker = ARGV[1]
local ids, tokens = {}, {}
for j = 3, #ARGV, 2 do
  ids[#ids + 1] = ARGV[j]
  tokens[#tokens + 1] = tonumber(ARGV[j + 1])
end
local out = {}
if #ids == 0 then return out end
local member = redis.call('SMISMEMBER', k_held(worker), unpack(ids))
local recs = hmget(K_JOBS, ids)
local cancels = cancel_reasons(ids)
local any = false
for j, id in ipairs(ids) do
  local rec = recs[j]
  local st, att
  if rec then
    st, att = peek(rec)
    if st == nil then
      local h = split(rec)
      if h then st, att = h[2], h[3] end
    end
  end
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
