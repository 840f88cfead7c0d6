-- Pruning: finished jobs leave `jobs` and `done`, with their tags and unique entries, once
-- their retention has ended. claim.lua prunes automatically (auto_prune, on a budget);
-- prune.lua prunes now, whatever the retention (prune_jobs).

-- Deletes the finished jobs `old` (ids read from `done`), counting them out of the
-- retained counts by state. Records without ext (first byte HEADER_BARE) carry no tags or
-- unique name, and are not decoded.
local function prune_jobs(old)
  local recs = hmget(K_JOBS, old)
  for n, id in ipairs(old) do
    local rec = recs[n]
    if rec then
      local field = RETAINED[state_of(rec)]
      if field then bump(field, -1) end
    end
    if rec and string.byte(rec, 1) ~= HEADER_BARE then
      delete_job(id, split(rec))
    else
      delete_job(id, nil)
    end
  end
  each_chunk('ZREM', K_DONE, old, 1)
  bump('pruned', #old)
end

-- Automatic pruning, by a claim: when the head of `done` is past its retention, up to
-- ten times `budget` finished jobs whose retention ended (pruning is cheap per job); when
-- Redis is near its memory limit (`pressure`), the oldest finished jobs, retained or
-- not. While at it, the `workers` entries not seen for an hour go. A budget of 0 leaves
-- pruning, and waking up for it, to others. Returns when the next finished job may be
-- pruned (nil for none), to wake up then.
local function auto_prune(budget, pressure)
  local np = {}
  if budget > 0 then np = redis.call('ZRANGE', K_DONE, 0, 0, 'WITHSCORES') end
  if np[2] and (pressure or tonumber(np[2]) <= now) then
    local old
    if pressure then
      old = redis.call('ZRANGE', K_DONE, 0, budget * 10 - 1)
      bump('pruned_early', #old)
    else
      old = redis.call('ZRANGEBYSCORE', K_DONE, '-inf', now, 'LIMIT', 0, budget * 10)
    end
    if #old > 0 then prune_jobs(old) end
    -- Presence is `<last seen ms>|<labels>|<kinds>|<host>|<slots>` (docs/wire-format.md, "Keys").
    local seen = redis.call('HGETALL', K_WORKERS)
    for k = 1, #seen, 2 do
      local t = tonumber(string.match(seen[k + 1], '^(%d+)'))
      if t and t < now - 3600000 then redis.call('HDEL', K_WORKERS, seen[k]) end
    end
    np = redis.call('ZRANGE', K_DONE, 0, 0, 'WITHSCORES')
  end
  return tonumber(np[2])
end
