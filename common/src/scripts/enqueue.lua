-- Enqueue a batch. Idempotent by id: an id that exists is left alone and reported.
-- KEYS[1] queue prefix
-- ARGV[1] number of jobs; then per job: id, delay_ms, at_ms (0 = use delay), record,
--         ntags, tag...
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

local out = { now }
local pairs_ = {}
local created = {}
local i = 2
for j = 1, tonumber(ARGV[1]) do
  local id, delay, at, rec, ntags = ARGV[i], tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2]), ARGV[i + 3], tonumber(ARGV[i + 4])
  local first_tag = i + 5
  i = first_tag + ntags
  local b1, b2, b3, b4, b5 = string.byte(rec, 1, 5)
  if (b1 ~= 0x95 and b1 ~= 0x96) or b2 ~= FORMAT_VERSION or b4 ~= 0 or b5 ~= 0xcf
      or (b3 ~= ENQUEUED and b3 ~= BLOCKED) then
    out[j + 1] = -1
  elseif redis.call('HSETNX', K_JOBS, id, string.sub(rec, 1, 5) .. stamp .. string.sub(rec, 14)) == 1 then
    if b3 == ENQUEUED then
      local due = now + delay
      if at > 0 then due = at end
      schedule(id, due, pairs_)
    end
    for t = first_tag, first_tag + ntags - 1 do
      redis.call('SADD', prefix .. 'tag:' .. ARGV[t], id)
    end
    note(id, b3, 0)
    created[#created + 1] = id
    out[j + 1] = 1
  else
    out[j + 1] = 0
  end
end
zadd_pairs(K_SCHED, pairs_)
if #created > 0 then bump('enqueued', #created) end
flush()
return out
