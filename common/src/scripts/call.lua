-- The per-call context: every function of the library starts with begin(KEYS).

-- Every function of the library starts here. The library is loaded once, so the helpers
-- above are made once; what a call collects (writes, counters, events, the wake time)
-- starts empty on each call, and the key names are those of the call's queue (kept per
-- queue, so that a call does not build fourteen strings).
local key_sets, key_set_count = {}, 0
local function begin(keys)
  prefix = keys[1]
  local k = key_sets[prefix]
  if k == nil then
    if key_set_count >= 10000 then key_sets, key_set_count = {}, 0 end
    k = {}
    for _, name in ipairs({ 'jobs', 'due', 'lanes', 'blocked', 'leases', 'workers', 'cancel',
        'progress', 'unique', 'done', 'stats', 'events', 'watch', 'wake' }) do
      k[#k + 1] = prefix .. name
    end
    key_sets[prefix] = k
    key_set_count = key_set_count + 1
  end
  K_JOBS, K_DUE, K_LANES, K_BLOCKED, K_LEASES, K_WORKERS, K_CANCEL = k[1], k[2], k[3], k[4], k[5], k[6], k[7]
  K_PROGRESS, K_UNIQUE, K_DONE, K_STATS, K_EVENTS, K_WATCH, CH_WAKE = k[8], k[9], k[10], k[11], k[12], k[13], k[14]
  w_jobs, w_del, w_done, w_due, w_uncancel, w_unprogress = {}, {}, {}, {}, {}, {}
  w_blocked_add, w_blocked_rem = {}, {}
  stats = {}
  watched = nil
  ev_ids, ev_states, ev_attempts = {}, {}, {}
  wake_at = nil
end
