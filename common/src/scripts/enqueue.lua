-- Enqueue a batch. Idempotent by id: an id that exists is left alone and reported. The
-- caller sends each id at most once per batch.
-- KEYS[1] queue prefix
-- ARGV[1] number of jobs n; then per job: id, due, record; then (job index, tag) pairs.
--         due > 0 is an absolute time in ms; due <= 0 means -due ms after Redis' now.
-- The record's enqueued_ms is a uint64 placeholder at bytes 5..13, stamped here with
-- Redis time. Returns {now_ms, r1, r2, ...}: 1 created, 0 existed, -1 malformed record.
local now = now_ms()
local stamp = {}
do
  local n = now
  for i = 8, 1, -1 do
    stamp[i] = n % 256
    n = math.floor(n / 256)
  end
  stamp = string.char(unpack(stamp))
end

local n = tonumber(ARGV[1])
local ids = {}
for j = 1, n do ids[j] = ARGV[3 * j - 1] end
local existing = {}
if n > 0 then existing = hmget(K_JOBS, ids) end

local out = { now }
local created = 0
-- The hot loop writes the collected writes (see prelude) directly rather than through
-- put_job/schedule: at ~200,000 jobs/s the function calls show.
local sub, byte = string.sub, string.byte
local nj, nd = #w_jobs, #w_due
for j = 1, n do
  local id, rec = ids[j], ARGV[3 * j + 1]
  local b1, b2, b3, b4, b5 = byte(rec, 1, 5)
  if (b1 ~= 0x95 and b1 ~= 0x96) or b2 ~= FORMAT_VERSION or b4 ~= 0 or b5 ~= 0xcf
      or (b3 ~= ENQUEUED and b3 ~= BLOCKED) then
    out[j + 1] = -1
  elseif existing[j] then
    out[j + 1] = 0
  else
    w_jobs[nj + 1] = id
    w_jobs[nj + 2] = sub(rec, 1, 5) .. stamp .. sub(rec, 14)
    nj = nj + 2
    if b3 == ENQUEUED then
      local due = tonumber(ARGV[3 * j])
      if due <= 0 then due = now - due end
      w_due[nd + 1] = due
      w_due[nd + 2] = id
      nd = nd + 2
      if wake_at == nil or due < wake_at then wake_at = due end
    end
    if watched ~= false then note(id, b3, 0) end
    created = created + 1
    out[j + 1] = 1
  end
end

-- Tags of the jobs just created, grouped so that each tag costs one SADD.
local tagged = {}
for a = 3 * n + 2, #ARGV, 2 do
  local j = tonumber(ARGV[a])
  if out[j + 1] == 1 then
    local members = tagged[ARGV[a + 1]]
    if members == nil then
      members = {}
      tagged[ARGV[a + 1]] = members
    end
    members[#members + 1] = ids[j]
  end
end
for tag, members in pairs(tagged) do
  each_chunk('SADD', prefix .. 'tag:' .. tag, members, 1)
end
if created > 0 then bump('enqueued', created) end
flush()
return out
