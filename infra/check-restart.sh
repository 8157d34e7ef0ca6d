#!/usr/bin/env bash
# Scripted check of what survives a restart of `make dev`: a contact is still
# there after the stack is stopped and started again, and an import that was
# running when it stopped is failed with its reason. Runs its own stack on
# PORT (default 3077) with its own emulator ports; leaves FRESH data behind.
# Usage: infra/check-restart.sh   (after `make venv` and the dynoxide install)
set -euo pipefail
cd "$(dirname "$0")/.."
export PORT=${PORT:-3077} AWS_ENDPOINT_URL=${CHECK_MOTO:-http://127.0.0.1:4577}
export AWS_ENDPOINT_URL_DYNAMODB=${CHECK_DYNAMODB:-http://127.0.0.1:4568}
base="http://127.0.0.1:$PORT"
log=$(mktemp)
start() {
  FRESH=${1:-} infra/dev.sh >"$log" 2>&1 &
  for _ in $(seq 1 300); do curl -fsS -o /dev/null "$base/health" 2>/dev/null && return; sleep 1; done
  echo "the stack did not start; see $log" >&2; exit 1
}
stop() {
  pkill -INT -f "infra/dev.sh" || true
  sleep 2
  pkill -f "target/debug/roster-local" || true
  pkill -f "dynoxide serve --host 127.0.0.1 --port ${AWS_ENDPOINT_URL_DYNAMODB##*:}" || true
  pkill -f "moto_server -H 127.0.0.1 -p ${AWS_ENDPOINT_URL##*:}" || true
  sleep 1
}
trap stop EXIT
json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }

start 1
project=$(curl -fsS -X POST "$base/v1/projects" -H 'Authorization: Bearer dev-admin-token' \
  -H 'Content-Type: application/json' -d '{"name":"Restart check"}')
pid=$(json '["id"]' <<<"$project"); key=$(json '["api_key"]' <<<"$project")
auth=(-H "Authorization: Bearer $key" -H 'Content-Type: application/json')
curl -fsS -X POST "$base/v1/projects/$pid/contacts" "${auth[@]}" -d '{"email":"ada@example.com"}' >/dev/null
python3 -c "
print('email,name')
for i in range(300000): print(f'u{i}@example.com,User {i}')" >"$log.csv"
job=$(curl -fsS -X POST "$base/v1/projects/$pid/imports" "${auth[@]}" -d '{"filename":"big.csv"}')
curl -fsS -T "$log.csv" "$(json '["upload_url"]' <<<"$job")" >/dev/null
id=$(json '["id"]' <<<"$job")
for _ in $(seq 1 60); do
  state=$(curl -fsS "$base/v1/projects/$pid/imports/$id" "${auth[@]}" | json '["state"]')
  [ "$state" = running ] && break
  sleep 0.5
done
[ "$state" = running ] || { echo "FAIL: the import never ran ($state)"; exit 1; }
stop
start
email=$(curl -fsS "$base/v1/projects/$pid/contacts?email=ada@example.com" "${auth[@]}" | json '["data"][0]["email"]')
[ "$email" = ada@example.com ] || { echo "FAIL: the contact did not survive the restart"; exit 1; }
after=$(curl -fsS "$base/v1/projects/$pid/imports/$id" "${auth[@]}")
[ "$(json '["state"]' <<<"$after")" = failed ] || { echo "FAIL: the interrupted import is not failed: $after"; exit 1; }
json '["error"]' <<<"$after" | grep -q '^interrupted' || { echo "FAIL: no reason: $after"; exit 1; }
echo "restart check: 1 passed, 0 failed (contact kept; interrupted import failed: $(json '["processed"]' <<<"$after") rows processed)"
rm -f "$log" "$log.csv"
