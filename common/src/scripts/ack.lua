-- Record the outcome of finished attempts, fenced by the claim token. KEYS, ARGV and the
-- reply: common/src/scripts/ack.rs (the one statement of this script's contract).
local worker = ARGV[1]
keep_ok, keep_failed = tonumber(ARGV[2]), tonumber(ARGV[3])
local n = tonumber(ARGV[4])
local ids = {}
for j = 1, n do ids[j] = ARGV[2 + 3 * j] end
local recs = {}
if n > 0 then recs = hmget(K_JOBS, ids) end
local cancels = cancel_reasons(ids)

local released = {}
local out = {}
local plain = 0 -- fast-path successes, counted once below
local gone_at_once = keep_ok <= 0 -- a success kept for no time is deleted as it ends
for j = 1, n do
  local a = 2 + 3 * j
  local id, token, result = ids[j], tonumber(ARGV[a + 1]), ARGV[a + 2]
  local code, msg, output, next_due, following = 'S', '', '', 0, 0
  if result ~= '' then
    local ok, r = pcall(cmsgpack.unpack, result)
    if ok and type(r) == 'table' and type(r[1]) == 'string' and type(r[2]) == 'string'
        and type(r[3]) == 'string' then
      code, msg, output = r[1], r[2], r[3]
      next_due, following = tonumber(r[4]) or 0, tonumber(r[5]) or 0
    else
      code, msg = 'F', 'the worker sent an outcome this version cannot read'
    end
  end
  local rec = recs[j]
  -- The hot path: peek directly (state_of is one call more per job).
  local st, att
  if rec then st, att = peek(rec) end
  if st == nil then st, att = state_of(rec) end
  if st ~= RUNNING or att ~= token then
    out[j] = 0
  else
    out[j] = 1
    released[#released + 1] = id
    local cancel = cancels[j] or nil
    if code == 'S' and not cancel and gone_at_once and #output == 0 and string.byte(rec, 1) == HEADER_BARE then
      -- Fast path (no retention, no output, no options): the job is simply gone.
      w_del[#w_del + 1] = id
      plain = plain + 1
      if watched ~= false then note(id, SUCCEEDED, att) end
    else
      end_attempt(id, rec, cancel, code, msg, output, false, next_due, following)
    end
  end
end
each_chunk('SREM', k_held(worker), released, 1)
if plain > 0 then bump('succeeded', plain) end
flush()
return out
