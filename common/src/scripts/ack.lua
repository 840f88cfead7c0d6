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
local kept = 0 -- successes kept by the spliced path, counted once below
local gone_at_once = keep_ok <= 0 -- a success kept for no time is deleted as it ends

-- The record of a success to keep (retention above 0) of a job whose header is bare (no
-- options, so no chain, unique name, tags or progress), spliced from its bytes instead of
-- decoding and re-encoding the header: the header becomes an array of 6 whose ext is
-- {s = started, w = worker, f = now} (the trailer's two values copied as they are) and
-- the state SUCCEEDED; the trailer goes. nil when the bytes are not in the compact form
-- expected (attempts < 127, the stamp, a kind of at most 255 bytes, the trailer's stamp):
-- the general path then decodes.
local f_stamp
local function kept_record(rec)
  local len = #rec
  local att_b, stamp_b = string.byte(rec, 4, 5)
  local kind_b = string.byte(rec, 14)
  if not att_b or att_b >= 127 or stamp_b ~= HEADER_STAMP or not kind_b then return nil end
  local hlen
  if kind_b >= 0xa0 and kind_b <= 0xbf then
    hlen = 14 + (kind_b - 0xa0)
  elseif kind_b == 0xd9 then
    hlen = 15 + (string.byte(rec, 15) or len)
  else
    return nil
  end
  local t0 = len - string.byte(rec, len) -- the trailer's first byte
  if t0 <= hlen then return nil end
  local a, st = string.byte(rec, t0, t0 + 1)
  if a ~= 0x92 or st ~= HEADER_STAMP or t0 + 10 > len - 1 then return nil end
  if not f_stamp then f_stamp = '\161f' .. string.char(HEADER_STAMP) .. u64be(now) end
  return string.char(HEADER_EXT, FORMAT_VERSION, SUCCEEDED) .. string.sub(rec, 4, hlen)
    .. '\131\161s' .. string.sub(rec, t0 + 1, t0 + 9) .. '\161w' .. string.sub(rec, t0 + 10, len - 1)
    .. f_stamp .. string.sub(rec, hlen + 1, t0 - 1)
end
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
      local spliced = code == 'S' and not cancel and not gone_at_once and #output == 0
        and msg == '' and string.byte(rec, 1) == HEADER_BARE and kept_record(rec)
      if spliced then
        -- finish()'s writes for a job with nothing else to settle.
        put_job(id, spliced)
        w_done[#w_done + 1] = now + keep_ok
        w_done[#w_done + 1] = id
        kept = kept + 1
        if watched ~= false then note(id, SUCCEEDED, att) end
      else
        end_attempt(id, rec, cancel, code, msg, output, false, next_due, following)
      end
    end
  end
end
each_chunk('SREM', k_held(worker), released, 1)
if plain + kept > 0 then bump('succeeded', plain + kept) end
if kept > 0 then bump(RETAINED[SUCCEEDED], kept) end
flush()
return out
