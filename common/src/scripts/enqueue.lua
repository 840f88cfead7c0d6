-- Enqueue a batch of independent jobs that wait in one lane. Idempotent by id: an id that
-- exists is left alone and reported. The caller sends each id at most once per batch.
-- (Chains and unique work go through enqueue_graph.lua.)
-- KEYS[1] queue prefix
-- ARGV[1] number of jobs n; ARGV[2] lane ('' plain, 'x', '@labels', 'x@labels'); then
--         per job: id, due, record; then (job index, tag) pairs.
--         due > 0 is an absolute time in ms; due <= 0 means -due ms after Redis' now.
-- The record's enqueued_ms is a uint64 placeholder at bytes 5..13, stamped here with
-- Redis time. Returns {now_ms, r1, r2, ...}: 1 created, 0 existed, -1 malformed record.
local now = now_ms()
local stamp = u64be(now)
local n = tonumber(ARGV[1])
local lane = ARGV[2]
local ids = {}
for j = 1, n do ids[j] = ARGV[3 * j] end
local existing = {}
if n > 0 then existing = hmget(K_JOBS, ids) end

local out = { now }
local created = 0
-- The hot loop writes the collected writes (see prelude) directly rather than through
-- put_job/schedule: at ~200,000 jobs/s the function calls show.
local sub, byte = string.sub, string.byte
local nj = #w_jobs
local due_pairs = {}
local nd = 0
local now_s = nil
for j = 1, n do
  local id, rec = ids[j], ARGV[3 * j + 2]
  local b1, b2, b3, b4, b5 = byte(rec, 1, 5)
  if (b1 ~= 0x95 and b1 ~= 0x96) or b2 ~= FORMAT_VERSION or b3 ~= ENQUEUED or b4 ~= 0 or b5 ~= 0xcf then
    out[j + 1] = -1
  elseif existing[j] then
    out[j + 1] = 0
  else
    w_jobs[nj + 1] = id
    w_jobs[nj + 2] = sub(rec, 1, 5) .. stamp .. sub(rec, 14)
    nj = nj + 2
    -- ZADD takes its scores as strings: a Lua number would be formatted with printf's
    -- %.17g per job. "Due now", the common case, reuses one string made per call, and
    -- an absolute time in plain digits is passed on as it came (anything else that
    -- tonumber reads, such as ' 17e11', goes as the number, which ZADD always takes:
    -- a score ZADD refused would fail the call after HSET stored the records).
    local ds = ARGV[3 * j + 1]
    local due, score
    if ds == '0' then
      due = now
      if now_s == nil then now_s = string.format('%d', now) end
      score = now_s
    else
      due = tonumber(ds)
      if due <= 0 then
        due = now - due
        score = due
      elseif string.find(ds, '^%d+$') then
        score = ds
      else
        score = due
      end
    end
    due_pairs[nd + 1] = score
    due_pairs[nd + 2] = id
    nd = nd + 2
    if wake_at == nil or due < wake_at then wake_at = due end
    if watched ~= false then note(id, ENQUEUED, 0) end
    created = created + 1
    out[j + 1] = 1
  end
end
if nd > 0 then w_due[lane] = due_pairs end

-- Tags of the jobs just created, grouped so that each tag costs one SADD.
local tagged = {}
for a = 3 * n + 3, #ARGV, 2 do
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
