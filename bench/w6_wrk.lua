-- wrk script of W6 (bench/load_wrk.py runs it): every request is the next of a fixed list, so
-- 32 connections rotate through the keys instead of asking for one cached record.
--
--   wrk ... -s bench/w6_wrk.lua URL -- METHOD REQUESTS_FILE ["Name: value" ...]
--
-- REQUESTS_FILE holds one request a line: the path (with its query string), a tab, the body
-- (empty for none). The requests are formatted once, in init(); request() only hands out the
-- next string, which keeps wrk's own work per request at a minimum. done() prints one line of
-- JSON (after MARKER) with wrk's counts and latency percentiles, which load_wrk.py reads
-- instead of wrk's human-readable summary.

local MARKER = "W6-WRK-JSON "
local requests = {}
local count = 0
local next_index = 0

function init(args)
   local method, file = args[1], args[2]
   local headers = {}
   for i = 3, #args do
      local name, value = args[i]:match("^([^:]+):%s*(.*)$")
      headers[name] = value
   end
   for line in io.lines(file) do
      local path, body = line:match("^([^\t]*)\t(.*)$")
      if body == "" then
         body = nil
      end
      count = count + 1
      -- wrk.format adds Host and sets (or, without a body, clears) Content-Length.
      requests[count] = wrk.format(method, path, headers, body)
   end
end

function request()
   next_index = next_index % count + 1
   return requests[next_index]
end

function done(summary, latency, _)
   local e = summary.errors
   io.write(MARKER .. string.format(
      '{"duration_us": %d, "requests": %d, "bytes": %d, ' ..
      '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
      '"latency_us": {"p50": %d, "p90": %d, "p99": %d, "max": %d, "mean": %.1f}}\n',
      summary.duration, summary.requests, summary.bytes,
      e.connect, e.read, e.write, e.status, e.timeout,
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
