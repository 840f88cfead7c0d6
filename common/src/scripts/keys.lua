-- The first source of the workq function library: the key names of the queue a call is
-- about, and Redis' clock. Rust prepends constants (DEFAULT_*, EVENTS_MAXLEN, MAX_*, the
-- state codes ENQUEUED = 0 .. BLOCKED = 5 and FORMAT_VERSION), then come record.lua,
-- writes.lua, lifecycle.lua, validate.lua, kinds.lua and call.lua, in that order, then
-- each script as one function (see scripts/mod.rs): values live in one place and the
-- helpers are built once per load, not once per call.
--
-- Layout of a queue (all keys share the {queue} hash tag):
--   jobs         hash   id -> record
--   due          zset   ENQUEUED ids by due time (ms), plain lane
--   due:<lane>   zset   the same for lane x (expedited), @labels, x@labels
--   lanes        set    lanes other than the plain one that ever held work
--   blocked      set    BLOCKED ids (waiting for parents in a chain)
--   leases       zset   worker id -> lease end (ms); one lease covers all a worker holds
--   workers      hash   worker id -> its labels (comma-separated)
--   held:<w>     set    ids of the RUNNING jobs worker <w> holds
--   cancel       hash   id -> stop reason, for RUNNING jobs asked to stop
--   progress     hash   id -> progress data of a RUNNING job
--   unique       hash   unique name -> MessagePack {ids = [...], leaves = [...]}
--   done         zset   finished ids by the time they may be pruned
--   tag:<t>      set    ids with tag <t>
--   stats        hash   counters
--   events       stream state changes, written only while `watch` exists
--
-- A record is a MessagePack header array followed by the input bytes and, once finished
-- with output, the output bytes:
--   [version, state, attempts, enqueued_ms, kind, ext?] .. input .. output
-- While RUNNING it also ends with a trailer: MessagePack [started_ms, worker] and one
-- byte giving that trailer's length. Scripts never re-encode input or output, and the
-- hot paths (claim, ack of a success) do not decode the header: state and attempts are
-- single bytes at fixed offsets whenever attempts < 127, and are spliced in place.

-- Key names of the queue a call is about, set by begin() (call.lua).
local prefix
local K_JOBS, K_DUE, K_LANES, K_BLOCKED, K_LEASES, K_WORKERS, K_CANCEL, K_PROGRESS
local K_UNIQUE, K_DONE, K_STATS, K_EVENTS, K_WATCH, CH_WAKE
local function k_held(worker) return prefix .. 'held:' .. worker end
local function k_due(lane)
  if lane == '' then return K_DUE end
  return K_DUE .. ':' .. lane
end

-- Redis is the one clock: due times and leases never come from a client.
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
