-- Record the outcome of finished attempts, fenced by the claim token (attempt number).
-- KEYS[1] queue prefix
-- ARGV: keep_succeeded_ms, keep_failed_ms, n; then per job: id, token, code, message, output
--   code: S succeeded, F failed (terminal), R retry with backoff (Err, panic, timeout, retry)
-- A job whose cancellation was requested ends CANCELLED whatever the code.
-- Returns per job: 1 applied, 0 refused (stale token: the job was re-claimed or is gone).
local now = now_ms()
local keep_ok, keep_failed = tonumber(ARGV[1]), tonumber(ARGV[2])
local sched_pairs = {}
local out = {}
local i = 4
for j = 1, tonumber(ARGV[3]) do
  local id, token, code, msg, output = ARGV[i], tonumber(ARGV[i + 1]), ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
  i = i + 5
  local rec = redis.call('HGET', K_JOBS, id)
  local h, rest
  if rec then h, rest = split(rec) end
  if h == nil or h[2] ~= RUNNING or h[3] ~= token then
    out[j] = 0
  else
    out[j] = 1
    redis.call('ZREM', K_RUN, id)
    local x = ext(h)
    if x.c then
      -- cancel.lua left the stop reason in x.e
      finish(id, h, rest, CANCELLED, now, keep_failed)
    else
      if msg ~= '' then x.e = msg end
      if code == 'R' then
        retry_or_fail(id, h, rest, now, keep_failed, sched_pairs, false)
      else
        if #output > 0 then
          x.o = #output
          rest = rest .. output
        end
        if code == 'S' then
          finish(id, h, rest, SUCCEEDED, now, keep_ok)
        else
          finish(id, h, rest, FAILED, now, keep_failed)
        end
      end
    end
  end
end
zadd_pairs(K_SCHED, sched_pairs)
flush()
return out
