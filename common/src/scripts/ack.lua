-- Record the outcome of finished attempts, fenced by the claim token (attempt number).
-- KEYS[1] queue prefix
-- ARGV: worker, keep_succeeded_ms, keep_failed_ms, n; then per job: id, token, code,
--       message, output. code: S succeeded, F failed (terminal), R retry with backoff
--       (Err, panic, timeout, retry).
-- A job whose cancellation was requested ends CANCELLED whatever the code.
-- Returns per job: 1 applied, 0 refused (stale token: the job was taken over, or is gone).
local now = now_ms()
local worker = ARGV[1]
local keep_ok, keep_failed = tonumber(ARGV[2]), tonumber(ARGV[3])
local n = tonumber(ARGV[4])
local ids = {}
for j = 1, n do ids[j] = ARGV[5 + (j - 1) * 5] end
local recs = {}
if n > 0 then recs = hmget(K_JOBS, ids) end
local cancels = cancel_reasons(ids)

local released = {}
local out = {}
for j = 1, n do
  local a = 5 + (j - 1) * 5
  local id, token, code, output = ids[j], tonumber(ARGV[a + 1]), ARGV[a + 2], ARGV[a + 4]
  local rec = recs[j]
  local st, att
  if rec then
    st, att = peek(rec)
    if st == nil then
      local h = split(rec)
      if h then st, att = h[2], h[3] end
    end
  end
  if st ~= RUNNING or att ~= token then
    out[j] = 0
  else
    out[j] = 1
    released[#released + 1] = id
    local cancel = cancels[j] or nil
    if code == 'S' and not cancel and keep_ok <= 0 and #output == 0 and string.byte(rec, 1) == 0x95 then
      -- Fast path (no retention, no output, no tags): the job is simply gone.
      delete_job(id, nil)
      bump('succeeded')
      note(id, SUCCEEDED, att)
    else
      end_attempt(id, rec, cancel, code, ARGV[a + 3], output, now, keep_ok, keep_failed, false)
    end
  end
end
each_chunk('SREM', k_held(worker), released, 1)
flush()
return out
