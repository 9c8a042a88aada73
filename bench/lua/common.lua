-- Shared by every bench script: auth headers, non-2xx counting, an optional per-thread
-- response quota, and one machine-readable result line for bench/load.py.
-- Environment: BENCH_API_KEY (bearer key), BENCH_QUOTA (responses per thread, 0 = none).

api_key = os.getenv("BENCH_API_KEY")
quota = tonumber(os.getenv("BENCH_QUOTA") or "0")
auth_headers = { ["Authorization"] = "Bearer " .. api_key }

local threads = {}
local next_thread = 0

function setup(thread)
  next_thread = next_thread + 1
  thread:set("thread_id", next_thread)
  table.insert(threads, thread)
end

non2xx = 0
responses = 0

function response(status, headers, body)
  responses = responses + 1
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
  end
  -- The thread stops taking new requests; bench/load.py ends wrk once the work is done.
  if quota > 0 and responses >= quota then
    wrk.thread:stop()
  end
end

function done(summary, latency, requests)
  local failed = 0
  local counted = 0
  for _, thread in ipairs(threads) do
    failed = failed + thread:get("non2xx")
    counted = counted + thread:get("responses")
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests": %d, "responses": %d, "duration_us": %d, "non2xx": %d, '
      .. '"socket_errors": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, '
      .. '"mean_us": %.1f}\n',
    summary.requests, counted, summary.duration, failed,
    e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean
  ))
end
