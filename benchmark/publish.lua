-- wrk script of the benchmark's load driver (benchmark/wrk.py): POST pre-built bodies.
--
-- wrk runs one thread per connection here; thread N sends, in order, the
-- bodies of the file "<prefix>.N" (one JSON body per line), then stops.
-- It writes "ready N" to stderr before its first request and "done N" after
-- its last answer, so the driver knows when the clock starts and when to end
-- wrk (whose main thread otherwise sleeps for the whole --duration).

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
   io.stderr:write("ready " .. id .. "\n")
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
      io.stderr:write("done " .. id .. "\n")
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
