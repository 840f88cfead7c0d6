-- The reaper: workers whose lease ran out are gone or stalled, and their jobs lose the
-- attempt (lose_attempt, lifecycle.lua). Any worker reaps others on its claims
-- (claim.lua), never itself: it is alive, since it is claiming.

-- Looks at the lowest entries of `leases`; for each other worker whose lease has ended,
-- pops up to `budget` (shared by all of them) of the jobs it holds and ends each attempt
-- still RUNNING (or whose record cannot be read: end_attempt then fails it, naming the
-- header). Returns the earliest time worth waking for: the next lease to run out, or now
-- when a reaped worker still holds jobs (nil for neither).
local function reap(self, budget)
  local wake = nil
  local ls = redis.call('ZRANGE', K_LEASES, 0, 3, 'WITHSCORES')
  for k = 1, #ls, 2 do
    local w, lease_end = ls[k], tonumber(ls[k + 1])
    if w ~= self then
      local t = nil
      if lease_end > now or budget <= 0 then
        t = lease_end
      else
        local ids = redis.call('SPOP', k_held(w), budget)
        budget = budget - #ids
        if #ids > 0 then
          local recs = hmget(K_JOBS, ids)
          local cancels = cancel_reasons(ids)
          for n, id in ipairs(ids) do
            local rec = recs[n]
            local st, att = nil, '?'
            if rec then st, att = state_of(rec) end
            if rec and (st == RUNNING or st == nil) then
              bump('lease_expired')
              lose_attempt(id, rec, cancels[n] or nil,
                'lease expired: worker ' .. w .. ' lost during attempt ' .. (att or '?'))
            end
          end
        end
        if redis.call('SCARD', k_held(w)) == 0 then
          redis.call('ZREM', K_LEASES, w)
        else
          t = now -- more of its jobs to take over: come back at once
        end
      end
      if t and (wake == nil or t < wake) then wake = t end
    end
  end
  return wake
end
