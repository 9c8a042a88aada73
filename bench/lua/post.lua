-- POST /api/payouts/ with a distinct body on every request, and a distinct Idempotency-Key
-- unless BENCH_IDEMPOTENCY_KEY=0.
-- Environment: BENCH_RUN_ID (makes keys unique across runs), plus common.lua's.
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

local run_id = os.getenv("BENCH_RUN_ID") or tostring(os.time())
local with_key = os.getenv("BENCH_IDEMPOTENCY_KEY") ~= "0"
local sent = 0
local body_format = '{"amount": "%d.%02d", "currency": "USD", '
  .. '"recipient_details": {"account": "DE89370400440532013000", "name": "Bench %s"}, '
  .. '"description": "bench payout", "metadata": {"bench_key": "%s"}}'

function request()
  sent = sent + 1
  local key = run_id .. "-" .. thread_id .. "-" .. sent
  local headers = {
    ["Authorization"] = auth_headers["Authorization"],
    ["Content-Type"] = "application/json",
  }
  if with_key then
    headers["Idempotency-Key"] = key
  end
  local body = string.format(body_format, 1 + sent % 9999, sent % 100, key, key)
  return wrk.format("POST", "/api/payouts/", headers, body)
end
