-- Store the progress of a running attempt, fenced by its token. KEYS, ARGV and the
-- reply: common/src/scripts/progress.rs (the one statement of this script's contract).
local id, token, data = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local rec = redis.call('HGET', K_JOBS, id)
if not rec then return 0 end
local h, rest, started, worker, trailer = split(rec)
if h == nil or h[2] ~= RUNNING or h[3] ~= token then return 0 end
redis.call('HSET', K_PROGRESS, id, data)
local x = ext(h)
if not x.G then
  -- Marks the record, so that finishing it also clears its progress.
  x.G = true
  redis.call('HSET', K_JOBS, id, cmsgpack.pack(h) .. rest .. (trailer or ''))
end
-- Watchers get the progress itself with the event (when small), so they never depend on
-- reading it later: the job may have finished, and its progress gone, by then.
if redis.call('EXISTS', K_WATCH) == 1 then
  local fields = { 'j', id, 's', 'P', 'a', h[3] }
  if #data <= 4096 then
    fields[7] = 'p'
    fields[8] = data
  end
  redis.call('XADD', K_EVENTS, 'MAXLEN', '~', EVENTS_MAXLEN, '*', unpack(fields))
end
return 1
