#!/usr/bin/env bash
# `make run`: database + migrations, then the simulated provider, the API and the processor in
# the foreground. Ctrl-C (or SIGTERM) stops all three cleanly.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin

# A local bootstrap key, kept across runs, unless the environment brings one.
if [[ -z "${API_BOOTSTRAP_KEY:-}" ]]; then
  mkdir -p .cache
  [[ -s .cache/api-bootstrap-key ]] || echo "sk_local_$(openssl rand -hex 16)" > .cache/api-bootstrap-key
  API_BOOTSTRAP_KEY=$(cat .cache/api-bootstrap-key)
  export API_BOOTSTRAP_KEY
fi
export LOG_FORMAT=${LOG_FORMAT:-console}
# Webhook receivers on this machine (http://127.0.0.1:...) are allowed in development.
export WEBHOOK_ALLOW_PRIVATE_URLS=${WEBHOOK_ALLOW_PRIVATE_URLS:-true}

"$BIN/payout-admin" migrate

pids=()
stop() {
  trap - INT TERM
  echo "stopping..." >&2
  kill -TERM "${pids[@]}" 2>/dev/null || true
  wait "${pids[@]}" 2>/dev/null || true
  exit 0
}
trap stop INT TERM

"$BIN/payout-provider-sim" & pids+=($!)
"$BIN/payout-api" & pids+=($!)
"$BIN/payout-processor" & pids+=($!)

port=${API_PORT:-8000}
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:${port}/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done
cat <<MSG

  Payout API:   http://127.0.0.1:${port}/api/payouts/
  API docs:     http://127.0.0.1:${port}/api/schema/swagger/
  API key:      ${API_BOOTSTRAP_KEY}
  Provider:     ${PROVIDER_URL:-http://127.0.0.1:8002}/v1/transfers/<payout id>  (simulated)

  curl -s -X POST http://127.0.0.1:${port}/api/payouts/ \\
    -H "Authorization: Bearer ${API_BOOTSTRAP_KEY}" -H "Content-Type: application/json" \\
    -d '{"amount": "100.50", "currency": "USD", "recipient_details": {"account": "DE89370400440532013000", "name": "Jane Doe"}}'

MSG
# Any process exiting stops the others.
wait -n "${pids[@]}" || true
stop
