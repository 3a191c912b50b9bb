-- wrk script for bench_stack.py.
--   wrk -tN ... -s wrk_report.lua URL [-- COOKIEFILE N]
-- With COOKIEFILE (one "MoodleSession=..." line per logged-in user), every request carries the next
-- session of its thread's share of the file: thread k of n rotates over its own 1/n of the sessions, so
-- with fewer connections than sessions one session is (almost) never in two requests at once (Moodle
-- locks a session for the length of a request).
-- Any answer but 200 counts as an error: a lost session shows up as a 303 to the login page, which
-- would otherwise be a fast "success".
local threads = {}

function setup(thread)
  thread:set("index", #threads)
  table.insert(threads, thread)
end

function init(args)
  non200 = 0
  cookies = {}
  if args[1] then
    local all = {}
    for line in io.lines(args[1]) do
      if line ~= "" then table.insert(all, line) end
    end
    local count = tonumber(args[2]) or 1
    local share = math.max(1, math.floor(#all / count))
    local first = index * share + 1
    for i = first, math.min(first + share - 1, #all) do table.insert(cookies, all[i]) end
    if #cookies == 0 then cookies = all end
  end
  next_cookie = 0
end

function request()
  if #cookies == 0 then
    return wrk.format("GET")
  end
  next_cookie = next_cookie % #cookies + 1
  return wrk.format("GET", nil, {Cookie = cookies[next_cookie]})
end

function response(status, headers, body)
  if status ~= 200 then non200 = non200 + 1 end
end

function done(summary, latency, requests)
  local bad = 0
  for _, thread in ipairs(threads) do bad = bad + thread:get("non200") end
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout
  io.write(string.format(
    "BENCH rps=%.2f p50_ms=%.2f p95_ms=%.2f p99_ms=%.2f requests=%d errors=%d non200=%d\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50.0) / 1000.0,
    latency:percentile(95.0) / 1000.0, latency:percentile(99.0) / 1000.0, summary.requests, errors, bad))
end
