-- wrk script of the benchmark's load driver (benchmark/wrk.py): POST pre-built bodies.
--
-- wrk runs one thread per connection here; thread N sends, in order, the
-- bodies of the file "<prefix>.N" (one JSON body per line), then stops.
-- It writes "ready N T" to stderr before its first request and "done N T"
-- after its last answer, T the moment on the clock of the driver's
-- time.monotonic() (CLOCK_MONOTONIC): the driver learns when the clock starts
-- and stops, however late it reads the lines, and when to end wrk (whose main
-- thread otherwise sleeps for the whole --duration).

local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } loggregator_timespec;
int clock_gettime(int clock_id, loggregator_timespec *now);
]]
local CLOCK_MONOTONIC = 1
local clock = ffi.new("loggregator_timespec")

local function monotonic()
   ffi.C.clock_gettime(CLOCK_MONOTONIC, clock)
   return string.format("%d.%09d", tonumber(clock.tv_sec), tonumber(clock.tv_nsec))
end

local threads = {}

function setup(thread)
   thread:set("id", #threads)
   table.insert(threads, thread)
end

function init(args)
   bodies = {}
   for line in io.lines(args[1] .. "." .. id) do
      bodies[#bodies + 1] = line
   end
   headers = {["Content-Type"] = "application/json"}
   accepted, failed, problem = 0, 0, ""
   io.stderr:write("ready " .. id .. " " .. monotonic() .. "\n")
end

-- One connection per thread, one request at a time: the next body is the one
-- after those answered. (wrk also calls this once to check the script, before
-- any request: that call must not use a body up.)
function request()
   local body = bodies[accepted + failed + 1]
   if body == nil then  -- asked again after the last answer, before wrk stopped
      return wrk.format("GET", "/stats")
   end
   return wrk.format("POST", "/publish", headers, body)
end

function response(status, headers, body)
   if status == 202 then
      accepted = accepted + 1
   else
      failed = failed + 1
      if problem == "" then
         -- Quotes, backslashes and control characters out: it goes into JSON as is.
         problem = ("HTTP " .. status .. ": " .. string.sub(body, 1, 300)):gsub('[%c"\\]', " ")
      end
   end
   if accepted + failed == #bodies then
      io.stderr:write("done " .. id .. " " .. monotonic() .. "\n")
      wrk.thread:stop()
   end
end

function done(summary, latency, requests)
   local accepted, failed, problems = 0, 0, {}
   for _, thread in ipairs(threads) do
      accepted = accepted + thread:get("accepted")
      failed = failed + thread:get("failed")
      local problem = thread:get("problem")
      if problem ~= "" then
         problems[#problems + 1] = '"' .. problem .. '"'
      end
   end
   local errors = summary.errors
   io.write(string.format(
      '{"accepted": %d, "failed": %d, "p50_us": %d, "p99_us": %d, "socket_errors": %d, "problems": [%s]}\n',
      accepted, failed, latency:percentile(50), latency:percentile(99),
      errors.connect + errors.read + errors.write + errors.timeout, table.concat(problems, ", ")))
end
