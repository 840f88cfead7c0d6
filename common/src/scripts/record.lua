-- The record codec: a record's state, attempts and lane from its fixed bytes or its
-- decoded header, its options, backoff, and the stamp of Redis time.

-- State and attempts straight from the record's first bytes; nil when the header is not
-- in its compact form (then callers decode it).
local function peek(rec)
  local b0, b1, st, att = string.byte(rec, 1, 4)
  if (b0 == HEADER_BARE or b0 == HEADER_EXT) and b1 == FORMAT_VERSION and st and st <= 5 and att and att < 127 then
    return st, att
  end
  return nil
end

-- Returns header, rest (input and output; a RUNNING record's trailer removed), started_ms,
-- worker, trailer bytes; or nil when the header cannot be read (the job must then fail
-- alone instead of breaking the whole batch).
local function split(rec)
  local ok, off, h = pcall(cmsgpack.unpack_one, rec, 0)
  if not ok or type(h) ~= 'table' or h[1] ~= FORMAT_VERSION or type(h[2]) ~= 'number'
      or type(h[3]) ~= 'number' or type(h[4]) ~= 'number' or type(h[5]) ~= 'string'
      or (h[6] ~= nil and type(h[6]) ~= 'table') then
    return nil
  end
  local rest = string.sub(rec, off + 1)
  if h[2] == RUNNING and #rest > 0 then
    local n = string.byte(rest, #rest)
    local ok2, t = pcall(cmsgpack.unpack, string.sub(rest, #rest - n, #rest - 1))
    if ok2 and type(t) == 'table' then
      return h, string.sub(rest, 1, #rest - n - 1), t[1], t[2], string.sub(rest, #rest - n)
    end
  end
  return h, rest
end

-- State and attempts of a record: from its fixed bytes, or else from its decoded header;
-- nil for a record that is missing or cannot be read.
local function state_of(rec)
  if not rec then return nil end
  local st, att = peek(rec)
  if st == nil then
    local h = split(rec)
    if h then st, att = h[2], h[3] end
  end
  return st, att
end

local function ext(h)
  local x = h[6]
  if x == nil then
    x = {}
    h[6] = x
  end
  return x
end

-- The lane a job waits in: '' (plain), 'x' (expedited), '@gpu,eu' (needs those labels,
-- sorted by the producer), 'x@gpu,eu'; followed by '#<kind>' once a worker that does not
-- run its kind has passed it on (ext.K), so that only workers of its kind see it again.
local function lane_of(h)
  local x = h[6]
  if x == nil then return '' end
  local lane = ''
  if x.X then lane = 'x' end
  if type(x.l) == 'table' and #x.l > 0 then lane = lane .. '@' .. table.concat(x.l, ',') end
  if x.K then lane = lane .. '#' .. h[5] end
  return lane
end

local function max_attempts(h)
  local x = h[6]
  return (x and x.m) or DEFAULT_MAX_ATTEMPTS
end

local function is_periodic(h)
  local x = h[6]
  return x ~= nil and (x.ri ~= nil or x.rc ~= nil)
end

-- Attempts made in the current run. Periodic work starts counting again each period
-- (ext.rb); the attempt number itself keeps growing, because it is the fencing token.
local function run_attempts(h)
  local x = h[6]
  return h[3] - ((x and x.rb) or 0)
end

-- WorkManager's formulas: linear = initial * n, exponential = initial * 2^(n-1), capped.
local function backoff_ms(h, attempts)
  local x = h[6]
  local b = (x and x.b) or DEFAULT_BACKOFF
  local d
  if b[1] == 0 then
    d = b[2] * attempts
  else
    d = b[2] * 2 ^ (math.min(attempts, 62) - 1)
  end
  if d > b[3] then d = b[3] end
  return math.floor(d)
end

-- A job's stamp of Redis time: the 8 bytes of a big-endian uint64.
local function u64be(n)
  local b = {}
  for i = 8, 1, -1 do
    b[i] = n % 256
    n = math.floor(n / 256)
  end
  return string.char(unpack(b))
end
