-- Cancel jobs by id. KEYS, ARGV and the reply: common/src/scripts/cancel.rs (the one
-- statement of this script's contract).
keep_failed = tonumber(ARGV[1])
local reason = ARGV[2]
local out = {}
-- States before this call: a job cancelled here with an ancestor listed before it counts
-- as cancelled, not as already finished.
local ids = {}
for j = 3, #ARGV do ids[#ids + 1] = ARGV[j] end
local before = {}
if #ids > 0 then
  for j, rec in ipairs(hmget(K_JOBS, ids)) do before[j] = state_of(rec) end
end
for j, id in ipairs(ids) do
  local rec = redis.call('HGET', K_JOBS, id)
  local h, rest
  if rec then h, rest = split(rec) end
  if h == nil then
    out[#out + 1] = 0
  elseif h[2] == CANCELLED and (before[j] == ENQUEUED or before[j] == BLOCKED) then
    out[#out + 1] = 1
  else
    out[#out + 1] = cancel_job(id, h, rest, reason)
  end
end
flush()
return out
