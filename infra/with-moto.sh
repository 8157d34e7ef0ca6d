#!/usr/bin/env bash
# Runs a command against a fresh moto server on a free port, then stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=$(mktemp -d)
port=$(infra/moto.sh 0 "$dir/moto.pid" "$dir/moto.log")
trap 'kill "$(cat "$dir/moto.pid")" 2>/dev/null || true; rm -rf "$dir"' EXIT
export AWS_ENDPOINT_URL="http://127.0.0.1:$port"
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
export AWS_EC2_METADATA_DISABLED=true
"$@"
