-- The first source of the workq function library: the key names of the queue a call is
-- about, the per-call context, and Redis' clock. Rust prepends constants (DEFAULT_*,
-- EVENTS_MAXLEN, MAX_*, the state codes ENQUEUED = 0 .. BLOCKED = 5, FORMAT_VERSION and
-- the key names KEY) and writes the record's header markers (HEADER_BARE, HEADER_EXT,
-- HEADER_STAMP) into the sources as numbers; then come record.lua, writes.lua,
-- lifecycle.lua, pruning.lua, reaper.lua, validate.lua, kinds.lua and call.lua, in that
-- order (SHARED in scripts/mod.rs), then each script as one function: values live in one
-- place and the helpers are built once per load, not once per call.
--
-- The keys of a queue (all share the {queue} hash tag) and the record's layout are
-- specified in docs/wire-format.md ("Keys", "Record"); their names and the record's
-- header markers come from Rust (keys.rs and record.rs), and scripts/schema_tests.rs
-- checks that every key and ext field the Lua uses is in those tables. Scripts never re-encode input or output, and the hot paths (claim, ack of a
-- success) do not decode the header: state and attempts are single bytes at fixed
-- offsets whenever attempts < 127, and are spliced in place.

-- The per-call context, set by begin() (call.lua): the key names of the queue a call is
-- about, and, for the lifecycle helpers, Redis' time of the call (now) and how long the
-- jobs it finishes stay queryable (keep_ok for SUCCEEDED, keep_failed for FAILED and
-- CANCELLED; 0 deletes them as they finish), which a script that finishes jobs sets
-- from its ARGV right after begin().
local prefix
local K_JOBS, K_DUE, K_LANES, K_BLOCKED, K_LEASES, K_WORKERS, K_CANCEL, K_PROGRESS
local K_UNIQUE, K_DONE, K_STATS, K_EVENTS, K_WATCH, CH_WAKE
local now, keep_ok, keep_failed
local function k_held(worker) return prefix .. KEY.held .. worker end
local function k_tag(tag) return prefix .. KEY.tag .. tag end
local function k_due(lane)
  if lane == '' then return K_DUE end
  return K_DUE .. ':' .. lane
end

-- Redis is the one clock: due times and leases never come from a client.
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
