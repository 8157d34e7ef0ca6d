#!/usr/bin/env bash
# make bench: release sizes, cold starts against two floors, DynamoDB
# requests per call, the import pipeline, audience pages; results go to
# bench/README.md. Each step's output is kept in bench/.out; with
# BENCH_RESUME=1 a step that already has one is not run again (a long run
# that was stopped picks up where it was).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
RUNS=${RUNS:-20}
out=bench/.out
mkdir -p "$out"
[ -n "${BENCH_RESUME:-}" ] || rm -f "$out"/*

# step NAME COMMAND…: runs COMMAND unless resuming with NAME's output kept.
step() {
  local name=$1
  shift
  if [ -s "$out/$name" ]; then
    echo "bench: $name: kept from the earlier run" >&2
    return
  fi
  "$@" > "$out/$name.tmp"
  mv "$out/$name.tmp" "$out/$name"
}

echo "bench: building release binaries (lto, codegen-units=1, strip)…" >&2
# The functions are built together and alone, as make lambda builds them:
# features of other crates (the CLI's, the bench's) are not unified into them.
read -ra functions <<< "$(make -s functions)"
cargo build --release -q "${functions[@]/#/--package=roster-}"
cargo build --release -q -p roster-bench-floors -p roster-bench-import -p roster-bench-messaging
cargo build -q --workspace --locked  # the debug build of make test and make dev

cold_starts() {
  $PY bench/coldstart.py "$RUNS" target/release/floor-hello target/release/floor-sdk \
    "${functions[@]/#/target/release/}"
  # The same with the TLS roots read from one bundle file instead of a directory
  # of certificates: how much of the SDK floor is root loading.
  local bundle
  bundle=$(ls /etc/ssl/certs/ca-certificates.crt /etc/pki/tls/certs/ca-bundle.crt 2>/dev/null | head -n1 || true)
  if [ -n "$bundle" ]; then
    SSL_CERT_FILE=$bundle SSL_CERT_DIR=/nonexistent BENCH_LABEL_SUFFIX=" (roots: one bundle file)" \
      $PY bench/coldstart.py "$RUNS" target/release/floor-sdk target/release/api
  fi
}
echo "bench: cold starts ($RUNS runs each)…" >&2
step cold cold_starts

echo "bench: what the HTTP functions' bytes are (make bloat)…" >&2
step bytes make -s bloat

dir=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$(cat "$p")" 2>/dev/null || true; done; rm -rf "$dir"' EXIT
# The emulators of make test and make dev: dynoxide (DynamoDB, in memory
# here) and moto (S3, SQS, SES). start_dynamodb NAME: a fresh one, its URL
# in $dynamodb_url.
start_dynamodb() {
  pids+=("$dir/$1.pid")
  dynamodb_url="http://127.0.0.1:$(infra/dynoxide.sh 0 "$dir/$1.pid" "$dir/$1.log")"
}
moto_port=$(infra/moto.sh 0 "$dir/moto.pid" "$dir/moto.log")
pids+=("$dir/moto.pid")
start_dynamodb dynamodb
dynamodb=$dynamodb_url
free_port() { $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
export AWS_ENDPOINT_URL="http://127.0.0.1:$moto_port" AWS_ENDPOINT_URL_DYNAMODB="$dynamodb" \
  AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing \
  AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true

echo "bench: DynamoDB requests per call…" >&2
step counts $PY bench/ddb_count.py "$dynamodb" "$(free_port)" target/debug/roster-local "$(free_port)"

echo "bench: import parse rate (${PARSE_ROWS:-1000000} rows)…" >&2
step parse target/release/import-parse "${PARSE_ROWS:-1000000}"

echo "bench: planner and chunk worker peak RSS (100 MiB and ${RSS_MIB:-1024} MiB files)…" >&2
rss() { target/release/import-rss 100 1 && target/release/import-rss "${RSS_MIB:-1024}" 1; }
step rss rss

echo "bench: one chunk worker against DynamoDB latency (${LATENCY_ROWS:-10000} rows; ${LATENCY_MS:-0,5,10} ms)…" >&2
# A DynamoDB of its own: dynoxide slows as its database grows, and the
# worker's rate is what is measured here.
latency() {
  start_dynamodb latency
  AWS_ENDPOINT_URL_DYNAMODB="$dynamodb_url" target/release/import-latency "${LATENCY_ROWS:-10000}" "${LATENCY_MS:-0,5,10}"
}
step latency latency

echo "bench: write units of a new and an existing contact…" >&2
step wcu $PY bench/wcu.py "$dynamodb" target/debug/roster-local

echo "bench: imports end to end (requests per 1,000 rows, ${ROWS_E2E:-100000}-row wall time)…" >&2
step imports env PHASES=requests,wall $PY bench/import_bench.py "$dynamodb" target/debug/roster-local

# The kill-and-restart run gets a DynamoDB of its own.
fault() {
  start_dynamodb fault
  AWS_ENDPOINT_URL_DYNAMODB="$dynamodb_url" PHASES=fault $PY bench/import_bench.py "$dynamodb_url" target/debug/roster-local
}
echo "bench: runner killed and started again during a ${FAULT_ROWS:-50000}-row import…" >&2
step fault fault

echo "bench: audience list first pages at ${AUDIENCE_SIZES:-1000,10000,100000} contacts…" >&2
step audience $PY bench/audience_bench.py "$dynamodb" target/debug/roster-local

echo "bench: template render throughput against format! (one core)…" >&2
step render target/release/render-throughput "${RENDER_SECS:-5}"

# The broadcast gets a DynamoDB of its own: dynoxide slows as its database grows.
broadcast() {
  start_dynamodb broadcast
  AWS_ENDPOINT_URL_DYNAMODB="$dynamodb_url" target/release/broadcast-bench "${BROADCAST_RECIPIENTS:-10000}"
}
echo "bench: a ${BROADCAST_RECIPIENTS:-10000}-recipient broadcast through one send worker…" >&2
step broadcast broadcast

# Exports get a DynamoDB and a process of their own for each size (the
# peak RSS of one export is not the high-water mark of the sizes before it).
export_bench() {
  local n
  for n in ${EXPORT_SIZES:-10000 100000 200000}; do
    start_dynamodb "exports-$n"
    AWS_ENDPOINT_URL_DYNAMODB="$dynamodb_url" target/release/export-bench "$n"
    kill "$(cat "$dir/exports-$n.pid")" 2>/dev/null || true
  done
}
echo "bench: asynchronous exports of ${EXPORT_SIZES:-10000 100000 200000} contacts…" >&2
step exports export_bench

# The deployed artifacts: make lambda (arm64, cargo-lambda), each zip's size,
# and the floors built by the same recipe, alone: floor-sdk (the floor of the
# size target) and floor-requests (its clients sending requests).
artifacts() {
  make -s lambda >&2
  make -s lambda FUNCTIONS="-p roster-bench-floors --bin floor-sdk --bin floor-requests" >&2
  # What these two builds made, not whatever else target/lambda holds.
  $PY -c 'import json, os, sys, zipfile
for name in sorted(sys.argv[1:]):
    z = f"target/lambda/{name}/bootstrap.zip"
    print(json.dumps({"function": name, "zip_bytes": os.path.getsize(z),
                      "unzipped_bytes": sum(i.file_size for i in zipfile.ZipFile(z).infolist())}))' \
    floor-sdk floor-requests "${functions[@]}"
}
echo "bench: arm64 Lambda artifacts (make lambda)…" >&2
step artifacts artifacts

$PY bench/render.py "$out" > bench/README.md
echo "bench: wrote bench/README.md" >&2
cat bench/README.md
