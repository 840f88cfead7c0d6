-- Hand running jobs back at once (graceful shutdown). KEYS, ARGV and the reply:
-- common/src/scripts/release.rs (the one statement of this script's contract).
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
