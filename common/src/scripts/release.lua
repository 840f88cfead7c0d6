-- Hand running jobs back at once (graceful shutdown). KEYS, ARGV and the reply:
-- common/src/scripts/release.rs (the one statement of this script's contract).
local worker, reason = ARGV[1], ARGV[3]
keep_failed = tonumber(ARGV[2])
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
      lose_attempt(id, recs[j], cancels[j], '')
    else
      -- Due now, its attempt kept (the token still grows at the next claim).
      local x = ext(h)
      close_attempt(id, x, started, by)
      x.e = reason
      requeue(id, h, rest, now, 'released')
    end
  end
end
each_chunk('SREM', k_held(worker), released, 1)
flush()
return out
