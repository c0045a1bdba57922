-- wrk script for the mixed load: each request is drawn from the plan file
-- ($BENCH_PLAN: lines "name<TAB>weight<TAB>method<TAB>path<TAB>json body or empty"),
-- and its latency is recorded under its name. Run it with as many connections as
-- threads (-t N -c N): a thread's one connection alternates request() and response(),
-- so the clock read in one and the other brackets one request. At the end the samples
-- ("name status microseconds" lines) go to $BENCH_SAMPLES, for bench/bench.py.
local ffi = require("ffi")
ffi.cdef[[
  typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
  int clock_gettime(int clock_id, bench_timespec *tp);
]]
local CLOCK_MONOTONIC = 1
local now = ffi.new("bench_timespec")
local function micros()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, now)
  return tonumber(now.tv_sec) * 1000000 + tonumber(now.tv_nsec) / 1000
end

local threads = {}
local counter = 0

setup = function(thread)
  counter = counter + 1
  thread:set("id", counter)
  table.insert(threads, thread)
end

local plan, total = {}, 0
samples = {}
local current, started
-- wrk.format uses the headers it is given instead of wrk.headers, so each kind has its own.
local read_headers, write_headers

init = function(args)
  for line in io.lines(os.getenv("BENCH_PLAN")) do
    local name, weight, method, path, body = line:match("^([^\t]+)\t([^\t]+)\t([^\t]+)\t([^\t]+)\t?(.*)$")
    total = total + tonumber(weight)
    table.insert(plan, {name = name, until_ = total, method = method, path = path,
                        body = body ~= "" and body or nil})
  end
  local authorization = "Bearer " .. os.getenv("BENCH_TOKEN")
  read_headers = {["Authorization"] = authorization}
  write_headers = {["Authorization"] = authorization, ["Content-Type"] = "application/json"}
  math.randomseed(id * 7919)
end

request = function()
  local pick = math.random() * total
  for _, entry in ipairs(plan) do
    if pick < entry.until_ then
      current = entry
      break
    end
  end
  local headers = current.body and write_headers or read_headers
  started = micros()
  return wrk.format(current.method, current.path, headers, current.body)
end

response = function(status, headers, body)
  samples[#samples + 1] = current.name .. " " .. status .. " " .. math.floor(micros() - started)
end

done = function(summary, latency, requests)
  local out = assert(io.open(os.getenv("BENCH_SAMPLES"), "w"))
  for _, thread in ipairs(threads) do
    for _, line in ipairs(thread:get("samples")) do
      out:write(line, "\n")
    end
  end
  out:close()
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests": %d, "duration_us": %d, "errors": {"connect": %d, "read": %d, "write": %d, ' ..
    '"status": %d, "timeout": %d}}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout))
end
