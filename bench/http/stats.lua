-- stats.lua — for every wrk run of run.sh: prints one machine-readable
-- line when the run ends (latencies in microseconds). Defines no request()
-- or response(), so wrk keeps its static, Lua-free request path.
function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format("WRK\t%d\t%d\t%.3f\t%d\t%d\t%d\t%d\t%d\n",
      summary.requests, summary.duration, latency.mean,
      latency:percentile(50), latency:percentile(99), latency.max,
      e.connect + e.read + e.write + e.timeout, e.status))
end
