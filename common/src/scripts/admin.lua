-- Operator actions on one queue: retry, run now, delete, purge, pause, resume. KEYS, ARGV
-- and the reply: common/src/scripts/admin.rs (the one statement of this script's
-- contract). Each call is bounded by its ids (or its purge count).
local op = ARGV[1]
keep_failed = tonumber(ARGV[2])
local out = {}

-- The pause marker: a member of `lanes` no lane can be (lanes start with x, @ or #, or
-- are empty), so that the claim reads it with the lanes it reads anyway.
local PAUSED = '!' -- keys::PAUSE_MARKER

-- Takes a finished job out of `done` and its state's retained count.
local function undone(id, state)
  if redis.call('ZREM', K_DONE, id) == 1 then bump(RETAINED[state], -1) end
end

-- Brings a finished (FAILED or CANCELLED) job back: BLOCKED while a parent has not
-- succeeded, else ENQUEUED and due now; its attempts count from zero again for
-- max_attempts and backoff (ext.rb), while the attempt number, its fencing token, keeps
-- growing. Its descendants that ended because of it come back BLOCKED.
local function restore(id, h, rest, as_child)
  undone(id, h[2])
  local x = ext(h)
  x.f = nil
  x.rb = h[3]
  if x.o and x.o > 0 then
    rest = string.sub(rest, 1, #rest - x.o)
    x.o = nil
  end
  if as_child or (x.p and x.p > 0) then
    h[2] = BLOCKED
    w_blocked_add[#w_blocked_add + 1] = id
  else
    h[2] = ENQUEUED
    schedule(id, now, lane_of(h))
  end
  note(id, h[2], h[3])
  redis.call('HSET', K_JOBS, id, cmsgpack.pack(h) .. rest)
  if type(x.k) == 'table' then
    for _, cid in ipairs(x.k) do
      local rec = redis.call('HGET', K_JOBS, cid)
      local ch, crest
      if rec then ch, crest = split(rec) end
      if ch and (ch[2] == FAILED or ch[2] == CANCELLED) then
        local e = ext(ch).e
        if e == 'parent ' .. id .. ' failed' or e == 'parent ' .. id .. ' was cancelled' then
          ext(ch).e = nil
          restore(cid, ch, crest, true)
        end
      end
    end
  end
end

if op == 'pause' then
  out[1] = redis.call('SADD', K_LANES, PAUSED)
elseif op == 'resume' then
  out[1] = redis.call('SREM', K_LANES, PAUSED)
  -- Workers may be asleep until the next due time: wake them to claim now.
  if out[1] == 1 then wake_at = now end
elseif op == 'retry' then
  -- Per id: 0 unknown, 1 retried, 2 not FAILED or CANCELLED.
  for j = 3, #ARGV do
    local id = ARGV[j]
    local rec = redis.call('HGET', K_JOBS, id)
    local h, rest
    if rec then h, rest = split(rec) end
    if h == nil then
      out[#out + 1] = 0
    elseif h[2] ~= FAILED and h[2] ~= CANCELLED then
      out[#out + 1] = 2
    else
      restore(id, h, rest, false)
      bump('operator_retried')
      out[#out + 1] = 1
    end
  end
elseif op == 'run_now' then
  -- Per id: 0 unknown, 1 due now, 2 not ENQUEUED, 3 already due.
  for j = 3, #ARGV do
    local id = ARGV[j]
    local rec = redis.call('HGET', K_JOBS, id)
    local h
    if rec then h = split(rec) end
    if h == nil then
      out[#out + 1] = 0
    elseif h[2] ~= ENQUEUED then
      out[#out + 1] = 2
    else
      local key = k_due(lane_of(h))
      local due = tonumber(redis.call('ZSCORE', key, id))
      if due == nil then
        out[#out + 1] = 2
      elseif due <= now then
        out[#out + 1] = 3
      else
        redis.call('ZADD', key, 'XX', now, id)
        if wake_at == nil then wake_at = now end
        out[#out + 1] = 1
      end
    end
  end
elseif op == 'delete' then
  -- ARGV[3]: '1' to delete RUNNING jobs too. Per id: 0 unknown, 1 deleted, 2 running
  -- (left alone). A waiting job's descendants in a chain end CANCELLED ("parent <id> was
  -- cancelled"), as they would wait for it forever. A RUNNING job deleted loses its
  -- holder: the worker's next heartbeat finds the lease lost and its ack is refused.
  local force = ARGV[3] == '1'
  for j = 4, #ARGV do
    local id = ARGV[j]
    local rec = redis.call('HGET', K_JOBS, id)
    local h, rest, started, by
    if rec then h, rest, started, by = split(rec) end
    if not rec then
      out[#out + 1] = 0
    elseif h == nil then
      -- Undecodable: nothing to unlink but the record and its entries.
      redis.call('HDEL', K_JOBS, id)
      redis.call('ZREM', K_DONE, id)
      bump('deleted')
      out[#out + 1] = 1
    elseif h[2] == RUNNING and not force then
      out[#out + 1] = 2
    else
      if h[2] == RUNNING then
        if by then redis.call('SREM', k_held(by), id) end
        w_uncancel[#w_uncancel + 1] = id
        w_unprogress[#w_unprogress + 1] = id
      elseif h[2] == ENQUEUED or h[2] == BLOCKED then
        unwait(id, h)
      else
        undone(id, h[2])
      end
      if h[2] ~= SUCCEEDED and h[2] ~= FAILED and h[2] ~= CANCELLED then
        settle_children(id, h, rest, CANCELLED)
      end
      delete_job(id, h)
      bump('deleted')
      out[#out + 1] = 1
    end
  end
elseif op == 'purge' then
  -- ARGV[3]: the state to purge (SUCCEEDED, FAILED or CANCELLED), or -1 for every
  -- finished state; ARGV[4]: the rank in `done` to start from; ARGV[5]: how many entries
  -- of `done` to look at. Reply: {deleted, next rank, 1 if `done` goes on past them}.
  local want = tonumber(ARGV[3])
  local start = tonumber(ARGV[4])
  local count = tonumber(ARGV[5])
  local ids = redis.call('ZRANGE', K_DONE, start, start + count - 1)
  local kept, gone = 0, {}
  if #ids > 0 then
    local recs = hmget(K_JOBS, ids)
    for j, id in ipairs(ids) do
      local rec = recs[j]
      local h
      if rec then h = split(rec) end
      if not rec then
        gone[#gone + 1] = id -- a stale entry
      elseif h == nil or not RETAINED[h[2]] or (want >= 0 and h[2] ~= want) then
        kept = kept + 1
      else
        gone[#gone + 1] = id
        bump(RETAINED[h[2]], -1)
        delete_job(id, h)
        bump('purged')
      end
    end
    each_chunk('ZREM', K_DONE, gone, 1)
  end
  local more = 0
  if redis.call('ZCARD', K_DONE) > start + kept then more = 1 end
  out = { #gone, start + kept, more }
else
  return redis.error_reply('ERR unknown admin operation ' .. tostring(op))
end
flush()
return out
