-- Hand running jobs back at once (graceful shutdown), instead of waiting for the lease to
-- run out. The attempt already counted stays counted, so the fencing token keeps
-- increasing, but a handed-back job is never failed for running out of attempts.
-- KEYS[1] queue prefix
-- ARGV: worker, keep_failed_ms, reason; then per job: id, token
-- Returns per job: 1 handed back (or cancelled, if that was requested), 0 not held.
local now = now_ms()
local worker, keep_failed, reason = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local ids, tokens = {}, {}
for j = 4, #ARGV, 2 do
  ids[#ids + 1] = ARGV[j]
  tokens[#tokens + 1] = tonumber(ARGV[j + 1])
end
local out = {}
if #ids == 0 then return out end
local recs = hmget(K_JOBS, ids)
local cancels = cancel_reasons(ids)
local released = {}
for j, id in ipairs(ids) do
  local h, rest, started, by
  if recs[j] then h, rest, started, by = split(recs[j]) end
  if h == nil or h[2] ~= RUNNING or h[3] ~= tokens[j] then
    out[j] = 0
  else
    out[j] = 1
    released[#released + 1] = id
    if cancels[j] then
      end_attempt(id, recs[j], cancels[j], 'R', '', '', now, 0, keep_failed, true)
    else
      local x = ext(h)
      x.s = started
      x.w = by
      x.e = reason
      if x.G then -- the attempt's progress goes with it
        w_unprogress[#w_unprogress + 1] = id
        x.G = nil
      end
      h[2] = ENQUEUED
      put_job(id, cmsgpack.pack(h) .. rest)
      schedule(id, now, lane_of(h))
      bump('released')
      note(id, ENQUEUED, h[3])
    end
  end
end
each_chunk('SREM', k_held(worker), released, 1)
flush()
return out
