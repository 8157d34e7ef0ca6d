#!/usr/bin/env bash
# Runs a command against fresh emulators on free ports, then stops them:
# dynoxide (in memory) for DynamoDB, moto for S3, SQS and SES.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=$(mktemp -d)
trap 'kill "$(cat "$dir/moto.pid")" "$(cat "$dir/dynoxide.pid")" 2>/dev/null || true; rm -rf "$dir"' EXIT
port=$(infra/moto.sh 0 "$dir/moto.pid" "$dir/moto.log")
dynamodb_port=$(infra/dynoxide.sh 0 "$dir/dynoxide.pid" "$dir/dynoxide.log")
export AWS_ENDPOINT_URL="http://127.0.0.1:$port"
export AWS_ENDPOINT_URL_DYNAMODB="http://127.0.0.1:$dynamodb_port"
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
export AWS_EC2_METADATA_DISABLED=true
"$@"
