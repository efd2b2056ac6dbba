-- wrk script: each wrk thread (one connection) sends its own slice of pre-signed Slack requests, each once,
-- in order, then stops. args: FILE PER_THREAD ; lines of FILE are "timestamp<TAB>signature<TAB>form body".
--
-- The request sent next is the one after the last answered, not a count of request() calls: wrk may call
-- request() before the run (to check the script), and a count would then skip the first request and send
-- the last one twice.
local counter = 0

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
end

function init(args)
  reqs = {}
  local per = tonumber(args[2])
  local i = 0
  for line in io.lines(args[1]) do
    if math.floor(i / per) == id then
      local ts, sig, body = line:match("([^\t]+)\t([^\t]+)\t(.*)")
      reqs[#reqs + 1] = wrk.format("POST", "/slack/events", {
        ["Content-Type"] = "application/x-www-form-urlencoded",
        ["X-Slack-Request-Timestamp"] = ts,
        ["X-Slack-Signature"] = sig,
      }, body)
    end
    i = i + 1
  end
  answered, bad = 0, 0
end

function request()
  return reqs[math.min(answered + 1, #reqs)]
end

function response(status, headers, body)
  answered = answered + 1
  if status ~= 200 then bad = bad + 1 end
  if answered >= #reqs then wrk.thread:stop() end
end

function done(summary, latency, requests)
  io.write(string.format("RESULT p50_ms=%.2f p99_ms=%.2f max_ms=%.2f requests=%d non200=%d\n",
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
    summary.requests, summary.errors.status))
end
