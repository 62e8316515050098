-- kv.lua — wrk script for bench/kv/run.sh. args: MODE STORE [KEYS]
--   set: PUT /kv/STORE/b<thread>-<n> with a 64-byte body (every key new)
--   get: GET /kv/STORE/k<i>, i cycling over KEYS pre-written keys
-- Prints the same "WRK\t..." line as bench/http/stats.lua when done.
local threads = {}
local counter = 0

function setup(thread)
   counter = counter + 1
   thread:set("id", counter)
   table.insert(threads, thread)
end

function init(args)
   mode = args[1] or "get"
   store = args[2] or "main"
   nkeys = tonumber(args[3] or "1000")
   n = 0
   body = string.rep("v", 64)
end

function request()
   n = n + 1
   if mode == "set" then
      return wrk.format("PUT", "/kv/" .. store .. "/b" .. id .. "-" .. n, nil, body)
   end
   return wrk.format("GET", "/kv/" .. store .. "/k" .. (n % nkeys))
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format("WRK\t%d\t%d\t%.3f\t%d\t%d\t%d\t%d\t%d\n",
      summary.requests, summary.duration, latency.mean,
      latency:percentile(50), latency:percentile(99), latency.max,
      e.connect + e.read + e.write + e.timeout, e.status))
end
