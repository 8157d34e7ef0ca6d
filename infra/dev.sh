#!/usr/bin/env bash
# make dev: emulator (unless one already answers), resources from
# template.yaml, and every function in one local process on $PORT.
set -euo pipefail
cd "$(dirname "$0")/.."
export PORT=${PORT:-3000}
export AWS_ENDPOINT_URL=${AWS_ENDPOINT_URL:-http://127.0.0.1:4566}
export AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID:-testing} AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY:-testing}
export AWS_REGION=${AWS_REGION:-us-east-1} AWS_EC2_METADATA_DISABLED=true
export ADMIN_TOKEN=${ADMIN_TOKEN:-dev-admin-token}

started=()
cleanup() { for pid in "${started[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT INT TERM

if curl -fsS -o /dev/null "$AWS_ENDPOINT_URL/moto-api/" 2>/dev/null; then
  echo "roster: using the emulator already at $AWS_ENDPOINT_URL"
else
  port=${AWS_ENDPOINT_URL##*:}
  infra/moto.sh "$port" .local/moto.pid .local/moto.log >/dev/null
  started+=("$(cat .local/moto.pid)")
  # A fresh moto holds none of the files and messages of jobs left unfinished.
  export ROSTER_FAIL_INTERRUPTED=1
  echo "roster: started moto on $AWS_ENDPOINT_URL (log: .local/moto.log)"
fi

# DynamoDB: dynoxide, its data in .local/dynamodb.sqlite, kept across runs
# (FRESH=1 or `make reset` starts clean). S3, SQS and SES (moto) are in memory.
export AWS_ENDPOINT_URL_DYNAMODB=${AWS_ENDPOINT_URL_DYNAMODB:-http://127.0.0.1:4567}
if [ -n "${FRESH:-}" ]; then
  rm -f .local/dynamodb.sqlite .local/dynamodb.sqlite-wal .local/dynamodb.sqlite-shm
  echo "roster: FRESH=1: starting with no local data"
fi
if curl -sS -o /dev/null "$AWS_ENDPOINT_URL_DYNAMODB/" 2>/dev/null; then
  echo "roster: using the DynamoDB already at $AWS_ENDPOINT_URL_DYNAMODB"
else
  infra/dynoxide.sh "${AWS_ENDPOINT_URL_DYNAMODB##*:}" .local/dynoxide.pid .local/dynoxide.log .local/dynamodb.sqlite >/dev/null
  started+=("$(cat .local/dynoxide.pid)")
  echo "roster: started dynoxide on $AWS_ENDPOINT_URL_DYNAMODB (data: .local/dynamodb.sqlite)"
fi

# The whole workspace, as `make test` builds it, so both share one build of every dependency.
cargo build -q --workspace --locked
target/debug/roster-local &
started+=("$!")
for _ in $(seq 1 100); do
  curl -fsS -o /dev/null "http://127.0.0.1:$PORT/health" 2>/dev/null && break
  sleep 0.2
done

cat <<EOT

Roster is running on http://127.0.0.1:$PORT   (Ctrl-C stops it)

  curl -s localhost:$PORT/health
  curl -s -X POST localhost:$PORT/v1/projects -H "Authorization: Bearer $ADMIN_TOKEN" \\
       -H 'Content-Type: application/json' -d '{"name":"My launch"}'
  # then, with the id and api_key it returns:
  curl -s -X POST localhost:$PORT/v1/projects/\$PID/contacts -H "Authorization: Bearer \$KEY" \\
       -H 'Content-Type: application/json' -d '{"email":"Ada@Example.com","name":"Ada Lovelace","phone":"(415) 555-2671"}'
  curl -s "localhost:$PORT/v1/projects/\$PID/contacts?email=ada@example.com" -H "Authorization: Bearer \$KEY"
  curl -s localhost:$PORT/v1/openapi.json

  # Email (from the project's email_from, on example.com), then what the emulator's SES took:
  curl -s -X PATCH localhost:$PORT/v1/projects/\$PID -H "Authorization: Bearer \$KEY" \\
       -H 'Content-Type: application/json' -d '{"email_from":"news@example.com"}'
  curl -s -X POST localhost:$PORT/v1/projects/\$PID/contacts/\$CID/messages -H "Authorization: Bearer \$KEY" \\
       -H 'Content-Type: application/json' -d '{"channel":"email","subject":"Hi {{ first_name }}","text":"Hello"}'
  curl -s $AWS_ENDPOINT_URL/moto-api/data.json   # ses → RawMessage → raw_data

  # SMS (Twilio is a local stand-in here; README "SMS" has the list and consent steps):
  curl -s -X PATCH localhost:$PORT/v1/projects/\$PID -H "Authorization: Bearer \$KEY" -H 'Content-Type: application/json' \\
       -d '{"twilio_account_sid":"AC0123456789abcdef0123456789abcdef","twilio_auth_token":"f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8"}'
  curl -s -X POST localhost:$PORT/v1/projects/\$PID/contacts/\$CID/messages -H "Authorization: Bearer \$KEY" \\
       -H 'Content-Type: application/json' -d '{"channel":"sms","body":"Hi {{ first_name }}","list_id":"\$LIST"}'
  curl -s localhost:\${TWILIO_STUB_PORT:-4010}/recorded   # what "Twilio" was sent

  # Import a file with a live progress bar (or drop one under s3://<imports bucket>/imports/\$PID/):
  ROSTER_URL=http://127.0.0.1:$PORT ROSTER_PROJECT=\$PID ROSTER_KEY=\$KEY \\
       target/debug/roster import people.csv

EOT
wait
