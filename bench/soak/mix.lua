-- mix.lua — wrk script for bench/soak: cycles through a list of shop
-- requests and, when the run ends, prints one machine-readable line
-- (latencies in microseconds, counts over every thread):
--   SOAK requests=N p50=US p99=US max=US s2xx=N s4xx=N s5xx=N sockerr=N
-- The list comes from the environment: SOAK_TOKEN (a bearer token for the
-- cart routes) and SOAK_PATHS ("METHOD PATH [BODY]" entries separated by
-- "|"). SOAK_DELAY_MS, when set, waits that long before each request (a
-- slow, steady stream instead of as fast as possible).
local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

function init(args)
   reqs = {}
   local token = os.getenv("SOAK_TOKEN") or ""
   for entry in string.gmatch(os.getenv("SOAK_PATHS") or "GET /api", "[^|]+") do
      local method, path, body = string.match(entry, "^(%S+) (%S+) ?(.*)$")
      local headers = {}
      if token ~= "" then headers["Authorization"] = "Bearer " .. token end
      if body ~= "" then
         headers["Content-Type"] = "application/json"
      else
         body = nil
      end
      table.insert(reqs, wrk.format(method, path, headers, body))
   end
   n = 0
   s2, s4, s5 = 0, 0, 0
   pause = tonumber(os.getenv("SOAK_DELAY_MS") or "0")
end

function request()
   n = n + 1
   return reqs[(n - 1) % #reqs + 1]
end

if tonumber(os.getenv("SOAK_DELAY_MS") or "0") > 0 then
   function delay()
      return pause
   end
end

function response(status, headers, body)
   if status >= 500 then s5 = s5 + 1
   elseif status >= 400 then s4 = s4 + 1
   else s2 = s2 + 1 end
end

function done(summary, latency, requests)
   local t2, t4, t5 = 0, 0, 0
   for _, t in ipairs(threads) do
      t2 = t2 + t:get("s2")
      t4 = t4 + t:get("s4")
      t5 = t5 + t:get("s5")
   end
   local e = summary.errors
   io.write(string.format("SOAK requests=%d p50=%d p99=%d max=%d s2xx=%d s4xx=%d s5xx=%d sockerr=%d\n",
      summary.requests, latency:percentile(50), latency:percentile(99), latency.max,
      t2, t4, t5, e.connect + e.read + e.write + e.timeout))
end
