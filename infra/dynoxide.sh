#!/usr/bin/env bash
# Starts dynoxide (DynamoDB on SQLite, installed by the Makefile under
# .local/tools) on a port (a free one if 0), waits until it answers, prints
# the port. DB empty: in memory; otherwise that SQLite file, which persists.
# Usage: infra/dynoxide.sh PORT PIDFILE LOGFILE [DB]
set -euo pipefail
port=${1:-0}
pidfile=${2:-.local/dynoxide.pid}
log=${3:-.local/dynoxide.log}
db=${4:-}
mkdir -p "$(dirname "$pidfile")" "$(dirname "$log")"
if [ "$port" = 0 ]; then
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
fi
args=(serve --host 127.0.0.1 --port "$port" --log quiet)
[ -n "$db" ] && args+=(--db-path "$db")
.local/tools/bin/dynoxide "${args[@]}" >"$log" 2>&1 &
echo $! >"$pidfile"
for _ in $(seq 1 100); do
  # Any HTTP answer (an unsigned request is refused) means it is up.
  if curl -sS -o /dev/null "http://127.0.0.1:$port/" 2>/dev/null; then
    echo "$port"
    exit 0
  fi
  sleep 0.1
done
echo "dynoxide did not start on port $port; see $log" >&2
exit 1
