-- Enqueue a batch of independent jobs that wait in one lane. KEYS, ARGV and the reply:
-- common/src/scripts/enqueue.rs (the one statement of this script's contract).
-- Every argument is checked (validate.lua) before the first write; the common case (a
-- record without ext, due now, plain lane) is checked inline. The record's enqueued_ms
-- placeholder (bytes 5..13) is stamped here with Redis time.
if not string.find(prefix, '^workq:{[^{},%s]+}:$') or #prefix > 73 then
  return redis.error_reply("ERR workq: refused: KEYS[1] must be 'workq:{<queue>}:' (a queue name of 1 to 64 bytes without braces, commas or spaces)")
end
local n = tonumber(ARGV[1])
if not is_int(n, 0, MAX_BATCH) or #ARGV < 2 + 3 * n or (#ARGV - 2 - 3 * n) % 2 ~= 0 then
  return redis.error_reply('ERR workq: refused: ARGV must be n (0 to ' .. MAX_BATCH
    .. '), lane, then n times (id, due, record), then (job index, tag) pairs')
end
local lane = ARGV[2]
local ids = {}
for j = 1, n do ids[j] = ARGV[3 * j] end
local existing = {}
if n > 0 then existing = hmget(K_JOBS, ids) end
-- One pass checks each job and collects its writes; a refusal returns before flush(), so
-- nothing of the call is written. The hot loop writes the collected writes (see writes.lua)
-- directly rather than through put_job/schedule: at ~200,000 jobs/s the calls show.
local sub, byte, find = string.sub, string.byte, string.find
local headers = {}
local out = { now }
local created = 0
local nj = #w_jobs
local due_pairs = {}
local nd = 0
local now_s = nil
local tagged = {}
local stamp = u64be(now)
-- A checked record starts with HEADER_BARE or HEADER_EXT, then FORMAT_VERSION, ENQUEUED, 0
-- and HEADER_STAMP: its first 13 bytes once stamped are one of two strings, made once
-- per call.
local stamped = { [HEADER_BARE] = string.char(HEADER_BARE, FORMAT_VERSION, ENQUEUED, 0, HEADER_STAMP) .. stamp,
  [HEADER_EXT] = string.char(HEADER_EXT, FORMAT_VERSION, ENQUEUED, 0, HEADER_STAMP) .. stamp }
local checked_head = nil -- the first 24 characters of the last id checked in full
local last_kind = nil -- the kind (its str header and bytes) of the last record taken fast
for j = 1, n do
  local id, ds, rec = ids[j], ARGV[3 * j + 1], ARGV[3 * j + 2]
  -- valid_id, inlined; for an id that shares its first 24 characters with the last one
  -- checked in full, only the last two need looking at.
  -- (A plain find of the head at 1 compares bytes without making a substring.)
  if not (#id == 26 and checked_head and find(id, checked_head, 1, true) == 1
      and ID_CHAR[byte(id, 25)] and ID_CHAR[byte(id, 26)]) then
    if not (#id == 26 and find(id, ID_PATTERN)) then
      return refusal(j, id, 'id', 'must be a ULID: 26 characters of Crockford base32, upper case, the first 0 to 7')
    end
    checked_head = sub(id, 1, 24)
  end
  -- The common case, checked here without function calls: a record without ext, in the
  -- plain lane, due now, of a kind already seen good. Anything else goes through
  -- check_new, which applies every rule.
  local b1, b2, b3, b4, b5 = byte(rec, 1, 5)
  local k = byte(rec, 14)
  local due, h = now, nil
  local fast = b1 == HEADER_BARE and ds == '0' and lane == '' and b2 == FORMAT_VERSION and b3 == ENQUEUED
    and b4 == 0 and b5 == HEADER_STAMP and k and k >= 0xa1 and k <= 0xbf and #rec <= MAX_RECORD_BYTES
  -- (A plain find from byte 14 compares without a substring; past a mismatch it would
  -- search the rest of the record, so only small records go that way.)
  if fast and not (last_kind and #rec <= 1024 and find(rec, last_kind, 14, true) == 14) then
    -- Not the kind of the last record taken this way (its str header and bytes): look
    -- it up, and remember it.
    fast = good_kinds[sub(rec, 15, 14 + k - 0xa0)]
    if fast then last_kind = sub(rec, 14, 14 + k - 0xa0) end
  end
  if not fast then
    local field, what
    h, due, field, what = check_new(rec, ds, lane, false)
    if due == nil then return refusal(j, id, field, what) end
    if h then headers[j] = h end
  end
  if existing[j] then
    out[j + 1] = 0
  else
    w_jobs[nj + 1] = id
    w_jobs[nj + 2] = stamped[b1] .. sub(rec, 14)
    nj = nj + 2
    -- ZADD takes its scores as strings: a Lua number would be formatted with printf's
    -- %.17g per job. "Due now", the common case, reuses one string made per call, and
    -- an absolute time in plain digits is passed on as it came (anything else goes as the
    -- number read_due checked).
    local score
    if ds == '0' then
      if now_s == nil then now_s = string.format('%d', now) end
      score = now_s
    elseif find(ds, '^%d+$') and due == tonumber(ds) then
      score = ds
    else
      score = due
    end
    due_pairs[nd + 1] = score
    due_pairs[nd + 2] = id
    nd = nd + 2
    if wake_at == nil or due < wake_at then wake_at = due end
    if watched ~= false then note(id, ENQUEUED, 0) end
    created = created + 1
    out[j + 1] = 1
    -- Tags of the jobs just created, grouped so that each tag costs one SADD.
    if h and h[6].t then
      for _, tag in ipairs(h[6].t) do
        local members = tagged[tag]
        if members == nil then
          members = {}
          tagged[tag] = members
        end
        members[#members + 1] = id
      end
    end
  end
end
-- Tag pairs: in range, and naming a tag the job's record carries.
for a = 3 * n + 3, #ARGV, 2 do
  local j = tonumber(ARGV[a])
  if not is_int(j, 1, n) then
    return redis.error_reply('ERR workq: refused: tag pair at ARGV[' .. a .. ']: job index ' .. printable(ARGV[a]) .. ' is not 1 to ' .. n)
  end
  local found = false
  local h = headers[j]
  for _, t in ipairs((h and h[6].t) or {}) do
    if t == ARGV[a + 1] then found = true end
  end
  if not found then
    return refusal(j, ids[j], 'tags', "'" .. printable(ARGV[a + 1]) .. "' is given as a pair but is not in the record's ext.t (tags are indexed from the record)")
  end
end
if nd > 0 then w_due[lane] = due_pairs end
for tag, members in pairs(tagged) do
  each_chunk('SADD', k_tag(tag), members, 1)
end
if created > 0 then bump('enqueued', created) end
flush()
return out
