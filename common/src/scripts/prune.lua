-- Prune finished jobs now, whatever their retention. KEYS, ARGV and the reply:
-- common/src/scripts/prune.rs (the one statement of this script's contract).
local old = redis.call('ZRANGE', K_DONE, 0, tonumber(ARGV[1]) - 1)
if #old == 0 then return 0 end
prune_jobs(old)
flush()
return #old
