#!/usr/bin/env bash
# make bench: release sizes, cold starts against two floors, DynamoDB
# requests per call; results go to bench/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
RUNS=${RUNS:-20}

echo "bench: building release binaries (lto, codegen-units=1, strip)…" >&2
cargo build --release -q -p roster-api -p roster-import-planner -p roster-import-worker -p roster-bench-floors -p roster-bench-import
cargo build -q -p roster-local

echo "bench: cold starts ($RUNS runs each)…" >&2
cold=$($PY bench/coldstart.py "$RUNS" target/release/floor-hello target/release/floor-sdk target/release/api \
  target/release/import-planner target/release/import-worker)
# The same with the TLS roots read from one bundle file instead of a directory
# of certificates: how much of the SDK floor is root loading.
bundle=$(ls /etc/ssl/certs/ca-certificates.crt /etc/pki/tls/certs/ca-bundle.crt 2>/dev/null | head -n1 || true)
if [ -n "$bundle" ]; then
  cold+=$'\n'$(SSL_CERT_FILE=$bundle SSL_CERT_DIR=/nonexistent BENCH_LABEL_SUFFIX=" (roots: one bundle file)" \
    $PY bench/coldstart.py "$RUNS" target/release/floor-sdk target/release/api)
fi

echo "bench: DynamoDB requests per call…" >&2
dir=$(mktemp -d)
moto_port=$(infra/moto.sh 0 "$dir/moto.pid" "$dir/moto.log")
trap 'kill "$(cat "$dir/moto.pid")" 2>/dev/null || true; rm -rf "$dir"' EXIT
free_port() { $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
counts=$(AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true \
  $PY bench/ddb_count.py "http://127.0.0.1:$moto_port" "$(free_port)" target/debug/roster-local "$(free_port)")

echo "bench: import parse rate (${PARSE_ROWS:-1000000} rows)…" >&2
parse=$(target/release/import-parse "${PARSE_ROWS:-1000000}")

echo "bench: planner and chunk worker peak RSS (100 MiB and ${RSS_MIB:-1024} MiB files)…" >&2
export AWS_ENDPOINT_URL="http://127.0.0.1:$moto_port" AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing \
  AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
rss=$(target/release/import-rss 100 1)$'\n'$(target/release/import-rss "${RSS_MIB:-1024}" 1)

echo "bench: imports end to end (requests per 1,000 rows, ${ROWS_E2E:-100000}-row wall time, kill and restart)…" >&2
imports=$($PY bench/import_bench.py "http://127.0.0.1:$moto_port" target/debug/roster-local)

echo "bench: audience list first pages at ${AUDIENCE_SIZES:-1000,10000,100000} contacts…" >&2
audience=$($PY bench/audience_bench.py "http://127.0.0.1:$moto_port" target/debug/roster-local)

$PY bench/render.py "$cold" "$counts" "$parse" "$rss" "$imports" "$audience" > bench/README.md
echo "bench: wrote bench/README.md" >&2
cat bench/README.md
