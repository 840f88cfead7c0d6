-- Prune finished jobs now, whatever their retention. KEYS, ARGV and the reply:
-- common/src/scripts/prune.rs (the one statement of this script's contract).
local old = redis.call('ZRANGE', K_DONE, 0, tonumber(ARGV[1]) - 1)
if #old == 0 then return 0 end
local recs = hmget(K_JOBS, old)
for n, id in ipairs(old) do
  local rec = recs[n]
  if rec and string.byte(rec, 1) ~= 0x95 then delete_job(id, split(rec)) else delete_job(id, nil) end
end
each_chunk('ZREM', K_DONE, old, 1)
bump('pruned', #old)
flush()
return #old
