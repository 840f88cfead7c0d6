-- The per-call context: every function of the library starts with begin(KEYS, clock).

-- Every function of the library starts here. The library is loaded once, so the helpers
-- above are made once; what a call collects (writes, counters, events, the wake time)
-- starts empty on each call, and the key names are those of the call's queue (kept per
-- queue, so that a call does not build fourteen strings). `clock` (from the script's
-- entry in scripts/mod.rs) reads Redis' time into `now`, for the scripts that use it;
-- the retentions start at 0 until the script sets them from its ARGV.
local key_sets, key_set_count = {}, 0
local function begin(keys, clock)
  prefix = keys[1]
  local k = key_sets[prefix]
  if k == nil then
    if key_set_count >= 10000 then key_sets, key_set_count = {}, 0 end
    k = {}
    for _, name in ipairs({ KEY.jobs, KEY.due, KEY.lanes, KEY.blocked, KEY.leases, KEY.workers,
        KEY.cancel, KEY.progress, KEY.unique, KEY.done, KEY.stats, KEY.events, KEY.watch, KEY.wake }) do
      k[#k + 1] = prefix .. name
    end
    key_sets[prefix] = k
    key_set_count = key_set_count + 1
  end
  K_JOBS, K_DUE, K_LANES, K_BLOCKED, K_LEASES, K_WORKERS, K_CANCEL = k[1], k[2], k[3], k[4], k[5], k[6], k[7]
  K_PROGRESS, K_UNIQUE, K_DONE, K_STATS, K_EVENTS, K_WATCH, CH_WAKE = k[8], k[9], k[10], k[11], k[12], k[13], k[14]
  if clock then now = now_ms() else now = nil end
  keep_ok, keep_failed = 0, 0
  w_jobs, w_del, w_done, w_due, w_uncancel, w_unprogress = {}, {}, {}, {}, {}, {}
  w_blocked_add, w_blocked_rem = {}, {}
  stats = {}
  watched = nil
  ev_ids, ev_states, ev_attempts = {}, {}, {}
  wake_at = nil
end
