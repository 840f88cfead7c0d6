-- Kind lanes. A worker claims only the kinds it runs (it sends them with each claim): a
-- due job of another kind is moved, still ENQUEUED and without spending an attempt, to
-- the lane '<its lane>#<kind>', marked ext.K so that it returns there after a retry. Only
-- workers that run the kind serve that lane, so a rolling deploy that adds a kind, or two
-- services sharing a queue, never fail each other's work; a kind no live worker runs
-- waits there, counted as unsatisfiable in the queue's stats.

-- The set of kinds in a claim's comma-separated list (nil for '', any kind), kept per
-- list so that a claim does not build it again.
local kind_sets, kind_set_count = {}, 0
local function kind_set(list)
  if list == '' then return nil end
  local set = kind_sets[list]
  if set == nil then
    if kind_set_count >= 1000 then kind_sets, kind_set_count = {}, 0 end
    set = {}
    for kind in string.gmatch(list, '[^,]+') do set[kind] = true end
    kind_sets[list] = set
    kind_set_count = kind_set_count + 1
  end
  return set
end

-- Moves a due job (already off its lane) to its kind lane, due now; a kind that no worker
-- can have (written by hand past enqueue's checks) fails the job instead.
local function park_for_kind(id, h, rest)
  local p = kind_problem(h[5])
  if p then
    ext(h).e = 'invalid kind (' .. printable(tostring(h[5])) .. '): ' .. p
    finish(id, h, rest, FAILED)
    return
  end
  ext(h).K = true
  put_job(id, cmsgpack.pack(h) .. rest)
  schedule(id, now, lane_of(h))
  bump('kind_parked')
end
