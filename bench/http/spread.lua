-- spread.lua — wrk script for the scaling run: `wrk ... -s spread.lua URL
-- -- /p1 /p2 ...` sends each request to the next path of the list in turn
-- (every thread starts at a different place), so requests are spread evenly
-- across the routes. Requests are formatted once, in init(). done() prints
-- the same line as stats.lua.
local reqs, n, i = {}, 0, 0
local next_id = 0

function setup(thread)
   next_id = next_id + 1
   thread:set("thread_id", next_id)
end

function init(args)
   for _, p in ipairs(args) do
      n = n + 1
      reqs[n] = wrk.format(nil, p)
   end
   if n > 0 then
      i = ((thread_id or 1) * 7919) % n
   end
end

function request()
   if n == 0 then
      return wrk.format()
   end
   i = i % n + 1
   return reqs[i]
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format("WRK\t%d\t%d\t%.3f\t%d\t%d\t%d\t%d\t%d\n",
      summary.requests, summary.duration, latency.mean,
      latency:percentile(50), latency:percentile(99), latency.max,
      e.connect + e.read + e.write + e.timeout, e.status))
end
