-- Checks of what producers send (the enqueue scripts run them over the whole call before
-- their first write, so that a refused call stores nothing). The Rust producer checks the
-- same rules before it sends; these are the last line for every other producer. Each rule
-- is stated in docs/wire-format.md ("What the enqueue scripts refuse"); the limits come
-- from Rust (MAX_* constants, prepended by scripts/mod.rs).
--
-- A refusal is the error reply 'ERR workq: refused: job <index> (<id>): <field>: <what>',
-- the index counting jobs of the call from 1. Bytes of the id outside its alphabet are
-- written as \xNN, so that the message is always one printable line.

-- A job id: a ULID in its canonical form, 26 upper-case Crockford base32 characters, the
-- first 0 to 7 (128 bits). Anything else would break the comma-separated lists of events,
-- and lookups, which parse ids, would never find it.
local ID_PATTERN = '^[0-7][0-9A-HJKMNP-TV-Z]*$'
-- The alphabet by byte, for checking the last characters of an id whose first 24 are
-- those of an id already checked: ids made together share their time and most of their
-- random part (a batch of one producer, or a lane's entries in order), and a search
-- costs about 15 ns a character here.
local ID_CHAR = { [48] = true, [49] = true, [50] = true, [51] = true, [52] = true, [53] = true,
  [54] = true, [55] = true, [56] = true, [57] = true, [65] = true, [66] = true, [67] = true,
  [68] = true, [69] = true, [70] = true, [71] = true, [72] = true, [74] = true, [75] = true,
  [77] = true, [78] = true, [80] = true, [81] = true, [82] = true, [83] = true, [84] = true,
  [86] = true, [87] = true, [88] = true, [89] = true, [90] = true }
local function valid_id(id)
  return #id == 26 and string.find(id, ID_PATTERN) ~= nil
end

local function printable(s)
  if #s > 40 then s = string.sub(s, 1, 40) .. '...' end
  return (string.gsub(s, '[^%w%-_.:]', function(c) return string.format('\\x%02x', string.byte(c)) end))
end

local function refusal(j, id, field, what)
  return redis.error_reply('ERR workq: refused: job ' .. j .. ' (' .. printable(id or '') .. '): '
    .. field .. ': ' .. what)
end

-- Well-formed UTF-8 (no overlong forms, no surrogates); ASCII is checked by one search.
local function valid_utf8(s)
  if not string.find(s, '[\128-\255]') then return true end
  local i, n = 1, #s
  while i <= n do
    local c = string.byte(s, i)
    local len, lo, hi = 1, 0x80, 0xbf
    if c < 0x80 then len = 1
    elseif c >= 0xc2 and c <= 0xdf then len = 2
    elseif c >= 0xe0 and c <= 0xef then
      len = 3
      if c == 0xe0 then lo = 0xa0 elseif c == 0xed then hi = 0x9f end
    elseif c >= 0xf0 and c <= 0xf4 then
      len = 4
      if c == 0xf0 then lo = 0x90 elseif c == 0xf4 then hi = 0x8f end
    else
      return false
    end
    for k = 1, len - 1 do
      local b = string.byte(s, i + k)
      if b == nil then return false end
      if k == 1 then
        if b < lo or b > hi then return false end
      elseif b < 0x80 or b > 0xbf then
        return false
      end
    end
    i = i + len
  end
  return true
end

-- A kind: 1 to MAX_KIND_BYTES printable ASCII characters, no space, ',' or '#' (kinds
-- are listed comma-separated by workers and name kind lanes after a '#').
-- Kinds already found good: a batch usually holds few kinds, so each is checked once.
local good_kinds, good_kind_count = {}, 0
local function kind_problem(kind)
  if good_kinds[kind] then return nil end
  if type(kind) ~= 'string' then return 'must be a string' end
  if #kind == 0 or #kind > MAX_KIND_BYTES then return 'must be 1 to ' .. MAX_KIND_BYTES .. ' bytes' end
  if string.find(kind, '[^!-~]') or string.find(kind, '[,#]') then
    return "must be printable ASCII without spaces, ',' or '#'"
  end
  if good_kind_count >= 1000 then good_kinds, good_kind_count = {}, 0 end
  good_kinds[kind] = true
  good_kind_count = good_kind_count + 1
  return nil
end

local function tag_problem(tag)
  if type(tag) ~= 'string' then return 'must be a string' end
  if #tag == 0 or #tag > MAX_TAG_BYTES then return 'must be 1 to ' .. MAX_TAG_BYTES .. ' bytes' end
  if not valid_utf8(tag) then return 'must be UTF-8' end
  return nil
end

local function is_int(v, lo, hi)
  return type(v) == 'number' and v == math.floor(v) and v >= lo and v <= hi
end

local MAX_INT = 9007199254740992 -- 2^53: every integer up to it is exact in a Lua number

-- The due argument: a whole number of ms, positive for an absolute time, zero or negative
-- for a delay, at most MAX_AHEAD_MS ahead of Redis' now. Returns the due time, or nil and
-- what is wrong.
local function read_due(ds)
  if ds == '0' then return now end -- "due now", the common case
  local due = nil
  if string.find(ds, '^%s*[-+]?[%d.]+[eE]?[-+]?%d*%s*$') then due = tonumber(ds) end
  if due == nil or due ~= due or due == math.huge or due == -math.huge then
    return nil, "'" .. printable(ds) .. "' is not a number (ms: > 0 an absolute time, <= 0 a delay)"
  end
  if due ~= math.floor(due) then return nil, "'" .. printable(ds) .. "' is not a whole number of ms" end
  if due <= 0 then due = now - due end
  if due > now + MAX_AHEAD_MS then
    return nil, "'" .. printable(ds) .. "' is more than " .. MAX_AHEAD_MS .. ' ms (about 100 years) from now'
  end
  return due
end

-- Fields of ext a new record may carry, each with its check; those written by the scripts
-- themselves (s, w, f, e, o, i, G, K) are refused, unknown keys are ignored (a newer
-- producer's options). `graph` allows the chain and unique-work fields.
local function list_of(v, check)
  if type(v) ~= 'table' then return 'must be an array' end
  local n = 0
  for _ in pairs(v) do n = n + 1 end
  if n ~= #v then return 'must be an array' end
  for _, item in ipairs(v) do
    local p = check(item)
    if p then return p end
  end
  return nil
end

local function id_problem(v)
  if type(v) ~= 'string' or not valid_id(v) then return 'must hold job ids (ULIDs)' end
  return nil
end

local function label_problem(l)
  if type(l) ~= 'string' or #l == 0 or #l > MAX_TAG_BYTES or string.find(l, '[,@#{}%s]') or not valid_utf8(l) then
    return 'labels must be 1 to ' .. MAX_TAG_BYTES .. " bytes of UTF-8 without ',', '@', '#', braces or spaces"
  end
  return nil
end

-- a < b by bytes (Lua's < follows the server's collation locale).
local function bytes_lt(a, b)
  for i = 1, math.min(#a, #b) do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x < y end
  end
  return #a < #b
end

local ext_checks = {
  t = function(v) return list_of(v, tag_problem) end,
  m = function(v) if not is_int(v, 1, MAX_ATTEMPTS_LIMIT) then return 'must be 1 to ' .. MAX_ATTEMPTS_LIMIT end end,
  b = function(v)
    if type(v) ~= 'table' or #v ~= 3 or not is_int(v[1], 0, 1) or not is_int(v[2], 1, MAX_INT)
        or not is_int(v[3], v[2], MAX_INT) then
      return 'must be [0 or 1, initial ms >= 1, max ms >= initial]'
    end
  end,
  x = function(v) if not is_int(v, 1, MAX_INT) then return 'must be a positive number of ms' end end,
  l = function(v)
    local p = list_of(v, label_problem)
    if p then return p end
    for k = 2, #v do
      if not bytes_lt(v[k - 1], v[k]) then return 'must be sorted (by bytes), without duplicates' end
    end
  end,
  X = function(v) if type(v) ~= 'boolean' then return 'must be a boolean' end end,
  g = function(v) if not is_int(v, 0, 1) then return 'must be 0 or 1' end end,
  ri = function(v) if not is_int(v, 1, MAX_INT) then return 'must be a positive number of ms' end end,
  rf = function(v) if not is_int(v, 1, MAX_INT) then return 'must be a positive number of ms' end end,
  rc = function(v) if type(v) ~= 'string' or #v == 0 or #v > 256 then return 'must be a cron expression' end end,
  rn = function(v) if not is_int(v, 0, MAX_INT) then return 'must be a time in ms' end end,
  rb = function(v) if not is_int(v, 0, 0) then return 'must be 0 in a new record' end end,
  -- Metadata: a map of strings, bounded (MAX_METADATA, from limits.rs) because it rides in
  -- every header a script decodes.
  M = function(v)
    if type(v) ~= 'table' then return 'metadata must be a map of strings' end
    local count = 0
    local bytes = 0
    for k, val in pairs(v) do
      if type(k) ~= 'string' or #k == 0 or #k > MAX_METADATA.key or string.find(k, '[^!-~]') then
        return 'metadata keys must be 1 to ' .. MAX_METADATA.key .. ' bytes of printable ASCII without spaces'
      end
      if type(val) ~= 'string' or #val > MAX_METADATA.value or not valid_utf8(val) then
        return "metadata value of '" .. printable(k) .. "' must be UTF-8 of at most " .. MAX_METADATA.value .. ' bytes'
      end
      count = count + 1
      bytes = bytes + #k + #val
    end
    if count > MAX_METADATA.entries then
      return 'metadata has ' .. count .. ' entries, over the limit of ' .. MAX_METADATA.entries
    end
    if bytes > MAX_METADATA.bytes then
      return 'metadata is ' .. bytes .. ' bytes (keys and values), over the limit of ' .. MAX_METADATA.bytes
    end
  end,
}
local graph_checks = {
  u = function(v) if type(v) ~= 'string' or #v == 0 or #v > MAX_TAG_BYTES then return 'must be 1 to ' .. MAX_TAG_BYTES .. ' bytes' end end,
  P = function(v) return list_of(v, id_problem) end,
  k = function(v) return list_of(v, id_problem) end,
  p = function(v) if not is_int(v, 1, MAX_INT) then return 'must be a positive count' end end,
}
local script_owned = { s = true, w = true, f = true, e = true, o = true, i = true, G = true, K = true, D = true }

-- Checks one new record against its due string and lane; returns the decoded header (nil
-- for a record without ext, which needs no decoding), and the due time; or nil, nil,
-- field and problem. `states` lists the states the record may be in.
local function check_new(rec, ds, lane, graph)
  if #rec > MAX_RECORD_BYTES then
    return nil, nil, 'record', #rec .. ' bytes, over the limit of ' .. MAX_RECORD_BYTES
  end
  local b1, b2, b3, b4, b5 = string.byte(rec, 1, 5)
  if (b1 ~= HEADER_BARE and b1 ~= HEADER_EXT) or b2 ~= FORMAT_VERSION or b4 ~= 0 or b5 ~= HEADER_STAMP or #rec < 15 then
    return nil, nil, 'record', 'does not start with the header of workq format v1 (see docs/wire-format.md)'
  end
  if b3 ~= ENQUEUED and not (graph and b3 == BLOCKED) then
    return nil, nil, 'record', 'state must be ' .. (graph and '0 (ENQUEUED) or 5 (BLOCKED)' or '0 (ENQUEUED)')
  end
  local due, why = read_due(ds)
  if due == nil then return nil, nil, 'due', why end
  if b1 == HEADER_BARE then
    -- No ext: the kind follows the 13 fixed bytes, as a str; no lane, no tags.
    local k = string.byte(rec, 14)
    local kind
    if k >= 0xa0 and k <= 0xbf then
      kind = string.sub(rec, 15, 14 + k - 0xa0)
      if #kind ~= k - 0xa0 then kind = nil end
    elseif k == 0xd9 then
      local len = string.byte(rec, 15)
      kind = string.sub(rec, 16, 15 + len)
      if #kind ~= len then kind = nil end
    end
    if kind == nil then return nil, nil, 'kind', 'must be a MessagePack str after the enqueued time' end
    local p = kind_problem(kind)
    if p then return nil, nil, 'kind', p end
    if lane ~= '' then return nil, nil, 'lane', "'" .. printable(lane) .. "' but the record has no labels and is not expedited: ''" end
    return nil, due
  end
  local ok, _, h = pcall(cmsgpack.unpack_one, rec, 0)
  if not ok or type(h) ~= 'table' or #h ~= 6 or h[4] ~= 0 or type(h[6]) ~= 'table' then
    return nil, nil, 'record', 'header must be [1, state, 0, 0 as uint64, kind, ext map]'
  end
  local p = kind_problem(h[5])
  if p then return nil, nil, 'kind', p end
  for key, v in pairs(h[6]) do
    if type(key) ~= 'string' then return nil, nil, 'ext', 'keys must be strings' end
    local check = ext_checks[key] or (graph and graph_checks[key])
    if check then
      p = check(v)
      if p then return nil, nil, 'ext.' .. key, p end
    elseif script_owned[key] or graph_checks[key] then
      return nil, nil, 'ext.' .. key, 'is not for ' .. (graph and 'new records' or 'enqueue (chains and unique work go through enqueue_graph)')
    end
  end
  local x = h[6]
  if x.rf and (not x.ri or x.rf > x.ri) then return nil, nil, 'ext.rf', 'needs ri, and must be at most ri' end
  if x.ri and x.rc then return nil, nil, 'ext.rc', 'a job is periodic by interval (ri) or by cron (rc), not both' end
  if lane_of(h) ~= lane then
    return nil, nil, 'lane', "'" .. printable(lane) .. "' but the record's labels and expedited flag give '" .. lane_of(h) .. "'"
  end
  return h, due
end

-- A claimed job whose id is not a ULID (written by hand, past enqueue's checks) fails
-- alone. It is left out of events (their lists are comma-separated) and of the reply.
local function fail_malformed_id(id, rec)
  local h, rest = split(rec)
  if h == nil then
    h, rest = { FORMAT_VERSION, FAILED, 0, now, '', {} }, rec
  end
  local x = ext(h)
  h[2] = FAILED
  x.f = now
  x.e = 'malformed job id (not a ULID): ' .. printable(id)
  bump('failed')
  put_job(id, cmsgpack.pack(h) .. rest)
  to_done(id, keep_failed, FAILED)
end

-- A record found in a due lane in a state a claim does not expect. A job that is running
-- under a worker that holds it (a stale lane entry), BLOCKED in `blocked`, or finished
-- only loses the entry; one nobody would ever move on (RUNNING with no holder, BLOCKED
-- outside `blocked`, an unknown state) fails, saying why.
local function check_unexpected(id, rec, h, rest, by)
  local st = h[2]
  local why = nil
  if st == RUNNING then
    if type(by) ~= 'string' or redis.call('SISMEMBER', k_held(by), id) == 0 then
      why = 'found RUNNING in a due lane with no worker holding it'
    end
  elseif st == BLOCKED then
    if redis.call('SISMEMBER', K_BLOCKED, id) == 0 then
      why = 'found BLOCKED in a due lane, not waiting on any parent'
    end
  elseif st ~= SUCCEEDED and st ~= FAILED and st ~= CANCELLED then
    why = 'unknown state ' .. tostring(st)
  end
  if why == nil then return end
  if st == RUNNING then
    end_attempt(id, rec, nil, 'F', why, '', false)
  else
    ext(h).e = why
    finish(id, h, rest, FAILED)
  end
end
